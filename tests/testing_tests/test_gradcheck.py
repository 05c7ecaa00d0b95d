"""The checker must catch real mistakes with its default tolerances and pass correct code."""

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tinygen.autograd import Function
from tinygen.errors import DTypeError, GraphError
from tinygen.testing import GradcheckError, gradcheck, gradgradcheck


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
    with pytest.raises(GradcheckError, match=r"inputs\[0\]"):
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
    for part in ("'wrong_exp'", "inputs[0] (shape (3, 3))", "worst element: inputs[0][", "analytical:",
                 "numerical:", "atol=1e-07", "rtol=1e-05", "seed=5"):  # fmt: skip
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


# ----------------------------------------------------------------------------- large inputs


def planted_exp(at=None, factor=1.0):
    """``exp(x)`` whose backward is off by ``factor`` at element ``at`` (when given)."""

    class PlantedExp(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.exp(x.data)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            grad_x = (grad * x.exp()).data.copy()
            if at is not None:
                grad_x[at] *= factor
            return tinygen.Tensor(grad_x)

    return PlantedExp.apply


def large_input(seed=0):
    return tinygen.tensor(np.random.default_rng(seed).uniform(-2, 2, (200, 200)), requires_grad=True)


@pytest.mark.parametrize("seed", range(3))
def test_block_mode_catches_one_element_off_by_a_thousandth_in_40000(seed):
    """The issue's case: above max_elements, one gradient element x1.001 (missed at seed 0 before)."""
    element = tuple(int(i) for i in np.random.default_rng(seed).integers(0, 200, 2))
    with pytest.raises(GradcheckError) as info:
        gradcheck(planted_exp(element, 1.001), [large_input(seed)], seed=seed)
    text = str(info.value)
    assert f"worst element: inputs[0][{element[0]}, {element[1]}]" in text
    assert "256 random directions" in text
    assert gradcheck(planted_exp(), [large_input(seed)], seed=seed)


def test_directions_set_the_strength_as_documented():
    """One direction over all 40,000: 0.1% (r ~ 100 < sqrt(sum m^2) ~ 306) passes, 1% (r ~ 1000) fails."""
    x = large_input()
    assert gradcheck(planted_exp((5, 5), 1.001), [x], directions=1)
    with pytest.raises(GradcheckError, match=r"inputs\[0\]\[5, 5\]"):
        gradcheck(planted_exp((5, 5), 1.01), [x], directions=1)


def test_block_mode_reports_a_non_finite_gradient_element():
    with pytest.raises(GradcheckError, match=r"inputs\[0\]\[3, 4\].*\n.*analytical: inf"):
        gradcheck(planted_exp((3, 4), np.inf), [large_input()])


def test_fast_mode_passes_a_large_conv_and_catches_a_wrong_one():
    rng = np.random.default_rng(3)
    x = tinygen.tensor(rng.standard_normal((4, 16, 40, 40)), requires_grad=True)  # 102,400 inputs
    w = tinygen.tensor(rng.standard_normal((8, 16, 3, 3)) / 12, requires_grad=True)
    assert gradcheck(lambda a, b: F.conv2d(a, b, padding=1), [x, w], fast_mode=True)

    class GradientTimes1001(Function):  # the identity, with a backward 0.1% too large
        @staticmethod
        def forward(ctx, t):
            return t.data.copy()

        @staticmethod
        def backward(ctx, grad):
            return grad * 1.001

    def wrong_weight_gradient(a, b):
        return F.conv2d(a, GradientTimes1001.apply(b), padding=1)

    with pytest.raises(GradcheckError, match=r"respect to inputs\[1\][^\n]*\n.*\n.*\n.*fast_mode: 8 random"):
        gradcheck(wrong_weight_gradient, [x, w], fast_mode=True)


# ----------------------------------------------------------------------------- dtypes


class Float32Gradient(Function):
    @staticmethod
    def forward(ctx, x):
        return x.data * 2

    @staticmethod
    def backward(ctx, grad):
        return (grad * 2).to(tinygen.float32)


def test_a_float32_gradient_for_a_float64_input_is_an_error_in_the_engine_and_gradcheck():
    x = tinygen.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(GraphError, match="Float32GradientBackward: backward returned a float32 gradient for "
                       "argument 0, a float64 tensor"):  # fmt: skip
        Float32Gradient.apply(x).sum().backward()
    assert x.grad is None
    with pytest.raises(GraphError, match="float32 gradient"):
        gradcheck(Float32Gradient.apply, [x])


def test_a_higher_precision_gradient_is_let_through():
    """A mixed-dtype op's float64 gradient for its float32 input is no precision loss (as before)."""
    a = tinygen.tensor(np.ones(3, np.float32), requires_grad=True)
    b = tinygen.tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    assert b.grad.dtype == np.float64


def test_a_backward_returning_a_bare_ndarray_names_the_function():
    class BareArray(Function):
        @staticmethod
        def forward(ctx, x):
            return x.data * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.data * 2

    x = tinygen.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(GraphError, match=r"BareArrayBackward: backward returned a numpy.ndarray as the "
                       r"gradient of argument 0; it must return a Tensor"):  # fmt: skip
        BareArray.apply(x).sum().backward()


class Float32Tanh(Function):
    """tanh computed in float32 inside, for float64 inputs; ``scale`` plants a bug."""

    scale = 1.0

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x.data.astype(np.float32))
        ctx.save_for_backward(y)
        return y

    @classmethod
    def backward(cls, ctx, grad):
        (y,) = ctx.saved_tensors
        return (grad * (1 - y * y) * cls.scale).to(tinygen.float64)


class Float32TanhOff(Float32Tanh):
    scale = 1.01


def test_float32_internals_get_a_float32_floor_and_say_so():
    x = tinygen.tensor(np.random.default_rng(4).uniform(-2, 2, (3, 4)), requires_grad=True)
    assert gradcheck(Float32Tanh.apply, [x])
    assert gradcheck(Float32Tanh.apply, [x.float()], upcast=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(Float32TanhOff.apply, [x])
    assert "note: output 0 is float32 although the inputs are float64" in str(info.value)
    assert "eps=0.0049" in str(info.value)


# ----------------------------------------------------------------------------- orders and labels


def test_second_order_report_names_the_incoming_gradient():
    class CubeDetachedIncoming(Function):  # d(backward)/d(grad) is lost: grad is used as raw data
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return tinygen.Tensor(grad.data) * 3 * x * x

    x = tinygen.tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)
    assert gradcheck(CubeDetachedIncoming.apply, [x])
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(CubeDetachedIncoming.apply, [x], name="cube")
    assert "'cube (second order)': gradient mismatch with respect to v[0] (shape (4,)), the incoming " \
        "gradient of output 0\n  worst element: v[0][" in str(info.value)  # fmt: skip


def test_a_lost_second_derivative_hints_at_a_non_differentiable_backward():
    x = tinygen.tensor(np.linspace(0.5, 1.5, 6), requires_grad=True)
    with pytest.raises(GradcheckError, match="exactly 0 everywhere: the order-1 backward is probably not "
                       "differentiable"):  # fmt: skip
        gradcheck(CubeDetachedBackward.apply, [x], order=2)


def test_a_0d_input_is_named_without_empty_brackets():
    x = tinygen.tensor(np.array(0.7), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(make_matmul(scale=1.001), [x.reshape(1, 1), tinygen.tensor(np.ones((1, 1)))])
    with pytest.raises(GradcheckError) as info:
        gradcheck(planted_exp((), 1.001), [x])
    assert "worst element: inputs[0] (0-d: its only element)" in str(info.value)
    assert "[]" not in str(info.value)


class CubeThirdOrderLost(Function):
    """x**3 whose second derivative (6x) is computed from raw arrays: orders 1 and 2 right, 3 wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ThreeSquared.apply(x)


class ThreeSquared(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 3 * x.data**2

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * tinygen.Tensor(6 * x.data)


def test_third_order():
    x = tinygen.tensor(np.linspace(0.5, 1.5, 5), requires_grad=True)
    assert gradcheck(lambda t: (t.exp() * t.tanh()).sum(), [x], order=3)
    assert gradcheck(CubeThirdOrderLost.apply, [x], order=2)
    with pytest.raises(GradcheckError, match=r"'CubeThirdOrderLost \(third order\)'"):
        gradcheck(CubeThirdOrderLost.apply, [x], order=3)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(order=0), "order is 0"), (dict(eps=-1.0), "eps is -1.0"), (dict(directions=0), "directions is 0"),
     (dict(atol=-1.0), "atol=-1.0")],
)  # fmt: skip
def test_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradcheck(tinygen.exp, [tinygen.tensor(np.ones(2), requires_grad=True)], **kwargs)
