"""Reductions: sum, mean, max/min, var/std, norm, logsumexp, softmax, log_softmax.

``dim`` is None (all axes), an int or a tuple of ints; ``keepdim`` keeps reduced axes
as size 1, as in PyTorch. Backward re-inserts the reduced axes and broadcasts the
gradient back over them.
"""

import builtins
import collections

import numpy

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor
from tinygen.errors import ShapeError
from tinygen.ops import elementwise as ew
from tinygen.ops import shape as sh

values_indices = collections.namedtuple("values_indices", ["values", "indices"])


def _axes(dim, ndim, op):
    """Normalised reduction axes as a sorted tuple (all axes for None)."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int) and -ndim <= dim < ndim:
        return (dim % ndim,)
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = tuple(sorted({sh.normalize_dim(d, ndim, op) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} repeats an axis")
    return axes


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _expand_back(grad, shape, axes):
    """A gradient of the reduced shape, broadcast back over ``shape``."""
    return sh.broadcast_to(sh.reshape(grad, _kept_shape(shape, axes)), shape)


def _channel_sum(xp, a3, b3=None):
    """Per-channel sums over N and L of ``a3`` (of ``a3 * b3``), (N, C, L) -> (C,): one einsum.

    NumPy's ``sum(axis=(0, 2))`` walks the array with strides; the einsum is one pass, and
    faster on the DCGAN's shapes (benchmarks/RESULTS.md).
    """
    return xp.einsum("ncl->c", a3) if b3 is None else xp.einsum("ncl,ncl->c", a3, b3)


def _channel_sum_cuda(a3, b3=None):
    """:func:`_channel_sum` on CuPy, whose einsum parses its subscripts in Python at every call."""
    return (a3 if b3 is None else a3 * b3).sum(axis=(0, 2))


channel_sum = backend.twin(_channel_sum, cuda=_channel_sum_cuda)


def _sum(data, axes, keepdim):
    """``data.sum(axes)``, by :func:`channel_sum` where that sums all axes but 1 of a contiguous array.

    That is the bias gradient of a convolution, ``dy.sum((0, 2, 3))``, and any per-channel
    sum of floats (integer sums keep NumPy's promotion to a wider type, which einsum lacks).
    """
    per_channel = data.ndim >= 3 and axes == (0, *range(2, data.ndim))
    if per_channel and data.dtype.kind == "f" and data.flags.c_contiguous:
        total = channel_sum(data.reshape(data.shape[0], data.shape[1], -1))
        return total.reshape(_kept_shape(data.shape, axes)) if keepdim else total
    return data.sum(axis=axes, keepdims=keepdim)


class Sum(Function):
    """``y = sum of x over axes``;  ``dx = dy`` broadcast over the summed axes."""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes = x.shape, axes
        return _sum(x.data, axes, keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _expand_back(grad, ctx.shape, ctx.axes), None, None


class Mean(Function):
    """``y = mean of x over axes`` (``n`` values);  ``dx = dy / n`` broadcast back."""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes = x.shape, axes
        ctx.count = int(numpy.prod([x.shape[a] for a in axes]))
        return x.data.mean(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _expand_back(grad / ctx.count, ctx.shape, ctx.axes), None, None


class Extreme(Function):
    """``y = max (or min) of x over axes``.

    ``dx = dy`` at the position(s) of the extreme: with ``dim`` given, at the index
    returned (the first occurrence, as PyTorch); for a full reduction, shared evenly
    among ties (as PyTorch's ``max()``). The mask is constant, so the second derivative is 0.
    """

    @staticmethod
    def forward(ctx, x, axes, keepdim, take_max, with_indices):
        xp = backend.get_array_module(x.data)
        kept = x.data.max(axis=axes, keepdims=True) if take_max else x.data.min(axis=axes, keepdims=True)
        if with_indices:
            (axis,) = axes
            pick = xp.argmax if take_max else xp.argmin
            indices = pick(x.data, axis=axis, keepdims=True)
            positions = xp.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - axis - 1))
            mask = positions == indices
        else:  # ties share the gradient; a NaN is the extreme, as PyTorch treats it
            mask = (x.data == kept) | (xp.isnan(x.data) & xp.isnan(kept))
            mask = mask / mask.sum(axis=axes, keepdims=True)
        ctx.save_for_backward(mask.astype(x.dtype))
        ctx.shape, ctx.axes = x.shape, axes
        values = kept if keepdim else kept.reshape([s for i, s in enumerate(x.shape) if i not in axes])
        if with_indices:
            return values, indices if keepdim else indices.reshape(values.shape)
        return values

    @staticmethod
    def backward(ctx, grad, *grad_indices):
        (mask,) = ctx.saved_tensors
        return _expand_back(grad, ctx.shape, ctx.axes) * mask, None, None, None, None


def sum(x, dim=None, keepdim=False):  # noqa: A001  (PyTorch's name)
    return Sum.apply(x, _axes(dim, x.ndim, "sum"), keepdim)


def mean(x, dim=None, keepdim=False):
    if x.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating-point tensor, got dtype {x.dtype}")
    return Mean.apply(x, _axes(dim, x.ndim, "mean"), keepdim)


def _extreme(x, dim, keepdim, take_max, op):
    if x.numel() == 0:
        raise ValueError(f"{op}: the tensor is empty (shape {x.shape})")
    if dim is None:
        return Extreme.apply(x, tuple(range(x.ndim)), False, take_max, False)
    if not isinstance(dim, int):
        raise ShapeError(f"{op}: dim must be one int when indices are returned, got {dim!r}; use a{op}")
    axes = _axes(dim, x.ndim, op)
    return values_indices(*Extreme.apply(x, axes, keepdim, take_max, True))


def max(x, dim=None, keepdim=False):  # noqa: A001  (PyTorch's name)
    """Largest value; with ``dim``, a ``(values, indices)`` pair, as in PyTorch."""
    return _extreme(x, dim, keepdim, True, "max")


def min(x, dim=None, keepdim=False):  # noqa: A001  (PyTorch's name)
    """Smallest value; with ``dim``, a ``(values, indices)`` pair, as in PyTorch."""
    return _extreme(x, dim, keepdim, False, "min")


def amax(x, dim=None, keepdim=False):
    return Extreme.apply(x, _axes(dim, x.ndim, "amax"), keepdim, True, False)


def amin(x, dim=None, keepdim=False):
    return Extreme.apply(x, _axes(dim, x.ndim, "amin"), keepdim, False, False)


def argmax(x, dim=None, keepdim=False):
    xp = backend.get_array_module(x.data)
    if dim is None:
        return Tensor(xp.asarray(x.data.argmax()))
    return Tensor(xp.argmax(x.data, axis=sh.normalize_dim(dim, x.ndim, "argmax"), keepdims=keepdim))


def argmin(x, dim=None, keepdim=False):
    xp = backend.get_array_module(x.data)
    if dim is None:
        return Tensor(xp.asarray(x.data.argmin()))
    return Tensor(xp.argmin(x.data, axis=sh.normalize_dim(dim, x.ndim, "argmin"), keepdims=keepdim))


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance: ``sum((x - mean)**2) / (n - correction)``; ``correction=1`` (unbiased) by default.

    ``unbiased=False`` is ``correction=0``, as in PyTorch.
    """
    if unbiased is not None and correction is not None:
        raise ValueError("var: pass either unbiased or correction, not both")
    if correction is None:
        correction = 0 if unbiased is False else 1
    axes = _axes(dim, x.ndim, "var")
    count = int(numpy.prod([x.shape[a] for a in axes]))
    centered = x - mean(x, axes, keepdim=True)
    total = sum(centered * centered, axes, keepdim)
    return total / builtins.max(count - correction, 0)  # n <= correction: inf or nan, as PyTorch


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return ew.sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def norm(x, p=2, dim=None, keepdim=False):
    """The vector p-norm over ``dim`` (all axes for None): ``(sum |x|**p) ** (1/p)``.

    ``p`` is 2 (or ``"fro"``, the same over the axes given), 1, ``inf`` (``max |x|``) or any
    other number >= 1. **Backward** (``y`` the norm): ``dx = dy * x / y`` for p = 2,
    ``dy * sign(x)`` for p = 1, ``dy * sign(x) * |x|**(p-1) / y**(p-1)`` in general, and for
    inf the gradient goes to the largest ``|x|``, shared among ties. Where ``y = 0`` the
    gradient is 0, PyTorch's choice of subgradient: the power ``s**(1/p)`` of the sum ``s``
    has an infinite slope at 0, so it is taken only where ``s > 0`` and its input is
    replaced by 1 elsewhere, and no NaN enters the graph. Built from differentiable ops, so
    it differentiates again; at a zero vector the second order is finite for p >= 2 (for
    p < 2, ``|x|**p`` itself has an infinite second derivative at 0).
    """
    if x.dtype.kind != "f":
        raise TypeError(f"norm: expected a floating-point tensor, got dtype {x.dtype}")
    if p == "fro":
        p = 2
    if isinstance(p, str) or not (p == numpy.inf or p >= 1):
        raise ValueError(f"norm: p is {p!r}, expected 'fro', inf or a number >= 1")
    axes = _axes(dim, x.ndim, "norm")
    if p == numpy.inf:
        return amax(ew.abs_(x), axes, keepdim)
    if p == 1:
        return sum(ew.abs_(x), axes, keepdim)
    total = sum(x * x if p == 2 else ew.abs_(x) ** p, axes, keepdim)
    nonzero = total > 0
    safe = ew.where(nonzero, total, 1.0)
    return ew.where(nonzero, safe.sqrt() if p == 2 else safe ** (1 / p), 0.0)


def logsumexp(x, dim, keepdim=False):
    """``log(sum(exp(x)))`` over ``dim``, computed as ``m + log(sum(exp(x - m)))`` with ``m = max``.

    Subtracting the (constant) max keeps exp from overflowing; its gradient is exactly
    ``softmax(x)``, so the shift changes nothing in backward.
    """
    axes = _axes(dim, x.ndim, "logsumexp")
    xp = backend.get_array_module(x.data)
    shift = x.data.max(axis=axes, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)
    shift = Tensor(shift)
    out = ew.log(sum(ew.exp(x - shift), axes, keepdim=True)) + shift
    return out if keepdim else sh.reshape(out, [s for i, s in enumerate(x.shape) if i not in axes])


class LogSoftmax(Function):
    """``y = x - logsumexp(x)`` along ``dim``;  ``dx = dy - exp(y) * sum(dy)``."""

    @staticmethod
    def forward(ctx, x, dim):
        xp = backend.get_array_module(x.data)
        shifted = x.data - x.data.max(axis=dim, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad - ew.exp(y) * sum(grad, ctx.dim, keepdim=True), None


class Softmax(Function):
    """``y = exp(x) / sum(exp(x))`` along ``dim``;  ``dx = y * (dy - sum(dy * y))``."""

    @staticmethod
    def forward(ctx, x, dim):
        xp = backend.get_array_module(x.data)
        e = xp.exp(x.data - x.data.max(axis=dim, keepdims=True))
        y = e / e.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y * (grad - sum(grad * y, ctx.dim, keepdim=True)), None


def log_softmax(x, dim):
    return LogSoftmax.apply(x, sh.normalize_dim(dim, x.ndim, "log_softmax"))


def softmax(x, dim):
    return Softmax.apply(x, sh.normalize_dim(dim, x.ndim, "softmax"))
