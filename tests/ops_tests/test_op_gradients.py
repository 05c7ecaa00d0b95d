"""Every op in ``cases.CASES``: forward against NumPy, first- and second-order gradcheck."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen.testing import gradcheck, gradgradcheck

from .cases import CASES


def to_tinygen(value):
    """Float arrays become float64 tensors that require grad; integer arrays plain tensors."""
    if isinstance(value, np.ndarray):
        return tinygen.tensor(value, requires_grad=value.dtype.kind == "f")
    if isinstance(value, list):
        return [to_tinygen(v) for v in value]
    return value


def differentiable(inputs):
    """The call's tensors requiring grad, flattened out of lists, and a rebuild function."""
    flat = []
    for value in inputs:
        flat.extend(value if isinstance(value, list) else [value])
    tensors = [v for v in flat if isinstance(v, tinygen.Tensor) and v.requires_grad]

    def call(fn, *replacement):
        it = iter(replacement)
        swap = {id(t): next(it) for t in tensors}
        rebuilt = [
            [swap.get(id(v), v) for v in value] if isinstance(value, list) else swap.get(id(value), value)
            for value in inputs
        ]
        return fn(*rebuilt)

    return tensors, call


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@given(data=st.data())
def test_forward_matches_numpy(case, data):
    if case.forward_expected is None:
        pytest.skip("forward checked by the PyTorch parity tests")
    raw = data.draw(case.generate_inputs)
    out = case.forward(*[to_tinygen(v) for v in raw])
    expected = case.forward_expected(*raw)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert out.dtype == np.float64


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@given(data=st.data())
def test_gradcheck(case, data):
    inputs = [to_tinygen(v) for v in data.draw(case.generate_inputs)]
    tensors, call = differentiable(inputs)

    def fn(*xs):
        return call(case.forward, *xs)

    fn.__name__ = case.name
    assert gradcheck(fn, tensors)


@pytest.mark.parametrize("case", [c for c in CASES if c.second_order], ids=lambda c: c.name)
@given(data=st.data())
def test_gradgradcheck(case, data):
    inputs = [to_tinygen(v) for v in data.draw(case.generate_inputs)]
    tensors, call = differentiable(inputs)

    def fn(*xs):
        return call(case.forward, *xs)

    fn.__name__ = case.name
    assert gradgradcheck(fn, tensors)


def test_per_channel_sum_keeps_numpy_dtypes_and_layouts():
    """A sum over all axes but 1 is one einsum for contiguous floats, else NumPy's own sum."""
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    strided = x.astype(np.float32).transpose(0, 1, 3, 2)
    for array in (x.astype(np.int32), x.astype(np.float32), strided, x.astype(np.float64)):
        for keepdim in (False, True):
            out = tinygen.tensor(array).sum((0, 2, 3), keepdim=keepdim)
            expected = array.sum((0, 2, 3), keepdims=keepdim)
            assert out.dtype == expected.dtype
            np.testing.assert_array_equal(out.numpy(), expected)  # small integers: every order is exact
