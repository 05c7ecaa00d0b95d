"""A tensor and a Python number: ``a + 2``, ``2 - a``, ``a * 0.5``, ``1 / a``.

The number stays a number. It enters the array expression as it is, so NumPy and CuPy cast
it to the tensor's dtype (a Python number is "weak", as a scalar is in PyTorch:
``float32 * 2.0`` is float32), and on a GPU it travels as a kernel argument instead of
being copied to the device as a 0-d array first. ``ops.elementwise._binary`` sends
``a - 2`` to ``SubNumber`` and ``2 - a`` to ``NumberSub``; the values are bit for bit
those of the tensor forms (``Add``, ``Sub``, ...) with the number as a 0-d tensor.

Each backward is written with differentiable ops, so it differentiates again.
"""

from tinygen.autograd.function import Function


class AddNumber(Function):
    """``y = a + s`` for a number ``s``;  ``da = dy``."""

    @staticmethod
    def forward(ctx, a, s):
        return a.data + s

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class SubNumber(Function):
    """``y = a - s`` for a number ``s``;  ``da = dy``."""

    @staticmethod
    def forward(ctx, a, s):
        return a.data - s

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class NumberSub(Function):
    """``y = s - a`` for a number ``s``;  ``da = -dy``."""

    @staticmethod
    def forward(ctx, a, s):
        return s - a.data

    @staticmethod
    def backward(ctx, grad):
        return -grad, None


class MulNumber(Function):
    """``y = a * s`` for a number ``s``;  ``da = dy * s``."""

    @staticmethod
    def forward(ctx, a, s):
        ctx.s = s
        return a.data * s

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.s, None


class DivNumber(Function):
    """``y = a / s`` for a number ``s``;  ``da = dy / s``."""

    @staticmethod
    def forward(ctx, a, s):
        ctx.s = s
        return a.data / s

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.s, None


class NumberDiv(Function):
    """``y = s / a`` for a number ``s``;  ``da = -dy * s / a**2``."""

    @staticmethod
    def forward(ctx, a, s):
        ctx.save_for_backward(a)
        ctx.s = s
        return s / a.data

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return -grad * ctx.s / (a * a), None
