"""Hypothesis strategies for gradient-check tests of your own ops.

    from hypothesis import given
    from tinygen.testing import gradcheck, strategies as tst

    @given(tst.tensors(tst.shapes(), away_from=(0.0,)))
    def test_relu(x):
        gradcheck(F.relu, [x])

Finite differences are only meaningful where a function is smooth within ``eps`` of the
point, so ``arrays`` can keep values a margin away from kinks (``away_from=(0.0,)`` for
ReLU, abs, clamp bounds) and inside a domain (``min_value=0.1`` for log and sqrt).
"""

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
