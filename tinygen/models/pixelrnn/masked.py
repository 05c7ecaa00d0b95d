"""Masked convolutions: a conv2d whose kernel sees only the pixels before its centre.

van den Oord, Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks" (ICML 2016), §3.4.
Pixels are ordered row by row, left to right (raster order): pixel ``(i, j)`` comes before
``(i', j')`` when ``i < i'``, or ``i == i'`` and ``j < j'``. For an odd ``kH x kW`` kernel
centred on output pixel ``(i, j)``, **mask A** keeps the taps strictly before the centre and
**mask B** keeps the centre too (``1`` = the tap is used, ``.`` = zeroed, ``[ ]`` = the centre)::

    mask A, 3x3      mask B, 3x3      mask A, 1x3      mask B, 1x3      mask A, 7x7
    1  1  1          1  1  1          1 [.] .          1 [1] .          1 1 1  1  1 1 1
    1 [.] .          1 [1] .                                            1 1 1  1  1 1 1
    .  .  .          .  .  .                                            1 1 1  1  1 1 1
                                                                        1 1 1 [.] . . .
                                                                        . . .  .  . . .
                                                                        . . .  .  . . .
                                                                        . . .  .  . . .

Mask A is for the first layer, which reads the image: output ``(i, j)`` predicts pixel
``(i, j)``, so it must not see it. Every later layer reads features that at ``(i, j)``
already depend only on pixels before ``(i, j)``, so mask B may keep the centre: the stack
stays causal. With one colour channel (the binary or grey images this package models) a
1x1 mask B keeps its only tap, so a 1x1 convolution needs no mask; with RGB the paper also
splits the channels into three groups masked against each other (not done here).

**Forward**: ``y = conv2d(x, weight * mask, bias, stride 1, padding d*(k - 1)/2, dilation d)``
("same" size). **Backward**: conv2d's, and ``dweight = dW * mask``: masked taps get a zero
gradient, so they stay whatever they were (they never act). **Why**: the mask is a
constant, so one multiply makes any convolution causal. Derivation: ``docs/pixelrnn.md``.
"""

import numbers

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.errors import ShapeError

MASK_TYPES = ("A", "B")


def _pair(value, name, owner, odd=False):
    """``value`` (an int or a pair of ints) as a pair of ints >= 1, both odd if ``odd``."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                             for v in pair):
        raise ValueError(f"{owner}: {name} is {value!r}, expected an int or a pair of ints >= 1")
    if odd and any(v % 2 == 0 for v in pair):
        raise ValueError(f"{owner}: {name} is {value!r}, expected odd sides (the mask needs a centre)")
    return tuple(int(v) for v in pair)


def causal_mask(kernel_size, mask_type):
    """The ``(kH, kW)`` float32 0/1 mask of a masked convolution (module docstring's pictures).

    ``mask[u, v] = 1`` where tap ``(u, v)`` lies before the centre ``(kH // 2, kW // 2)`` in
    raster order, and at the centre for mask ``"B"``.
    """
    k_h, k_w = _pair(kernel_size, "kernel_size", "causal_mask", odd=True)
    if mask_type not in MASK_TYPES:
        raise ValueError(f"causal_mask: mask_type is {mask_type!r}, expected 'A' or 'B'")
    rows, cols = numpy.meshgrid(numpy.arange(k_h), numpy.arange(k_w), indexing="ij")
    centre_row, centre_col = k_h // 2, k_w // 2
    before = (rows < centre_row) | ((rows == centre_row) & (cols < centre_col))
    if mask_type == "B":
        before |= (rows == centre_row) & (cols == centre_col)
    return before.astype(numpy.float32)


def masked_conv2d(input, weight, mask, bias=None, dilation=1):  # noqa: A002  (PyTorch's names)
    """``conv2d(input, weight * mask, bias)`` at stride 1 with "same" padding.

    **Shapes**: input ``(N, C, H, W)``, weight ``(O, C, kH, kW)`` (odd sides), mask ``(kH, kW)``
    (:func:`causal_mask`, a constant Tensor), bias ``(O,)``; output ``(N, O, H, W)``, padded by
    ``dilation * (k - 1) / 2`` on each side. Forward, backward: see the module docstring.
    """
    if weight.ndim != 4 or tuple(mask.shape) != tuple(weight.shape[2:]):
        raise ShapeError(f"masked_conv2d: mask has shape {tuple(mask.shape)}, expected weight.shape[2:] = "
                         f"{tuple(weight.shape[2:])}")
    dilation = _pair(dilation, "dilation", "masked_conv2d")
    k_h, k_w = weight.shape[2:]
    if k_h % 2 == 0 or k_w % 2 == 0:
        raise ShapeError(f"masked_conv2d: weight.shape is {tuple(weight.shape)}, expected odd kernel sides")
    padding = (dilation[0] * (k_h - 1) // 2, dilation[1] * (k_w - 1) // 2)
    return F.conv2d(input, weight * mask, bias, 1, padding, dilation)


class MaskedConv2d(nn.Conv2d):
    """A ``Conv2d`` whose kernel is multiplied by a causal mask (``"A"`` or ``"B"``) at every call.

    ``MaskedConv2d(in_channels, out_channels, kernel_size, mask_type, dilation=1, bias=True)``:
    stride 1 and "same" padding, so the output has the input's size. Parameters and their
    init are ``Conv2d``'s (``weight (O, C, kH, kW)``, ``bias (O,)``); the mask is a buffer that
    is not saved (``causal_mask(kernel_size, mask_type)`` rebuilds it).

    Shape: ``(N, C_in, H, W) -> (N, C_out, H, W)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, mask_type, dilation=1, bias=True):
        kernel = _pair(kernel_size, "kernel_size", "MaskedConv2d", odd=True)
        dilation = _pair(dilation, "dilation", "MaskedConv2d")
        if mask_type not in MASK_TYPES:
            raise ValueError(f"MaskedConv2d: mask_type is {mask_type!r}, expected 'A' or 'B'")
        padding = (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)
        super().__init__(in_channels, out_channels, kernel, 1, padding, dilation, 1, bias)
        self.mask_type = mask_type
        self.register_buffer("mask", tinygen.tensor(causal_mask(kernel, mask_type)), persistent=False)

    def masked_weight(self):
        """``weight * mask``: the kernel the layer applies."""
        return self.weight * self.mask

    def forward(self, input):  # noqa: A002  (PyTorch's names)
        return F.conv2d(input, self.masked_weight(), self.bias, 1, self.padding, self.dilation)

    def extra_repr(self):
        return f"{super().extra_repr()}, mask_type={self.mask_type!r}"
