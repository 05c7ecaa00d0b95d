"""Shape ops: reshape, permute, broadcast, concatenate, split, index, pad.

These move values without changing them, so each backward moves the gradient back:
reshape undoes the reshape, permute applies the inverse permutation, broadcasting sums
over the copied axes (``sum_to``), ``cat`` splits and ``split`` concatenates, indexing
scatters the gradient into zeros and scattering gathers it. Each pair is the other's
adjoint, so both directions stay differentiable to any order.
"""

import numpy

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor
from tinygen.errors import IndexOutOfRangeError, ShapeError


def normalize_dim(dim, ndim, op):
    """``dim`` in ``[-ndim, ndim)`` as a non-negative axis, or a ShapeError naming ``op``."""
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ShapeError(f"{op}: dim {dim} is out of range for a tensor of {ndim} dimensions")
    return dim % max(ndim, 1)


def _shape_arg(shape):
    """Accept ``f(2, 3)`` and ``f((2, 3))`` as PyTorch does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


# ----------------------------------------------------------------------------- reshape, permute


class Reshape(Function):
    """``y = x`` laid out in a new shape;  ``dx = dy`` reshaped back."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.data.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return Reshape.apply(grad, ctx.shape), None


def reshape(x, *shape):
    shape = _shape_arg(shape)
    if shape == x.shape:
        return x
    size, known = x.data.size, int(numpy.prod([s for s in shape if s != -1]))
    if shape.count(-1) == 1 and known > 0 and size % known == 0:  # infer the -1
        shape = tuple(size // known if s == -1 else s for s in shape)
    if -1 in shape or min(shape, default=0) < 0 or int(numpy.prod(shape)) != size:
        raise ShapeError(f"reshape: cannot view shape {x.shape} ({size} elements) as {shape}")
    return x if shape == x.shape else Reshape.apply(x, shape)


class Permute(Function):
    """``y = x`` with axes reordered by ``dims``;  ``dx = dy`` permuted by the inverse."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.data.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return Permute.apply(grad, tuple(numpy.argsort(ctx.dims))), None


def permute(x, *dims):
    dims = _shape_arg(dims)
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ShapeError(f"permute: dims {dims} are not a permutation of {x.ndim} axes")
    dims = tuple(d % x.ndim for d in dims)
    return x if dims == tuple(range(x.ndim)) else Permute.apply(x, dims)


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    i, j = normalize_dim(dim0, x.ndim, "transpose"), normalize_dim(dim1, x.ndim, "transpose")
    dims[i], dims[j] = dims[j], dims[i]
    return permute(x, *dims)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    start = normalize_dim(start_dim, x.ndim, "flatten")
    end = normalize_dim(end_dim, x.ndim, "flatten")
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, *x.shape[:start], -1, *x.shape[end + 1 :])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, *[s for s in x.shape if s != 1])
    dims = {normalize_dim(d, x.ndim, "squeeze") for d in (dim if isinstance(dim, tuple) else (dim,))}
    return reshape(x, *[s for i, s in enumerate(x.shape) if not (i in dims and s == 1)])


def unsqueeze(x, dim):
    dim = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, *x.shape[:dim], 1, *x.shape[dim:])


# ----------------------------------------------------------------------------- broadcast


class BroadcastTo(Function):
    """``y = x`` repeated along broadcast axes;  ``dx = sum of dy over them`` (``sum_to``)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return backend.get_array_module(x.data).broadcast_to(x.data, shape)

    @staticmethod
    def backward(ctx, grad):
        return SumTo.apply(grad, ctx.shape), None


class SumTo(Function):
    """``y = dy`` summed down to ``shape`` (the adjoint of broadcasting);  ``dx = broadcast(dy)``."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        out = x.data.sum(axis=axes, keepdims=True) if axes else x.data
        return out.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return BroadcastTo.apply(grad, ctx.shape), None


def broadcast_to(x, shape):
    shape = tuple(shape)
    try:
        numpy.broadcast_shapes(x.shape, shape)
        if len(shape) < x.ndim or numpy.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ShapeError(f"expand: cannot broadcast shape {x.shape} to {shape}") from None
    return x if shape == x.shape else BroadcastTo.apply(x, shape)


def expand(x, *sizes):
    """Broadcast to ``sizes``; -1 keeps a dimension's size (PyTorch's ``expand``)."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ShapeError(f"expand: {len(sizes)} sizes given for a tensor of {x.ndim} dims")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


def sum_to(x, shape):
    """Sum ``x`` down to a shape it was broadcast from."""
    shape = tuple(shape)
    return x if shape == x.shape else SumTo.apply(x, shape)


# ----------------------------------------------------------------------------- cat, split


class Cat(Function):
    """``y = [x_1, ..., x_k]`` along ``dim``;  ``dx_i`` = the matching slice of ``dy``."""

    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.sizes = [x.shape[dim] for x in xs]
        ctx.dim = dim
        return backend.get_array_module(*[x.data for x in xs]).concatenate([x.data for x in xs], dim)

    @staticmethod
    def backward(ctx, grad):
        return (None, *Split.apply(grad, tuple(ctx.sizes), ctx.dim))


class Split(Function):
    """``y_i`` = consecutive slices of ``x`` along ``dim``;  ``dx = cat(dy_1, ..., dy_k)``."""

    @staticmethod
    def forward(ctx, x, sizes, dim):
        ctx.dim = dim
        bounds = numpy.cumsum(sizes)[:-1].tolist()
        return tuple(backend.get_array_module(x.data).split(x.data, bounds, axis=dim))

    @staticmethod
    def backward(ctx, *grads):
        return Cat.apply(ctx.dim, *grads), None, None


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    dim = normalize_dim(dim, first.ndim, "cat")
    for i, t in enumerate(tensors):
        if (
            t.ndim != first.ndim
            or t.shape[:dim] + t.shape[dim + 1 :] != first.shape[:dim] + first.shape[dim + 1 :]
        ):
            raise ShapeError(
                f"cat: tensors[{i}] has shape {t.shape}, expected {first.shape} in every dim but {dim}"
            )
    return Cat.apply(dim, *tensors)


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ShapeError(f"stack: tensors[{i}] has shape {t.shape}, expected {tensors[0].shape}")
    dim = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def split(x, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed sizes."""
    dim = normalize_dim(dim, x.ndim, "split")
    length = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, length - start) for start in range(0, length, step)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != length:
            raise ShapeError(
                f"split: sections {sizes} sum to {sum(sizes)}, expected size {length} of dim {dim}"
            )
    if len(sizes) == 1:
        return (x,)
    return Split.apply(x, tuple(sizes), dim)


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    length = x.shape[normalize_dim(dim, x.ndim, "chunk")]
    return split(x, max(-(-length // chunks), 1), dim)


# ----------------------------------------------------------------------------- indexing


def _plain_index(index, xp):
    """An index with Tensors and lists turned into xp arrays and bool masks into integer arrays.

    Returns ``(index, advanced)``; ``advanced`` is True when an integer array is present, in
    which case repeated positions must accumulate in backward (``xp.add.at``).
    """
    out, advanced = [], False
    for item in index if isinstance(index, tuple) else (index,):
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):
            item = numpy.asarray(item)
        if isinstance(item, (numpy.ndarray, xp.ndarray)):
            if item.dtype.kind == "b":
                out.extend(xp.nonzero(xp.asarray(item)))
                advanced = True
                continue
            if item.ndim == 0:
                item = int(item)
            else:
                item = xp.asarray(item)
                advanced = True
        out.append(item)
    return tuple(out), advanced


class GetItem(Function):
    """``y = x[index]``;  ``dx`` = zeros with ``dy`` added at ``index`` (repeats accumulate)."""

    @staticmethod
    def forward(ctx, x, index, advanced):
        ctx.shape, ctx.index, ctx.advanced = x.shape, index, advanced
        return x.data[index]

    @staticmethod
    def backward(ctx, grad):
        return IndexAdd.apply(grad, ctx.shape, ctx.index, ctx.advanced), None, None


class IndexAdd(Function):
    """``y = zeros(shape)`` with ``x`` added at ``index`` (the adjoint of indexing);  ``dx = dy[index]``."""

    @staticmethod
    def forward(ctx, x, shape, index, advanced):
        ctx.index, ctx.advanced = index, advanced
        xp = backend.get_array_module(x.data)
        out = xp.zeros(shape, dtype=x.dtype)
        if advanced:
            xp.add.at(out, index, x.data)
        else:
            out[index] = x.data
        return out

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, ctx.index, ctx.advanced), None, None, None


def getitem(x, index):
    index, advanced = _plain_index(index, backend.get_array_module(x.data))
    try:
        return GetItem.apply(x, index, advanced)
    except IndexError as err:
        raise IndexOutOfRangeError(
            f"index {index} is invalid for a tensor of shape {x.shape}: {err}"
        ) from None


# ----------------------------------------------------------------------------- pad


class ConstantPad(Function):
    """``y`` = ``x`` surrounded by ``value``;  ``dx`` = the middle of ``dy``."""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.inner = tuple(
            slice(before, before + size) for (before, _), size in zip(widths, x.shape, strict=True)
        )
        return backend.get_array_module(x.data).pad(x.data, widths, constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, ctx.inner, False), None, None


def _gather_index(mode, size, before, after):
    """Source positions along one axis for a padded axis, in ``reflect/replicate/circular``."""
    pos = numpy.arange(-before, size + after)
    if mode == "replicate":
        return numpy.clip(pos, 0, size - 1)
    if mode == "circular":
        return pos % size
    period = 2 * (size - 1)  # reflect: ... 2 1 [0 1 2 ... n-1] n-2 ...
    pos = numpy.abs(pos) % period if period else numpy.zeros_like(pos)
    return numpy.where(pos >= size, period - pos, pos)


def pad(x, pad, mode="constant", value=0.0):  # noqa: A002  (PyTorch's names)
    """Pad the last dims: ``pad = (left_last, right_last, left_2nd_last, right_2nd_last, ...)``.

    ``mode`` is ``'constant'`` (negative widths crop), ``'reflect'``, ``'replicate'`` or
    ``'circular'``, with PyTorch's meaning.
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: expected an even number of widths, at most {2 * x.ndim}, got {pad}")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    if mode == "constant":
        crop = tuple(slice(max(-b, 0), s - max(-a, 0)) for (b, a), s in zip(widths, x.shape, strict=True))
        if any(c.start or c.stop != s for c, s in zip(crop, x.shape, strict=True)):
            x = getitem(x, crop)
        grow = [(max(b, 0), max(a, 0)) for b, a in widths]
        return ConstantPad.apply(x, grow, value) if any(b or a for b, a in grow) else x
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode {mode!r} is not one of 'constant', 'reflect', 'replicate', 'circular'")
    for axis, (before, after) in enumerate(widths):
        if before == after == 0:
            continue
        size = x.shape[axis]
        limit = size - 1 if mode == "reflect" else size if mode == "circular" else None
        if min(before, after) < 0 or (limit is not None and max(before, after) > limit):
            raise ShapeError(
                f"pad: {mode} widths {(before, after)} are invalid for dim {axis} of size {size}"
                + (f" (at most {limit})" if limit is not None else "")
            )
        index = (slice(None),) * axis + (_gather_index(mode, size, before, after),)
        x = getitem(x, index)
    return x
