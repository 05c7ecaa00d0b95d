"""Every op in ``cases.CASES`` in one call: forward against NumPy, first- and second-order gradcheck."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen.testing import check_op

from .cases import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@given(data=st.data())
def test_op(case, data):
    """``check_op``: float arrays become float64 tensors requiring grad (in lists too), int arrays constants.

    The forward is compared to ``forward_expected`` (shape, dtype and values to 1e-12) where
    there is one; the others are checked by the PyTorch parity tests.
    """
    order = 2 if case.second_order else 1
    assert check_op(case.forward, data.draw(case.generate_inputs), reference=case.forward_expected,
                    order=order, name=case.name, forward_rtol=1e-12, forward_atol=1e-12)  # fmt: skip


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
