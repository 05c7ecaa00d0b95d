"""Embedding: look up rows of a weight matrix by integer index.

Notation: ``weight`` of shape ``(V, D)`` (V embeddings of size D), ``idx`` integer indices of
any shape ``S``; ``c[r] = #{s : idx[s] = r}``, the number of times row r is looked up.

Forward:

    y[s, :] = weight[idx[s], :]                                       shape (*S, D)

Backward: every row of ``dy`` goes back to the row it was read from, and rows read several
times sum:

    dweight[r, :] = sum_{s : idx[s] = r} dy[s, :]       (0 for r = padding_idx)

The sum is a scatter-add. ``np.add.at`` does it element by element; sorting the indices and
summing each run of equal indices with ``add.reduceat`` was measured faster (docs/kernels/pool.md).
The scatter's adjoint is a gather (``dx[s] = g[idx[s]]``, 0 at padding positions), so the two
are written as a pair and differentiate into each other.

``scale_grad_by_freq`` divides each row of the scatter by its count, ``dweight[r] /= c[r]``.
That is the diagonal map ``C^-1`` after the scatter ``S``; its adjoint is ``S^T C^-1``, the
gather of the scaled rows ``dx[s] = g[idx[s]] / c[idx[s]]``, so the pair stays an adjoint
pair. The counts are the lengths of the runs the sort already found.

``max_norm`` rescales, in place and outside the graph, each distinct looked-up row whose
``norm_type``-norm exceeds ``max_norm``: ``weight[r] *= max_norm / (||weight[r]||_p + 1e-7)``.

Why: word or class embeddings (conditional GANs look up a class vector). See the Embedding
section of docs/kernels/pool.md (the same gather/scatter pair as max pooling).
"""

import numbers

import numpy

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.errors import DTypeError, IndexOutOfRangeError, ShapeError

RENORM_EPS = 1e-7  # PyTorch's embedding_renorm_: scale = max_norm / (norm + 1e-7)

# ----------------------------------------------------------------------------- xp version


def _scatter_rows(xp, rows, flat_idx, num_rows, scale_by_freq=False):
    """``out[r] = sum of rows[s] with flat_idx[s] = r``: sort, then sum each run of equal indices.

    With ``scale_by_freq`` each sum is divided by its run length (the count of ``r``).
    """
    out = xp.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    if flat_idx.size == 0:
        return out
    order = xp.argsort(flat_idx, kind="stable")
    sorted_idx = flat_idx[order]
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), sorted_idx[1:] != sorted_idx[:-1]]))
    sums = xp.add.reduceat(rows[order], starts, axis=0)
    if scale_by_freq:
        run_lengths = xp.diff(starts, append=flat_idx.size)
        sums /= run_lengths[:, None].astype(sums.dtype)
    out[sorted_idx[starts]] = sums
    return out


def _row_norms(xp, rows, norm_type):
    """``||rows[i]||_p`` for each row, as ``torch.norm(row, p)``: max|x| for p = inf, min|x|
    for p = -inf, the count of non-zeros for p = 0, else ``(sum |x|^p)^(1/p)``."""
    magnitude = xp.abs(rows)
    if norm_type == numpy.inf:
        return magnitude.max(axis=1)
    if norm_type == -numpy.inf:
        return magnitude.min(axis=1)
    if norm_type == 0:
        return (magnitude != 0).sum(axis=1).astype(rows.dtype)
    with numpy.errstate(divide="ignore"):  # p < 0 and a zero entry: |0|^p = inf, norm 0 (as torch)
        return (magnitude**norm_type).sum(axis=1) ** (1.0 / norm_type)


def _renorm_rows_(xp, weight, flat_idx, max_norm, norm_type):
    """In place: each distinct row in ``flat_idx`` with p-norm above ``max_norm`` gets norm
    ``max_norm`` (up to the 1e-7 guard), as PyTorch's ``embedding_renorm_``."""
    if flat_idx.size == 0 or weight.shape[1] == 0:
        return
    rows = xp.unique(flat_idx)
    norms = _row_norms(xp, weight[rows], norm_type).astype(numpy.float64)  # torch: .item<double>()
    too_long = norms > max_norm
    rows, norms = rows[too_long], norms[too_long]
    scale = max_norm / (norms + RENORM_EPS)  # in float64, as torch; cast to weight's dtype to multiply
    weight[rows] *= scale[:, None].astype(weight.dtype)


# ----------------------------------------------------------------------------- Functions


class Embedding(Function):
    """``y = weight[idx]``;  ``dweight = ScatterRows(dy)`` (padding positions left out)."""

    @staticmethod
    def forward(ctx, weight, idx, keep, scale_by_freq):
        ctx.idx, ctx.keep, ctx.num_rows, ctx.scale_by_freq = idx, keep, weight.shape[0], scale_by_freq
        return weight.data[idx]

    @staticmethod
    def backward(ctx, grad):
        return ScatterRows.apply(grad, ctx.idx, ctx.keep, ctx.num_rows, ctx.scale_by_freq), None, None, None


class ScatterRows(Function):
    """``y[r] = sum_{s: idx[s]=r, keep[s]} x[s]``, divided by ``c[r]`` with ``scale_by_freq``
    (shape (V, D));  ``dx = GatherRows(dy)`` with the same scaling."""

    @staticmethod
    def forward(ctx, grad_out, idx, keep, num_rows, scale_by_freq):
        ctx.idx, ctx.keep, ctx.scale_by_freq = idx, keep, scale_by_freq
        xp = backend.get_array_module(grad_out.data)
        rows = grad_out.data.reshape(-1, grad_out.shape[-1])
        flat_idx = idx.reshape(-1)
        if keep is not None:
            rows, flat_idx = rows[keep.reshape(-1)], flat_idx[keep.reshape(-1)]
        return _scatter_rows(xp, rows, flat_idx, num_rows, scale_by_freq)

    @staticmethod
    def backward(ctx, grad):
        return GatherRows.apply(grad, ctx.idx, ctx.keep, ctx.scale_by_freq), None, None, None, None


class GatherRows(Function):
    """``y[s] = x[idx[s]]`` (divided by ``c[idx[s]]`` with ``scale_by_freq``), 0 where ``keep``
    is False: the scatter's adjoint;  ``dx = ScatterRows(dy)`` with the same scaling."""

    @staticmethod
    def forward(ctx, grad_weight, idx, keep, scale_by_freq):
        ctx.idx, ctx.keep, ctx.num_rows = idx, keep, grad_weight.shape[0]
        ctx.scale_by_freq = scale_by_freq
        out = grad_weight.data[idx]
        if keep is not None:
            out *= keep[..., None]
        if scale_by_freq and idx.size:
            xp = backend.get_array_module(out)
            counts = xp.bincount(idx.reshape(-1), minlength=ctx.num_rows)  # >= 1 at every idx[s]
            out /= counts[idx][..., None].astype(out.dtype)
        return out

    @staticmethod
    def backward(ctx, grad):
        return ScatterRows.apply(grad, ctx.idx, ctx.keep, ctx.num_rows, ctx.scale_by_freq), None, None, None


# ----------------------------------------------------------------------------- public function


def check_options(caller, max_norm, norm_type, scale_grad_by_freq, sparse):
    """Raise a clear error for a bad ``max_norm``, ``norm_type``, ``scale_grad_by_freq`` or ``sparse``."""
    if max_norm is not None:
        if not isinstance(max_norm, numbers.Real) or isinstance(max_norm, (bool, numpy.bool_)):
            raise TypeError(f"{caller}: max_norm must be None or a positive number, got {max_norm!r}")
        if not max_norm > 0:
            raise ValueError(f"{caller}: max_norm must be a positive number, got {max_norm!r}")
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, (bool, numpy.bool_)):
        raise TypeError(f"{caller}: norm_type (the p of the p-norm) must be a number, got {norm_type!r}")
    if numpy.isnan(norm_type):
        raise ValueError(f"{caller}: norm_type (the p of the p-norm) must not be nan")
    for name, value in (("scale_grad_by_freq", scale_grad_by_freq), ("sparse", sparse)):
        if not isinstance(value, (bool, numpy.bool_)):
            raise TypeError(f"{caller}: {name} must be a bool, got {value!r}")
    if sparse:
        raise NotImplementedError(
            f"{caller}: sparse=True asks for a sparse (COO) weight gradient, and tinygen has no sparse "
            "tensors; use sparse=False (the default): the dense gradient has the same values, with "
            "zero rows for the embeddings not looked up"
        )


def embedding(
    input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False
):  # noqa: A002
    """Rows of ``weight`` picked by the integer tensor ``input`` (PyTorch's ``F.embedding``).

    **Shapes:** input ``(*)`` integers in ``[0, V)``; weight ``(V, D)``; output ``(*, D)``.

    **Forward:** with ``max_norm``, first, in place and outside the graph, every distinct row
    r in ``input`` with ``||weight[r]||_p > max_norm`` (p = ``norm_type``; inf, -inf and 0
    as in ``torch.norm``) becomes ``weight[r] * max_norm / (||weight[r]||_p + 1e-7)``; rows
    not looked up are untouched, the ``padding_idx`` row is treated like any other (as torch).
    Then ``y[s] = weight[input[s]]``.

    **Backward:** ``dweight[r] = sum of dy[s] over s with input[s] = r``, except the row
    ``padding_idx``, which gets no gradient; with ``scale_grad_by_freq`` it is divided by
    ``c[r]``, the number of times r occurs in ``input``. ``input`` has none. The second
    derivative is the adjoint gather, with the same ``1 / c[r]`` (torch leaves the scaling out
    of its double backward; tinygen keeps it, so gradgradcheck passes).

    **Why:** a learned vector per token or class. ``sparse=True`` raises NotImplementedError
    (tinygen has no sparse tensors). See docs/kernels/pool.md, Embedding.
    """
    check_options("embedding", max_norm, norm_type, scale_grad_by_freq, sparse)
    if weight.ndim != 2:
        raise ShapeError(
            f"embedding: weight must be (num_embeddings, embedding_dim), got shape {weight.shape}"
        )
    if input.dtype.kind not in "iu":
        raise DTypeError(f"embedding: input must hold integer indices, got dtype {input.dtype}")
    num_rows = weight.shape[0]
    xp = backend.get_array_module(input.data)
    if input.numel() and (int(input.data.min()) < 0 or int(input.data.max()) >= num_rows):
        raise IndexOutOfRangeError(
            f"embedding: input holds indices in [{int(input.data.min())}, {int(input.data.max())}], "
            f"expected [0, num_embeddings) = [0, {num_rows})"
        )
    keep = None
    if padding_idx is not None:
        if not -num_rows <= padding_idx < num_rows:
            raise IndexOutOfRangeError(
                f"embedding: padding_idx {padding_idx} is out of range for {num_rows} rows"
            )
        keep = input.data != padding_idx % num_rows
    idx = xp.asarray(input.data)
    if max_norm is not None:
        _renorm_rows_(xp, weight.data, idx.reshape(-1), max_norm, norm_type)
    return Embedding.apply(weight, idx, keep, bool(scale_grad_by_freq))
