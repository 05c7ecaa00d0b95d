"""Hypothesis strategies for gradient-check tests of your own ops.

    from hypothesis import given
    from tinygen.testing import gradcheck, strategies as tst

    @given(tst.tensors(tst.shapes(), away_from=(0.0,)))
    def test_relu(x):
        gradcheck(F.relu, [x])

Finite differences are only meaningful where a function is smooth within ``eps`` of the
point, so ``arrays`` can keep values a margin away from kinks (``away_from=(0.0,)`` for
ReLU, abs, clamp bounds) and inside a domain (``min_value=0.1`` for log and sqrt).

``conv_configs`` and ``conv_transpose_configs`` draw valid convolution settings (groups,
strides, paddings, dilations, output_padding, odd sizes) for testing conv kernels.
"""

import dataclasses

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygen.autograd.tensor import Tensor


def shapes(min_dims=0, max_dims=4, min_side=1, max_side=5):
    """Array shapes, e.g. ``()``, ``(3,)``, ``(2, 1, 4)``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4):
    """Tuples of shapes that broadcast together (sides of 1, missing leading dims)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda result: result.input_shapes)


@st.composite
def arrays(
    draw, shape, dtype=numpy.float64, min_value=-2.0, max_value=2.0, away_from=(), margin=0.05, distinct=False
):
    """Float arrays in ``[min_value, max_value]`` with no value within ``margin`` of ``away_from``.

    A value near a point in ``away_from`` moves to the far side of the margin, on whichever
    side stays inside the range (the range must be wider than ``2 * margin`` around it).

    ``distinct=True`` also keeps every pair of values at least half a grid step,
    ``(max_value - min_value) / (2 (size - 1))``, apart (for max/min and sorting, whose
    gradient jumps where two values tie).
    """
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    if distinct and away_from:
        raise ValueError("arrays: distinct=True and away_from can't be combined (a push could make ties)")
    size = int(numpy.prod(shape, dtype=numpy.int64))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if distinct and size > 1:  # an evenly spread grid, shuffled and jittered by < a quarter step
        step = (max_value - min_value) / (size - 1)
        if step / 2 < 1e-3:
            raise ValueError(f"arrays: {size} distinct values don't fit in [{min_value}, {max_value}]")
        values = rng.permutation(numpy.linspace(min_value, max_value, size))
        values = numpy.clip(values + rng.uniform(-0.25, 0.25, size) * step, min_value, max_value)
    else:
        values = rng.uniform(min_value, max_value, size)
    for point in away_from:  # move values out of (point - margin, point + margin), inside the range
        offset = values - point
        near = numpy.abs(offset) < margin
        moved = numpy.where(offset[near] >= 0, 1.0, -1.0) * (margin + numpy.abs(offset[near]))
        outside = (point + moved < min_value) | (point + moved > max_value)
        values[near] = point + numpy.where(outside, -moved, moved)
    return values.reshape(shape).astype(dtype)


@st.composite
def tensors(draw, shape, dtype=numpy.float64, requires_grad=True, **array_kwargs):
    """Leaf tensors drawn with :func:`arrays` (float64 and requiring grad by default)."""
    return Tensor(draw(arrays(shape, dtype=dtype, **array_kwargs)), requires_grad=requires_grad)


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """One convolution to test: sizes and the keyword arguments of conv2d or conv_transpose2d.

    ``transposed`` says which: the weight is ``(in_channels, out_channels/groups, kH, kW)``
    for conv_transpose2d and ``(out_channels, in_channels/groups, kH, kW)`` for conv2d.
    Pairs are ``(height, width)``; ``output_padding`` is used by conv_transpose2d only.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    input_size: tuple
    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    output_padding: tuple = (0, 0)
    transposed: bool = False

    @property
    def input_shape(self):
        return (self.batch, self.in_channels, *self.input_size)

    @property
    def weight_shape(self):
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def kwargs(self):
        """``stride``, ``padding``, ``dilation``, ``groups`` (and ``output_padding`` if transposed)."""
        kwargs = dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)
        if self.transposed:
            kwargs["output_padding"] = self.output_padding
        return kwargs


def _channels_and_geometry(
    draw, max_batch, max_group_channels, max_groups, max_kernel, max_stride, max_padding, max_dilation
):
    groups = draw(st.integers(1, max_groups))
    side = st.integers(1, max_kernel)
    return dict(
        batch=draw(st.integers(1, max_batch)),
        in_channels=groups * draw(st.integers(1, max_group_channels)),
        out_channels=groups * draw(st.integers(1, max_group_channels)),
        groups=groups,
        kernel_size=(draw(side), draw(side)),
        stride=(draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))),
        padding=(draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding))),
        dilation=(draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation))),
    )


@st.composite
def conv_configs(
    draw,
    max_batch=2,
    max_group_channels=2,
    max_groups=2,
    max_kernel=3,
    max_stride=2,
    max_padding=2,
    max_dilation=2,
    max_size=6,
):
    """Valid conv2d configurations (:class:`ConvConfig`): every output size is at least 1.

    Input sides are drawn from what the padded, dilated kernel allows up to ``max_size``, so
    odd sizes, sizes a stride does not divide, and kernels larger than the unpadded input
    (made valid by padding) all come up.
    """
    c = _channels_and_geometry(
        draw, max_batch, max_group_channels, max_groups, max_kernel, max_stride, max_padding, max_dilation
    )
    size = []
    for k, p, d in zip(c["kernel_size"], c["padding"], c["dilation"], strict=True):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the dilated kernel must fit the padded input
        size.append(draw(st.integers(smallest, max(smallest, max_size))))
    return ConvConfig(input_size=tuple(size), **c)


@st.composite
def conv_transpose_configs(
    draw,
    max_batch=2,
    max_group_channels=2,
    max_groups=2,
    max_kernel=3,
    max_stride=2,
    max_padding=2,
    max_dilation=2,
    max_size=4,
):
    """Valid conv_transpose2d configurations (:class:`ConvConfig` with ``transposed=True``).

    ``output_padding`` is below stride or dilation (PyTorch's rule), and the padding never
    crops the whole output: ``(H - 1)*s - 2*p + d*(k - 1) + output_padding + 1 >= 1``.
    """
    c = _channels_and_geometry(
        draw, max_batch, max_group_channels, max_groups, max_kernel, max_stride, 0, max_dilation
    )
    size, padding, output_padding = [], [], []
    for k, s, d in zip(c["kernel_size"], c["stride"], c["dilation"], strict=True):
        size.append(draw(st.integers(1, max_size)))
        output_padding.append(draw(st.integers(0, max(s, d) - 1)))
        full = (size[-1] - 1) * s + d * (k - 1) + output_padding[-1] + 1  # the output size before cropping
        padding.append(draw(st.integers(0, min(max_padding, (full - 1) // 2))))
    c["padding"] = tuple(padding)
    return ConvConfig(input_size=tuple(size), output_padding=tuple(output_padding), transposed=True, **c)
