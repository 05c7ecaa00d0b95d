"""``Conv2d`` and ``ConvTranspose2d``: PyTorch's convolution layers, holding ``weight`` and ``bias``.

Shapes (PyTorch's), with ``s`` stride, ``p`` padding, ``d`` dilation, ``op`` output_padding:

    Conv2d:           (N, C_in, H, W) -> (N, C_out, out_h, out_w),
                      out_h = (H + 2*p - d*(kH - 1) - 1) // s + 1
                      weight (C_out, C_in/groups, kH, kW), bias (C_out,)
    ConvTranspose2d:  (N, C_in, H, W) -> (N, C_out, out_h, out_w),
                      out_h = (H - 1)*s - 2*p + d*(kH - 1) + op + 1
                      weight (C_in, C_out/groups, kH, kW), bias (C_out,)

Initialisation is PyTorch's: ``weight ~ kaiming_uniform_(a=sqrt(5))``, which is
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and ``bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
with ``fan_in = weight.shape[1] * kH * kW``. For the transposed layer that is
``C_out/groups * kH * kW``, since PyTorch computes the fan from the weight's shape alone.
Forward calls the functional kernels; the math is in docs/kernels/conv.md.
"""

import math

import numpy

from tinygen.kernels.conv import conv2d, conv_transpose2d
from tinygen.kernels.geometry import pair
from tinygen.nn import init
from tinygen.nn.module import Module, Parameter


class _ConvNd(Module):
    """What both layers share: argument checks, parameters, PyTorch's init and repr."""

    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 output_padding=0):  # fmt: skip
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % groups:
                raise ValueError(f"{name}: {arg} is {value}, not divisible by groups = {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = pair(stride, "stride", name)
        self.padding = pair(padding, "padding", name)
        self.dilation = pair(dilation, "dilation", name)
        self.output_padding = pair(output_padding, "output_padding", name)
        if (
            self.transposed
        ):  # PyTorch's layouts: (C_in, C_out/groups, kH, kW) and (C_out, C_in/groups, kH, kW)
            weight_shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            weight_shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(numpy.empty(weight_shape, dtype=numpy.float32))
        if bias:
            self.bias = Parameter(numpy.empty(out_channels, dtype=numpy.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) weights, U(+-1/sqrt(fan_in)) biases."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        """PyTorch's format: stride always, other arguments only where they differ from the default."""
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """2-D convolution layer: ``y = conv2d(x, weight, bias, stride, padding, dilation, groups)``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)

    def forward(self, input):  # noqa: A002  (PyTorch's names)
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution layer (conv2d's adjoint), as used by DCGAN generators to upsample."""

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         output_padding)  # fmt: skip

    def forward(self, input):  # noqa: A002  (PyTorch's names)
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding, self.groups, self.dilation)  # fmt: skip
