"""``compare_devices``: its comparison logic on the CPU (a planted mismatch), and the real thing on a GPU."""

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tinygen import backend
from tinygen.autograd import Function
from tinygen.testing import DeviceMismatchError, check_op, compare_devices

X = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
W = np.random.default_rng(1).standard_normal((4, 3, 3, 3))


def conv(x, w):
    return F.conv2d(x, w, stride=2, padding=1)


class WrongWeightGradient(Function):
    """conv's twin with a weight gradient 1e-6 off: the size of a wrong reduction in a kernel."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return conv(x, w).data

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        with tinygen.enable_grad():
            grad_x, grad_w = tinygen.grad(conv(x, w), [x, w], grad)
        return grad_x, grad_w * (1 + 1e-6)


def test_the_same_op_matches_itself():
    assert compare_devices(conv, (X, W), "cpu")


def test_a_twin_with_a_wrong_value_is_caught():
    def twin(x, w):
        out = conv(x, w)
        return out + tinygen.tensor(np.where(np.arange(out.numpy().size) == 7, 1e-7, 0.0).reshape(out.shape))

    with pytest.raises(DeviceMismatchError) as info:
        compare_devices(twin, (X, W), "cpu", reference_fn=conv, name="conv2d")
    text = str(info.value)
    assert "compare_devices failed for 'conv2d': output 0 differs between cpu and cpu at 1 of 72" in text
    assert "worst element: outputs[0][0, 0, 2, 1]: cpu gives" in text
    assert "inputs = (numpy.array([[[[" in text


def test_a_twin_with_a_wrong_gradient_is_caught():
    with pytest.raises(DeviceMismatchError, match=r"the gradient with respect to inputs\[1\] differs"):
        compare_devices(WrongWeightGradient.apply, (X, W), "cpu", reference_fn=conv)


def test_a_twin_with_a_missing_output_or_dtype_is_caught():
    with pytest.raises(DeviceMismatchError, match="float32"):
        compare_devices(lambda x, w: conv(x, w).float(), (X, W), "cpu", reference_fn=conv)
    with pytest.raises(DeviceMismatchError, match="on cpu it gives"):
        compare_devices(lambda x, w: (conv(x, w), x * 2), (X, W), "cpu", reference_fn=conv)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
def test_on_cuda_checks_run_in_float64_and_match_the_cpu():
    assert compare_devices(conv, (X, W), "cuda")
    assert check_op(conv, (X, W), device="cuda", order=2, reference=lambda x, w: conv(
        tinygen.tensor(x), tinygen.tensor(w)).numpy())  # fmt: skip
    with pytest.raises(DeviceMismatchError):
        compare_devices(WrongWeightGradient.apply, (X, W), "cuda", reference_fn=conv)
