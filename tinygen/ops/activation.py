"""Activation functions: relu, leaky_relu, elu, softplus (sigmoid and tanh are in elementwise).

Each backward multiplies the incoming gradient by the local slope. Where the slope is
piecewise constant (relu, leaky_relu) it is a constant mask, so the second derivative
is 0; elu and softplus have smooth slopes written with differentiable ops.
"""

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor
from tinygen.ops.elementwise import sigmoid, where


class Relu(Function):
    """``y = max(x, 0)``;  ``dx = dy * [x > 0]``."""

    @staticmethod
    def forward(ctx, x):
        xp = backend.get_array_module(x.data)
        y = xp.maximum(x.data, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * Tensor(y.data > 0)


def _leaky_relu_scale(xp, x, slope):
    """``(y, scale)``: ``scale = 1`` where ``x > 0``, else ``slope``, and ``y = x * scale``.

    ``scale`` is ``slope + (1 - slope) * [x > 0]``, since NumPy's where() takes branches per
    element and is much slower on a random sign pattern.
    """
    scale = (x > 0).astype(x.dtype)
    scale *= x.dtype.type(1 - slope)
    scale += x.dtype.type(slope)
    return x * scale, scale


# The same in one kernel, where the xp version launches five; the same operations, so the
# same bits.
LEAKY_RELU_KERNEL = backend.CudaSource(
    "T x, T one_minus_slope, T slope", "T y, T scale",
    "scale = (x > 0 ? one_minus_slope : (T)0) + slope;  y = x * scale;", "tinygen_leaky_relu",
)


def _leaky_relu_scale_cuda(x, slope):
    xp = backend.get_array_module(x)
    y, scale = xp.empty_like(x), xp.empty_like(x)
    backend.elementwise(LEAKY_RELU_KERNEL)(x, x.dtype.type(1 - slope), x.dtype.type(slope), y, scale)
    return y, scale


leaky_relu_scale = backend.twin(_leaky_relu_scale, cuda=_leaky_relu_scale_cuda)


class LeakyRelu(Function):
    """``y = x if x > 0 else slope * x``;  ``dx = dy * (1 if x > 0 else slope)``."""

    @staticmethod
    def forward(ctx, x, slope):
        y, scale = leaky_relu_scale(x.data, slope)
        ctx.save_for_backward(scale)
        return y

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class Elu(Function):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``;  ``dx = dy * (1 if x > 0 else y + alpha)``."""

    @staticmethod
    def forward(ctx, x, alpha):
        xp = backend.get_array_module(x.data)
        y = xp.where(x.data > 0, x.data, alpha * xp.expm1(xp.minimum(x.data, 0))).astype(x.dtype)
        ctx.save_for_backward(x, y)
        ctx.alpha = alpha
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return where(x > 0, grad, grad * (y + ctx.alpha)), None


class Softplus(Function):
    """``y = log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold`` (PyTorch).

    ``dx = dy * sigmoid(beta x)`` (``dy`` in the linear region). Computed as
    ``max(z, 0) + log1p(exp(-|z|))`` with ``z = beta x`` so nothing overflows.
    """

    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = backend.get_array_module(x.data)
        z = x.data * beta
        y = (xp.maximum(z, 0) + xp.log1p(xp.exp(-abs(z)))) / beta
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        return xp.where(z > threshold, x.data, y).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        z = x * ctx.beta
        return where(z > ctx.threshold, grad, grad * sigmoid(z)), None, None


def relu(x):
    return Relu.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyRelu.apply(x, negative_slope)


def elu(x, alpha=1.0):
    return Elu.apply(x, alpha)


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus.apply(x, beta, threshold)
