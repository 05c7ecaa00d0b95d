"""Pooling layers: ``MaxPool2d`` and ``AvgPool2d`` (PyTorch's names, arguments and repr).

The kernels and their math: ``tinygen/kernels/pool.py`` (docs/kernels/pool.md).
"""

from tinygen.kernels.pool import avg_pool2d, max_pool2d
from tinygen.nn.module import Module


class MaxPool2d(Module):
    """2-D max pooling; ``stride`` defaults to ``kernel_size``.

    Shape: input ``(N, C, H, W)`` or ``(C, H, W)``; output ``(N, C, out_h, out_w)`` with
    ``out_h = (H + 2*padding - dilation*(kernel_h - 1) - 1) // stride + 1`` (rounded up
    with ``ceil_mode``).
    """

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):  # noqa: A002
        return max_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )

    def extra_repr(self):
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """2-D average pooling; ``stride`` defaults to ``kernel_size``.

    Shape: as :class:`MaxPool2d` with dilation 1. The divisor counts the zero padding
    (``count_include_pad=True``), or only real pixels, or is ``divisor_override``.
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):  # noqa: A002
        return avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
