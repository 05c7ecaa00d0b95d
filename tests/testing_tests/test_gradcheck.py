"""The checker must catch real mistakes with its default tolerances and pass correct code."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen.autograd import Function
from tinygen.errors import DTypeError
from tinygen.testing import GradcheckError, gradcheck, gradgradcheck
from tinygen.testing import strategies as tst


def make_matmul(scale=1.0, wrong_element=None, zero=False):
    """``a @ b`` whose backward for ``a`` can be scaled, zeroed, or wrong in one element."""

    class BuggyMatMul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a.data @ b.data

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            grad_a = (grad @ b.mT).data * scale
            if wrong_element is not None:
                grad_a[wrong_element] += 0.01
            if zero:
                grad_a[...] = 0
            return tinygen.Tensor(grad_a), a.mT @ grad

    return BuggyMatMul.apply


def inputs(n, k, m, seed=0):
    rng = np.random.default_rng(seed)
    a = tinygen.tensor(rng.standard_normal((n, k)), requires_grad=True)
    b = tinygen.tensor(rng.standard_normal((k, m)), requires_grad=True)
    return a, b


@pytest.mark.parametrize("size", [(3, 4, 5), (256, 256, 256)], ids=["small", "width256"])
def test_passes_correct_matmul(size):
    assert gradcheck(make_matmul(), inputs(*size))
    assert gradcheck(tinygen.matmul, inputs(*size))


@pytest.mark.parametrize("size", [(3, 4, 5), (256, 256, 256)], ids=["small", "width256"])
def test_catches_backward_off_by_factor_1_001(size):
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(make_matmul(scale=1.001), inputs(*size))


@pytest.mark.parametrize(
    "size, element", [((3, 4, 5), (2, 1)), ((256, 256, 256), (200, 17))], ids=["small", "width256"]
)
def test_catches_one_wrong_element_and_names_it(size, element):
    with pytest.raises(GradcheckError) as info:
        gradcheck(make_matmul(wrong_element=element), inputs(*size))
    assert f"inputs[0][{element[0]}, {element[1]}]" in str(info.value)


@pytest.mark.parametrize("size", [(3, 4, 5), (256, 256, 256)], ids=["small", "width256"])
def test_catches_zero_gradient(size):
    with pytest.raises(GradcheckError):
        gradcheck(make_matmul(zero=True), inputs(*size))


def test_passes_large_elementwise_and_reductions():
    x = tinygen.tensor(np.random.default_rng(1).uniform(0.5, 2.0, (64, 128)), requires_grad=True)
    assert gradcheck(lambda t: (t.log() * t.tanh()).softmax(1), [x])
    assert gradcheck(lambda t: t.logsumexp(0), [x])


def test_report_names_function_input_values_tolerances_and_seed():
    def wrong_exp(x):
        return make_matmul(scale=1.001)(x, x.mT)

    x = tinygen.tensor(np.random.default_rng(2).standard_normal((3, 3)), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(wrong_exp, [x], seed=5)
    text = str(info.value)
    for part in ("'wrong_exp'", "input 0", "worst element: inputs[0][", "analytical:", "numerical:",
                 "atol=1e-07", "rtol=1e-05", "seed=5"):  # fmt: skip
        assert part in text


def test_raise_exception_false_returns_false():
    assert gradcheck(make_matmul(scale=1.001), inputs(2, 3, 2), raise_exception=False) is False


def test_float32_refused_unless_upcast():
    x = tinygen.randn(3, 4, requires_grad=True)
    with pytest.raises(DTypeError, match="float64"):
        gradcheck(tinygen.tanh, [x])
    assert gradcheck(tinygen.tanh, [x], upcast=True)
    assert x.dtype == np.float32  # the caller's tensor is untouched


def test_inputs_are_not_modified():
    a, b = inputs(3, 3, 3)
    before = a.data.copy()
    gradcheck(tinygen.matmul, [a, b])
    np.testing.assert_array_equal(a.data, before)
    assert a.grad is None


def test_no_differentiable_input_is_an_error():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(tinygen.exp, [tinygen.tensor(np.ones(3))])


class CubeDetachedBackward(Function):
    """First derivative right, but computed outside the graph: its second derivative is lost."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * tinygen.Tensor(3 * x.data**2)


def test_gradgradcheck_catches_wrong_second_derivative():
    x = tinygen.tensor(np.linspace(0.5, 1.5, 6), requires_grad=True)
    assert gradcheck(CubeDetachedBackward.apply, [x])
    with pytest.raises(GradcheckError, match="second order"):
        gradgradcheck(CubeDetachedBackward.apply, [x])


def test_gradgradcheck_passes_composite_and_matmul_256():
    a, b = inputs(256, 256, 256)
    assert gradgradcheck(lambda x, y: (x @ y).tanh(), [a, b])


# ----------------------------------------------------------------------------- strategies


@given(tst.arrays(tst.shapes(min_dims=1), away_from=(0.0, 1.0), margin=0.1))
def test_arrays_keep_away_from_kinks(x):
    assert x.dtype == np.float64
    assert (np.abs(x) >= 0.1).all() and (np.abs(x - 1.0) >= 0.1).all()


@given(tst.arrays(tst.shapes(min_dims=1, max_side=6), distinct=True))
def test_distinct_arrays_have_no_near_ties(x):
    values = np.sort(x.ravel())
    assert (np.diff(values) > 1e-3).all()


@given(tst.broadcastable_shapes())
def test_broadcastable_shapes_broadcast(shapes):
    np.broadcast_shapes(*shapes)


@given(tst.tensors(tst.shapes(), min_value=0.2))
def test_tensors_are_float64_leaves_requiring_grad(x):
    assert x.requires_grad and x.is_leaf and x.dtype == np.float64
    assert (x.data >= 0.2).all()


@given(st.data())
def test_strategies_drive_a_user_gradcheck(data):
    x = data.draw(tst.tensors(tst.shapes(max_dims=2), min_value=0.2, max_value=3.0))
    assert gradcheck(lambda t: t.log() * t.sqrt(), [x])


def test_nan_forward_fails_instead_of_passing():
    class NanSquare(Function):
        @staticmethod
        def forward(ctx, x):
            return x.data * float("nan")

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    with pytest.raises(GradcheckError, match="numerical: nan"):
        gradcheck(NanSquare.apply, [tinygen.tensor(np.ones(3), requires_grad=True)])


@given(
    tst.arrays(tst.shapes(min_dims=1, max_dims=3, max_side=6), min_value=0.1, max_value=2.0, distinct=True)
)
def test_distinct_arrays_stay_in_range(x):
    assert x.min() >= 0.1 and x.max() <= 2.0


@given(tst.arrays(tst.shapes(min_dims=1), min_value=-1.0, max_value=1.0, away_from=(0.95,), margin=0.1))
def test_away_from_stays_in_range(x):
    assert x.min() >= -1.0 and x.max() <= 1.0 and (np.abs(x - 0.95) >= 0.1).all()
