"""Embedding: look up rows of a weight matrix by integer index.

Notation: ``weight`` of shape ``(V, D)`` (V embeddings of size D), ``idx`` integer indices of
any shape ``S``.

Forward:

    y[s, :] = weight[idx[s], :]                                       shape (*S, D)

Backward: every row of ``dy`` goes back to the row it was read from, and rows read several
times sum:

    dweight[r, :] = sum_{s : idx[s] = r} dy[s, :]       (0 for r = padding_idx)

The sum is a scatter-add. ``np.add.at`` does it element by element; sorting the indices and
summing each run of equal indices with ``add.reduceat`` was measured 1.7 to 4.3 times faster
(docs/kernels/pool.md). The scatter's adjoint is a gather (``dx[s] = g[idx[s]]``,
0 at padding positions), so the two are written as a pair and differentiate into each other.
Why: word or class embeddings (conditional GANs look up a class vector). See the Embedding
section of docs/kernels/pool.md (the same gather/scatter pair as max pooling).
"""

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.errors import DTypeError, IndexOutOfRangeError, ShapeError

# ----------------------------------------------------------------------------- xp version


def _scatter_rows(xp, rows, flat_idx, num_rows):
    """``out[r] = sum of rows[s] with flat_idx[s] = r``: sort, then sum each run of equal indices."""
    out = xp.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    if flat_idx.size == 0:
        return out
    order = xp.argsort(flat_idx, kind="stable")
    sorted_idx = flat_idx[order]
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), sorted_idx[1:] != sorted_idx[:-1]]))
    out[sorted_idx[starts]] = xp.add.reduceat(rows[order], starts, axis=0)
    return out


# ----------------------------------------------------------------------------- Functions


class Embedding(Function):
    """``y = weight[idx]``;  ``dweight = ScatterRows(dy)`` (padding positions left out)."""

    @staticmethod
    def forward(ctx, weight, idx, keep):
        ctx.idx, ctx.keep, ctx.num_rows = idx, keep, weight.shape[0]
        return weight.data[idx]

    @staticmethod
    def backward(ctx, grad):
        return ScatterRows.apply(grad, ctx.idx, ctx.keep, ctx.num_rows), None, None


class ScatterRows(Function):
    """``y[r] = sum_{s: idx[s]=r, keep[s]} x[s]`` (shape (V, D));  ``dx = GatherRows(dy)``."""

    @staticmethod
    def forward(ctx, grad_out, idx, keep, num_rows):
        ctx.idx, ctx.keep = idx, keep
        xp = backend.get_array_module(grad_out.data)
        rows = grad_out.data.reshape(-1, grad_out.shape[-1])
        flat_idx = idx.reshape(-1)
        if keep is not None:
            rows, flat_idx = rows[keep.reshape(-1)], flat_idx[keep.reshape(-1)]
        return _scatter_rows(xp, rows, flat_idx, num_rows)

    @staticmethod
    def backward(ctx, grad):
        return GatherRows.apply(grad, ctx.idx, ctx.keep), None, None, None


class GatherRows(Function):
    """``y[s] = x[idx[s]]``, 0 where ``keep`` is False (the scatter's adjoint);  ``dx = ScatterRows(dy)``."""

    @staticmethod
    def forward(ctx, grad_weight, idx, keep):
        ctx.idx, ctx.keep, ctx.num_rows = idx, keep, grad_weight.shape[0]
        out = grad_weight.data[idx]
        if keep is not None:
            out *= keep[..., None]
        return out

    @staticmethod
    def backward(ctx, grad):
        return ScatterRows.apply(grad, ctx.idx, ctx.keep, ctx.num_rows), None, None


# ----------------------------------------------------------------------------- public function


def embedding(
    input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False
):  # noqa: A002
    """Rows of ``weight`` picked by the integer tensor ``input`` (PyTorch's ``F.embedding``).

    **Shapes:** input ``(*)`` integers in ``[0, V)``; weight ``(V, D)``; output ``(*, D)``.

    **Forward:** ``y[s] = weight[input[s]]``.

    **Backward:** ``dweight[r] = sum of dy[s] over s with input[s] = r``, except the row
    ``padding_idx``, which gets no gradient. ``input`` has none.

    **Why:** a learned vector per token or class. ``max_norm``, ``scale_grad_by_freq`` and
    ``sparse`` are not implemented and raise NotImplementedError.
    """
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm (renormalising rows in place) is not implemented")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not implemented")
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
    return Embedding.apply(weight, xp.asarray(input.data), keep)
