"""Elementwise ops: arithmetic, unary math, activations, selection, comparisons.

Binary ops broadcast like NumPy: the forward broadcasts, and backward sums the gradient
back to each input's shape (``sum_to``), since an input repeated along an axis receives
the sum of the gradients of its copies.

Every backward is written with these same differentiable ops, so differentiating it
again (``create_graph=True``) needs nothing more. Where a derivative is piecewise
constant (relu, clamp, abs) the mask is a constant, so its own derivative is zero.
"""

import numbers

import numpy

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor, as_tensor, default_float_dtype
from tinygen.errors import DTypeError, ShapeError
from tinygen.ops import number


def _binary(fn, a, b):
    """Apply a binary Function. A real number beside a tensor takes the op's number form
    (``a + 2`` is ``AddNumber``), any other non-tensor becomes a tensor."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):  # two tensors skip all of this
        forms = _NUMBER_FORMS.get(fn)
        if forms is not None and isinstance(a, Tensor) and isinstance(b, numbers.Real):
            value, a = _as_number(b, a)
            return forms[0].apply(a, value)
        if forms is not None and isinstance(b, Tensor) and isinstance(a, numbers.Real):
            value, b = _as_number(a, b)
            return forms[1].apply(b, value)
        if not isinstance(a, Tensor):
            a, b = _promote_scalar(a, b)
        else:
            b, a = _promote_scalar(b, a)
    try:
        return fn.apply(a, b)
    except ValueError:
        _check_broadcast(fn.__name__.lower(), a.shape, b.shape)
        raise


def _as_number(number, tensor):
    """``number`` as a plain Python bool, int or float beside ``tensor``.

    A Python number is "weak" in NumPy and CuPy arithmetic: it takes the tensor's dtype, as
    a scalar does in PyTorch. (A NumPy scalar such as ``numpy.float64(2)`` would impose its own
    dtype, so it is turned into a Python number first.) A float beside an integer or bool
    tensor makes the tensor the default float dtype, as ``_promote_scalar`` does.
    """
    if isinstance(number, (bool, numpy.bool_)):
        return bool(number), tensor
    if isinstance(number, numbers.Integral):
        return int(number), tensor
    if tensor.dtype.kind != "f":
        tensor = Tensor(tensor.data.astype(default_float_dtype))
    return float(number), tensor


def _promote_scalar(number, tensor):
    """A Python number as a tensor beside ``tensor``; a float beside integers makes both float32."""
    number = as_tensor(number, like=tensor)
    if number.dtype.kind == "f" and tensor.dtype.kind != "f":
        tensor = Tensor(tensor.data.astype(number.dtype))
    return number, tensor


def _check_broadcast(op, *shapes):
    """Raise a ShapeError naming ``op`` and the shapes when they don't broadcast."""
    try:
        numpy.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(s) for s in shapes)
        raise ShapeError(f"{op}: shapes {listed} don't broadcast (sizes must match or be 1)") from None


def _sum_to(grad, shape):
    if grad.shape == shape:
        return grad
    from tinygen.ops.shape import sum_to

    return sum_to(grad, shape)


# ----------------------------------------------------------------------------- arithmetic


class Add(Function):
    """``y = a + b``;  ``da = dy``, ``db = dy`` (each summed to its input's shape)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a.data + b.data

    @staticmethod
    def backward(ctx, grad):
        return _sum_to(grad, ctx.shapes[0]), _sum_to(grad, ctx.shapes[1])


class Sub(Function):
    """``y = a - b``;  ``da = dy``, ``db = -dy``."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a.data - b.data

    @staticmethod
    def backward(ctx, grad):
        grad_b = _sum_to(-grad, ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return _sum_to(grad, ctx.shapes[0]), grad_b


class Mul(Function):
    """``y = a * b``;  ``da = dy * b``, ``db = dy * a``."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.data * b.data

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = _sum_to(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = _sum_to(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """``y = a / b``;  ``da = dy / b``, ``db = -dy * a / b**2``."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.data / b.data

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = _sum_to(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = _sum_to(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


# For each binary op, its form for (tensor, number) and for (number, tensor): ops/number.py.
_NUMBER_FORMS = {
    Add: (number.AddNumber, number.AddNumber),
    Sub: (number.SubNumber, number.NumberSub),
    Mul: (number.MulNumber, number.MulNumber),
    Div: (number.DivNumber, number.NumberDiv),
}


class Neg(Function):
    """``y = -x``;  ``dx = -dy``."""

    @staticmethod
    def forward(ctx, x):
        return -x.data

    @staticmethod
    def backward(ctx, grad):
        return -grad


class PowScalar(Function):
    """``y = x ** p`` for a number ``p``;  ``dx = dy * p * x ** (p - 1)`` (0 when p = 0)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x.data**p

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.p == 0:
            return grad * 0.0, None
        if ctx.p == 2:
            return grad * 2 * x, None
        return grad * ctx.p * x ** (ctx.p - 1), None


class Pow(Function):
    """``y = a ** b``;  ``da = dy * b * a ** (b - 1)``, ``db = dy * y * log(a)``.

    At the edges PyTorch's conventions hold: ``da = 0`` where ``b = 0`` (even at a = 0),
    ``db = 0`` where ``a = 0`` and ``b >= 0``, and ``db`` is NaN where ``a < 0``.
    """

    @staticmethod
    def forward(ctx, a, b):
        y = a.data**b.data
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        grad_a = grad_b = None
        with numpy.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                grad_a = _sum_to(where(Tensor(b.data == 0), 0.0, grad * b * a ** (b - 1)), a.shape)
            if ctx.needs_input_grad[1]:
                zero_base = Tensor((a.data == 0) & (b.data >= 0))
                grad_b = _sum_to(where(zero_base, 0.0, grad * y * log(a)), b.shape)
        return grad_a, grad_b


def add(a, b):
    return _binary(Add, a, b)


def sub(a, b):
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, a, b)


def div(a, b):
    return _binary(Div, a, b)


def neg(x):
    return Neg.apply(x)


def pow(x, exponent):  # noqa: A001  (PyTorch's name)
    """``x ** exponent``; either side may be a Python number."""
    if isinstance(exponent, numbers.Number) and isinstance(x, Tensor):
        return PowScalar.apply(x, exponent)
    return _binary(Pow, x, exponent)


# ----------------------------------------------------------------------------- unary math


class Exp(Function):
    """``y = exp(x)``;  ``dx = dy * y``."""

    @staticmethod
    def forward(ctx, x):
        y = backend.get_array_module(x.data).exp(x.data)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Log(Function):
    """``y = log(x)``;  ``dx = dy / x``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.get_array_module(x.data).log(x.data)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    """``y = sqrt(x)``;  ``dx = dy / (2 y)``."""

    @staticmethod
    def forward(ctx, x):
        y = backend.get_array_module(x.data).sqrt(x.data)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


class Abs(Function):
    """``y = |x|``;  ``dx = dy * sign(x)`` (0 at x = 0, as PyTorch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return abs(x.data)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sign(x)


class Tanh(Function):
    """``y = tanh(x)``;  ``dx = dy * (1 - y**2)``."""

    @staticmethod
    def forward(ctx, x):
        y = backend.get_array_module(x.data).tanh(x.data)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Sigmoid(Function):
    """``y = 1 / (1 + exp(-x))``;  ``dx = dy * y * (1 - y)``.

    Stable: with ``e = exp(-|x|)`` (never overflows), ``y = 1/(1+e)`` for x >= 0 and
    ``e/(1+e)`` for x < 0.
    """

    @staticmethod
    def forward(ctx, x):
        xp = backend.get_array_module(x.data)
        e = xp.exp(-abs(x.data))
        y = xp.where(x.data >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def abs_(x):
    return Abs.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def sign(x):
    """-1, 0 or 1 elementwise; no gradient flows through it."""
    return Tensor(backend.get_array_module(x.data).sign(x.data))


# ----------------------------------------------------------------------------- selection


class Where(Function):
    """``y = a where cond else b``;  ``da = dy where cond else 0``, ``db`` the rest."""

    @staticmethod
    def forward(ctx, cond, a, b):
        a, b = _data(a), _data(b)  # either may be a number
        ctx.save_for_backward(cond)
        ctx.shapes = (numpy.shape(a), numpy.shape(b))
        return backend.get_array_module(cond.data).where(cond.data, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        grad_a = _sum_to(where(cond, grad, 0.0), ctx.shapes[0]) if ctx.needs_input_grad[1] else None
        grad_b = _sum_to(where(cond, 0.0, grad), ctx.shapes[1]) if ctx.needs_input_grad[2] else None
        return None, grad_a, grad_b


def _data(value):
    """A tensor's array, or a number as it is."""
    return value.data if isinstance(value, Tensor) else value


def where(condition, input, other):  # noqa: A002  (PyTorch's names)
    """Elementwise ``input if condition else other``; numbers on either side are allowed."""
    condition = condition if isinstance(condition, Tensor) else as_tensor(condition)
    if condition.dtype.kind != "b":
        raise DTypeError(f"where: condition must be a bool tensor, got dtype {condition.dtype}")
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    input, other = _where_operand(input, like), _where_operand(other, like)
    _check_broadcast("where", condition.shape, numpy.shape(input), numpy.shape(other))
    return Where.apply(condition, input, other)


def _where_operand(value, like):
    """A real number beside a float tensor stays a number (see ops/number.py); else a tensor."""
    if isinstance(value, numbers.Real) and isinstance(like, Tensor) and like.dtype.kind == "f":
        return float(value)
    return as_tensor(value, like=like)


class _Extremum(Function):
    """``y = max(a, b)`` (or min); the gradient goes to the chosen side, half each on ties."""

    @staticmethod
    def forward(ctx, a, b, take_max):
        xp = backend.get_array_module(a.data, b.data)
        y = xp.maximum(a.data, b.data) if take_max else xp.minimum(a.data, b.data)
        chosen_a = (a.data > b.data) if take_max else (a.data < b.data)
        weight_a = xp.where(a.data == b.data, 0.5, chosen_a).astype(y.dtype)
        ctx.save_for_backward(weight_a)
        ctx.shapes = (a.shape, b.shape)
        return y

    @staticmethod
    def backward(ctx, grad):
        (weight_a,) = ctx.saved_tensors
        grad_a = _sum_to(grad * weight_a, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        grad_b = _sum_to(grad * (1 - weight_a), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


def maximum(a, b):
    return _binary_with(_Extremum, a, b, True)


def minimum(a, b):
    return _binary_with(_Extremum, a, b, False)


def _binary_with(fn, a, b, *extra):
    like = a if isinstance(a, Tensor) else b
    a, b = as_tensor(a, like=like), as_tensor(b, like=like)
    _check_broadcast("maximum" if extra[0] else "minimum", a.shape, b.shape)
    return fn.apply(a, b, *extra)


def clamp(x, min=None, max=None):  # noqa: A002  (PyTorch's names)
    """Limit ``x`` to ``[min, max]``; the gradient passes where ``min <= x <= max``."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        lo = None if min is None else as_tensor(min, like=x)
        hi = None if max is None else as_tensor(max, like=x)
        _check_broadcast("clamp", *[t.shape for t in (x, lo, hi) if t is not None])
        return ClampTensor.apply(x, lo, hi)
    xp = backend.get_array_module(x.data)
    inside = xp.ones(x.shape, dtype=bool)
    clipped = x.data
    if min is not None:
        inside &= x.data >= min
        clipped = xp.maximum(clipped, min)
    if max is not None:
        inside &= x.data <= max
        clipped = xp.minimum(clipped, max)
    return Clamp.apply(x, clipped.astype(x.dtype, copy=False), inside.astype(x.dtype))


class Clamp(Function):
    """``y = clip(x)`` given the clipped values and the pass-through mask; ``dx = dy * mask``."""

    @staticmethod
    def forward(ctx, x, clipped, inside):
        ctx.save_for_backward(inside)
        return clipped

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


class ClampTensor(Function):
    """``y = min(max(x, lo), hi)`` with tensor bounds; the gradient goes where each value came from.

    ``dx = dy * [lo <= x <= hi]``, ``dlo = dy * [x < lo and lo < hi]``,
    ``dhi = dy * [x > hi or hi < lo]`` (PyTorch's ``clamp.Tensor`` rule: when ``lo = hi``
    and ``x`` is outside, no input gets the gradient). Either bound may be None.
    """

    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = backend.get_array_module(x.data)
        y, take_x = x.data, xp.ones(x.shape, dtype=bool)
        take_lo = take_hi = None
        if lo is not None:
            y = xp.maximum(y, lo.data)
            take_x = take_x & (x.data >= lo.data)
            take_lo = (x.data < lo.data) & (True if hi is None else lo.data < hi.data)
        if hi is not None:
            y = xp.minimum(y, hi.data)
            take_x = take_x & (x.data <= hi.data)
            take_hi = (x.data > hi.data) | (False if lo is None else hi.data < lo.data)
        ctx.masks = (take_x, take_lo, take_hi)
        ctx.shapes = tuple(None if t is None else t.shape for t in (x, lo, hi))
        return y

    @staticmethod
    def backward(ctx, grad):
        grads = []
        for needed, mask, shape in zip(ctx.needs_input_grad, ctx.masks, ctx.shapes, strict=True):
            grads.append(_sum_to(where(Tensor(mask), grad, 0.0), shape) if needed else None)
        return tuple(grads)


# ----------------------------------------------------------------------------- dtype, device


class Cast(Function):
    """``y = x`` in another dtype;  ``dx = dy`` cast back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.data.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return (Cast.apply(grad, ctx.dtype) if ctx.dtype.kind == "f" else None), None


class ToDevice(Function):
    """``y = x`` on another device;  ``dx = dy`` moved back."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.device = x.device
        return backend.to_device(x.data, device)

    @staticmethod
    def backward(ctx, grad):
        return ToDevice.apply(grad, ctx.device), None


# ----------------------------------------------------------------------------- comparisons


def _compare(name):
    def compare(a, b):
        like = a if isinstance(a, Tensor) else b
        a, b = (_compare_operand(v, like) for v in (a, b))
        return Tensor(getattr(backend.get_array_module(a, b), name)(a, b))

    compare.__name__ = name
    compare.__doc__ = f"Elementwise ``{name}`` as a bool tensor (no gradient)."
    return compare


def _compare_operand(value, like):
    """An array to compare; a real number beside a tensor stays a number (no 0-d array)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, numbers.Real) and isinstance(like, Tensor):
        return value.item() if isinstance(value, numpy.generic) else value
    return as_tensor(value, like=like).data


eq = _compare("equal")
ne = _compare("not_equal")
lt = _compare("less")
le = _compare("less_equal")
gt = _compare("greater")
ge = _compare("greater_equal")
