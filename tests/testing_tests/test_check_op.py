"""``check_op`` and ``op_test``: one call per op, failing on each planted bug with a pasteable report."""

import numpy as np
import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st

import tinygen
import tinygen.nn.functional as F
from tinygen.autograd import Function
from tinygen.testing import (
    CheckError,
    ForwardMismatchError,
    GradcheckError,
    check_op,
    format_inputs,
    op_test,
)
from tinygen.testing import strategies as tst


def np_softsign(x):
    return x / (1 + np.abs(x))


def softsign(backward_scale=1.0, forward_scale=1.0, detach=False, third=True):
    """Softsign as a Function, with bugs to plant: scaled forward or backward, a raw-array backward."""

    class Softsign(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data / (1 + np.abs(x.data)) * forward_scale

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            if detach:
                return grad * tinygen.Tensor(1 / (1 + np.abs(x.data)) ** 2)
            d = 1 + x.abs()
            return grad / (d * d) * backward_scale

    return Softsign.apply


X = np.array([[0.5, -1.0, 2.0], [0.3, -0.2, 1.5]])


def test_passes_a_correct_op_to_third_order():
    assert check_op(softsign(), X, reference=np_softsign, order=3)
    assert check_op(tinygen.matmul, (X, X.T), reference=np.matmul)


def test_wrong_forward_is_caught_against_the_reference():
    with pytest.raises(ForwardMismatchError) as info:
        check_op(softsign(forward_scale=1 + 1e-8), X, reference=np_softsign)
    text = str(info.value)
    assert "forward check failed for 'Softsign': output 0 differs from the reference at 6 of 6" in text
    assert "worst element: outputs[0][0, 2]" in text
    assert "inputs = (numpy.array([[0.5, -1.0, 2.0], [0.3, -0.2, 1.5]]),)" in text


def test_forward_shape_and_dtype_are_compared():
    with pytest.raises(ForwardMismatchError, match=r"output 0 has shape \(2, 3\), the reference's is \(3,"):
        check_op(tinygen.exp, X, reference=lambda x: np.exp(x).T, order=0)
    with pytest.raises(ForwardMismatchError, match="output 0 is float32, the reference's is float64"):
        check_op(lambda x: x.float(), X, reference=lambda x: x, order=0)
    with pytest.raises(ForwardMismatchError, match="fn returned 1 outputs, the reference 2"):
        check_op(tinygen.exp, X, reference=lambda x: (x, x), order=0)


@pytest.mark.parametrize(
    "bug, match",
    [(dict(backward_scale=1.001), r"'Softsign': gradient mismatch with respect to inputs\[0\]"),
     (dict(detach=True), r"'Softsign \(second order\)'.*\n.*\n.*\n  hint: the analytical derivative")],
)  # fmt: skip
def test_first_and_second_order_bugs_are_caught(bug, match):
    with pytest.raises(GradcheckError, match=match):
        check_op(softsign(**bug), X, reference=np_softsign, order=2)


def test_order_1_skips_second_order_and_order_0_the_gradients():
    assert check_op(softsign(detach=True), X, reference=np_softsign, order=1)
    assert check_op(softsign(backward_scale=2.0), X, reference=np_softsign, order=0)


def test_list_arguments_integer_arrays_and_settings():
    """``cat``'s list of arrays is labelled ``inputs[0][1]``; an int array stays a constant tensor."""
    a, b = X, X[:1] * 3

    def cat_times(xs, index):
        joined = tinygen.cat(xs, 0)
        return joined[index] * joined[:2]

    assert check_op(cat_times, ([a, b], np.array([2, 0])), order=2,
                    reference=lambda xs, i: np.concatenate(xs)[i] * np.concatenate(xs)[:2])  # fmt: skip

    class ScaleSecond(Function):
        @staticmethod
        def forward(ctx, first, second):
            return first.data + 2 * second.data

        @staticmethod
        def backward(ctx, grad):
            return grad, (grad * 2.002).sum(0, keepdim=True)

    with pytest.raises(GradcheckError, match=r"with respect to inputs\[0\]\[1\] \(shape \(1, 3\)\)"):
        check_op(lambda xs: ScaleSecond.apply(*xs), ([a, b],), order=1, seed=3)
    with pytest.raises(TypeError, match="check_op: unknown setting 'tolerance'"):
        check_op(tinygen.exp, X, order=0, tolerance=1.0)


def test_a_large_op_in_fast_mode():
    big = np.random.default_rng(1).uniform(0.5, 2.0, (300, 400))
    assert check_op(lambda t: t.log() * t, big, reference=lambda x: np.log(x) * x, fast_mode=True)
    with pytest.raises(GradcheckError, match="fast_mode: 8 random directions"):
        check_op(softsign(backward_scale=1.001), big, fast_mode=True, order=1)


def test_format_inputs_pastes_back_bit_exactly():
    rng = np.random.default_rng(5)
    inputs = (rng.standard_normal((2, 3)), [np.array(1 / 3), rng.integers(0, 9, 4)], 2, (1, 2),
              tinygen.tensor(np.array([0.1 + 0.2, -0.0, np.inf])), np.array([np.nan]))  # fmt: skip
    text = format_inputs(inputs)
    rebuilt = eval(text, {"numpy": np, "tinygen": tinygen})  # noqa: S307  (our own output)
    assert len(rebuilt) == len(inputs)
    np.testing.assert_array_equal(rebuilt[0], inputs[0])
    assert rebuilt[0].tobytes() == inputs[0].tobytes()
    assert rebuilt[1][0].tobytes() == inputs[1][0].tobytes() and rebuilt[1][1].dtype == inputs[1][1].dtype
    assert rebuilt[2:4] == (2, (1, 2))
    assert isinstance(rebuilt[4], tinygen.Tensor) and not rebuilt[4].requires_grad
    assert rebuilt[4].numpy().tobytes() == inputs[4].numpy().tobytes()
    assert np.isnan(rebuilt[5]).all()
    assert "\n" not in text
    assert format_inputs(np.zeros((40, 40))).startswith("(numpy.zeros((40, 40)),)\n    # arrays of over")


# ----------------------------------------------------------------------------- under hypothesis


def forgets_the_abs():
    class ForgetsTheAbs(Function):  # right for x > 0 only
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data / (1 + np.abs(x.data))

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad / ((1 + x) * (1 + x))

    return ForgetsTheAbs.apply


DERANDOMIZED = settings(derandomize=True, database=None, max_examples=30)

test_softsign_by_op_test = op_test(
    softsign(), tst.arrays(tst.shapes(max_dims=3, max_side=4), away_from=(0.0,)),  # a corner of y'' at 0
    reference=np_softsign, order=2, name="softsign",
)  # fmt: skip

test_maximum_by_op_test = op_test(
    tinygen.maximum, tst.broadcast_arrays(2, max_dims=3, distinct=True), reference=np.maximum, name="maximum"
)


def test_op_test_reports_the_shrunk_input_and_it_reproduces():
    test = op_test(forgets_the_abs(), tst.arrays(tst.shapes(max_dims=3)), order=1, settings=DERANDOMIZED)
    assert test.__name__ == "test_ForgetsTheAbs"
    with pytest.raises(GradcheckError) as info:
        test()
    text = str(info.value)
    assert "hypothesis shrinks a failing input: this is the smallest it found" in text
    pasted = text.split("inputs = ")[1].split("\n")[0]
    inputs = eval(pasted, {"numpy": np})  # noqa: S307  (our own output)
    assert inputs[0].shape in ((), (1,)) and inputs[0].min() < 0  # shrunk to one negative value
    with pytest.raises(GradcheckError):
        check_op(forgets_the_abs(), inputs, order=1)  # the pasted input fails on its own


def test_op_test_notes_the_input_of_any_other_failure():
    def broken(x):
        raise ZeroDivisionError("planted")

    test = op_test(broken, tst.arrays((2,)), settings=settings(DERANDOMIZED, phases=[Phase.generate]))
    with pytest.raises(ZeroDivisionError) as info:
        test()
    notes = "\n".join(getattr(info.value, "__notes__", []))  # Python 3.11+: hypothesis attaches its notes
    assert not notes or "broken: inputs = (numpy.array([" in notes


@pytest.mark.parametrize("strategy", [tst.arrays((3,)), st.tuples(tst.arrays((3,)))])
def test_op_test_takes_one_argument_or_a_tuple(strategy):
    op_test(tinygen.exp, strategy, reference=np.exp, settings=DERANDOMIZED)()


def conv(config, x, weight, bias):
    return F.conv2d(x, weight, bias, **config.kwargs)


test_conv2d_drawn_with_its_kernel = op_test(conv, tst.conv_inputs(tst.conv_configs(max_size=4)), order=1)


def test_check_error_is_the_base():
    assert issubclass(GradcheckError, CheckError) and issubclass(ForwardMismatchError, CheckError)
