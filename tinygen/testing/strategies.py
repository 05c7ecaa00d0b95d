"""Hypothesis strategies for gradient-check tests of your own ops.

    from tinygen.testing import op_test, strategies as tst

    test_relu = op_test(F.relu, tst.arrays(tst.shapes(), away_from=(0.0,)),
                        reference=lambda x: np.maximum(x, 0))

Finite differences are only meaningful where a function is smooth within ``eps`` of the
point, so ``arrays`` can keep values a margin away from kinks (``away_from=(0.0,)`` for
ReLU, abs, clamp bounds) and inside a domain (``min_value=0.1`` for log and sqrt).

**Values that shrink.** Element k of an array is ``lo + (hi - lo) * frac(u_k + k*phi + p)``,
``phi = (sqrt(5) - 1) / 2``, with each ``u_k`` drawn by hypothesis (arrays of up to 64
elements; larger ones draw a seed, as they are rarely minimal). Hypothesis repeats values
and shrinks them to 0; the golden-ratio shift turns a repeated or shrunk ``u`` into evenly
spread, distinct values (``frac(k*phi)`` never repeats), so a shrunk array is neither
constant nor tied, and its ties do not put a kink or a zero variance into the example.
Arrays drawn *together* (``same_shape_arrays``, ``broadcast_arrays``) get different
``p = i*(sqrt(2) - 1)``, so they stay different after shrinking; two separate ``arrays``
draws of one shape shrink to the same values.

Several tensors whose shapes depend on each other: ``same_shape_arrays``,
``broadcast_arrays``, ``conv_inputs`` (input, kernel, bias of a ``ConvConfig``);
``to_tensors`` makes any of them leaf tensors. Configurations: ``conv_configs``,
``conv_transpose_configs``, ``masked_conv_configs`` (PixelCNN), ``lstm_configs`` and
``lstm_inputs``, ``batch_norm_inputs`` (every channel's variance kept away from 0).
"""

import numpy

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:
    from tinygen.testing import hypothesis_missing

    raise hypothesis_missing("tinygen.testing.strategies") from err

from tinygen.autograd.tensor import Tensor
from tinygen.testing.configs import (  # noqa: F401  (re-exported: strategies is the public module)
    ConvConfig,
    LSTMConfig,
    MaskedConvConfig,
    batch_norm_inputs,
    conv_configs,
    conv_inputs,
    conv_transpose_configs,
    lstm_configs,
    lstm_inputs,
    masked_conv_configs,
)

GOLDEN = (5**0.5 - 1) / 2  # frac(k * GOLDEN), k = 0, 1, ...: never repeats, spread evenly
SILVER = 2**0.5 - 1  # the shift of the i-th array of a joint draw
SHRINKING_SIZE = 64  # arrays up to this size draw every value; larger ones draw a seed


def shapes(min_dims=0, max_dims=4, min_side=1, max_side=5):
    """Array shapes, e.g. ``()``, ``(3,)``, ``(2, 1, 4)``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4):
    """Tuples of shapes that broadcast together (sides of 1, missing leading dims)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda result: result.input_shapes)


def _unit(draw, size, phase):
    """``size`` numbers in [0, 1): ``frac(u_k + k*GOLDEN + phase)``, the ``u_k`` drawn by hypothesis."""
    if size <= SHRINKING_SIZE:
        drawn = draw(st.lists(st.integers(0, 2**16 - 1), min_size=size, max_size=size))
        u = numpy.array(drawn, dtype=float) / 2**16
    else:
        u = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(size)
    return (u + numpy.arange(size) * GOLDEN + phase) % 1.0


def _check_value_arguments(caller, min_value, max_value, away_from, margin, distinct):
    if not min_value < max_value:
        raise ValueError(f"{caller}: min_value is {min_value}, expected less than max_value = {max_value}")
    if margin < 0:
        raise ValueError(f"{caller}: margin is {margin}, expected >= 0")
    if distinct and away_from:
        raise ValueError(f"{caller}: distinct=True and away_from can't be combined (a push could make ties)")


def _values(draw, size, min_value, max_value, away_from, margin, distinct, phase, caller):
    """``size`` float64 values in ``[min_value, max_value]`` (see the module doc), flat."""
    unit = _unit(draw, size, phase)
    if distinct and size > 1:  # an evenly spread grid in the order of ``unit``, jittered by < a quarter step
        step = (max_value - min_value) / (size - 1)
        if step / 2 < 1e-3:
            raise ValueError(f"{caller}: {size} distinct values don't fit in [{min_value}, {max_value}]")
        rank = numpy.argsort(numpy.argsort(unit, kind="stable"), kind="stable")
        values = min_value + rank * step + (unit - 0.5) * step / 2
        return numpy.clip(values, min_value, max_value)
    values = min_value + (max_value - min_value) * unit
    for point in away_from:  # move values out of (point - margin, point + margin), inside the range
        offset = values - point
        near = numpy.abs(offset) < margin
        moved = numpy.where(offset[near] >= 0, 1.0, -1.0) * (margin + numpy.abs(offset[near]))
        outside = (point + moved < min_value) | (point + moved > max_value)
        values[near] = point + numpy.where(outside, -moved, moved)
    return values


@st.composite
def arrays(
    draw, shape, dtype=numpy.float64, min_value=-2.0, max_value=2.0, away_from=(), margin=0.05, distinct=False
):
    """Float arrays in ``[min_value, max_value]`` with no value within ``margin`` of ``away_from``.

    ``shape`` is a tuple or a strategy of shapes. A value near a point in ``away_from``
    moves to the far side of the margin, on whichever side stays inside the range (the
    range must be wider than ``2 * margin`` around it). ``distinct=True`` instead keeps
    every pair of values at least half a grid step, ``(max_value - min_value) / (2 (size - 1))``,
    apart (for max/min and sorting, whose gradient jumps where two values tie).
    """
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    _check_value_arguments("arrays", min_value, max_value, away_from, margin, distinct)
    size = int(numpy.prod(shape, dtype=numpy.int64))
    values = _values(draw, size, min_value, max_value, away_from, margin, distinct, 0.0, "arrays")
    return values.reshape(shape).astype(dtype)


def _joint(draw, shapes_, dtype, min_value, max_value, away_from, margin, distinct, caller):
    """Arrays of ``shapes_`` drawn together: distinct across all of them, or each shifted by i*SILVER."""
    _check_value_arguments(caller, min_value, max_value, away_from, margin, distinct)
    sizes = [int(numpy.prod(s, dtype=numpy.int64)) for s in shapes_]
    if distinct:
        flat = _values(draw, sum(sizes), min_value, max_value, (), margin, True, 0.0, caller)
        parts = numpy.split(flat, numpy.cumsum(sizes)[:-1])
    else:
        parts = [
            _values(draw, n, min_value, max_value, away_from, margin, False, i * SILVER, caller)
            for i, n in enumerate(sizes)
        ]
    return tuple(p.reshape(s).astype(dtype) for p, s in zip(parts, shapes_, strict=True))


@st.composite
def same_shape_arrays(
    draw, num=2, shape=None, dtype=numpy.float64, min_value=-2.0, max_value=2.0, away_from=(), margin=0.05,
    distinct=False,
):  # fmt: skip
    """A tuple of ``num`` arrays of one shape (``shape``: a tuple or a strategy; ``shapes()`` if None).

    ``distinct=True`` keeps values apart across all the arrays (``maximum(a, b)`` has a kink
    where ``a == b``); the other arguments are those of :func:`arrays`.
    """
    shape = shapes() if shape is None else shape
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    caller = "same_shape_arrays"
    return _joint(draw, [shape] * num, dtype, min_value, max_value, away_from, margin, distinct, caller)


@st.composite
def broadcast_arrays(
    draw, num=2, min_dims=0, max_dims=4, min_side=1, max_side=4, dtype=numpy.float64, min_value=-2.0,
    max_value=2.0, away_from=(), margin=0.05, distinct=False,
):  # fmt: skip
    """A tuple of ``num`` arrays whose shapes broadcast together (:func:`broadcastable_shapes`).

    ``distinct=True`` keeps values apart across all the arrays; see :func:`same_shape_arrays`.
    """
    drawn = draw(broadcastable_shapes(num, min_dims, max_dims, min_side, max_side))
    return _joint(draw, drawn, dtype, min_value, max_value, away_from, margin, distinct, "broadcast_arrays")


@st.composite
def tensors(draw, shape, dtype=numpy.float64, requires_grad=True, **array_kwargs):
    """Leaf tensors drawn with :func:`arrays` (float64 and requiring grad by default)."""
    return Tensor(draw(arrays(shape, dtype=dtype, **array_kwargs)), requires_grad=requires_grad)


def to_tensors(strategy, requires_grad=True):
    """``strategy``'s arrays (one, or a tuple of them) as leaf tensors; other values pass through.

    Float arrays require grad when ``requires_grad``; integer arrays never do.
    """

    def convert(value):
        if isinstance(value, numpy.ndarray):
            return Tensor(value, requires_grad=requires_grad and value.dtype.kind == "f")
        if isinstance(value, (tuple, list)):
            return type(value)(convert(v) for v in value)
        return value

    return strategy.map(convert)
