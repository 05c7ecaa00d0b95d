"""Matrix products: ``matmul`` (batched, broadcasting) and ``linear`` (a fused affine map).

Shapes follow ``numpy.matmul``/``torch.matmul``: a 1-D left operand is a row vector, a
1-D right operand a column vector, and leading (batch) dimensions broadcast.
"""

from tinygen import cpu
from tinygen.autograd.function import Function
from tinygen.errors import ShapeError
from tinygen.ops import shape as sh


class MatMul(Function):
    """``Y = op(A) @ op(B)``, where ``op`` transposes the last two axes when its flag is set.

    For ``Y = A @ B``: ``dA = dY @ B^T`` and ``dB = A^T @ dY``. With the flags the same
    rule reads, per case, as another flagged product (no transpose op is recorded):

        dA = dY @ op(B)^T           or, if A is transposed,  op(B) @ dY^T
        dB = op(A)^T @ dY           or, if B is transposed,  dY^T @ op(A)

    Each gradient is summed over the batch dims it was broadcast along.
    """

    @staticmethod
    def forward(ctx, a, b, transpose_a, transpose_b):
        ctx.save_for_backward(a, b)
        ctx.flags = (transpose_a, transpose_b)
        a_data = a.data.swapaxes(-1, -2) if transpose_a else a.data
        return cpu.matmul(a_data, b.data.swapaxes(-1, -2) if transpose_b else b.data)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ta, tb = ctx.flags
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = MatMul.apply(b, grad, tb, True) if ta else MatMul.apply(grad, b, False, not tb)
            grad_a = sh.sum_to(grad_a, a.shape)
        if ctx.needs_input_grad[1]:
            grad_b = MatMul.apply(grad, a, True, ta) if tb else MatMul.apply(a, grad, not ta, False)
            grad_b = sh.sum_to(grad_b, b.shape)
        return grad_a, grad_b, None, None


def matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dim, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ShapeError(
            f"matmul: shapes {a.shape} and {b.shape} don't fit: a.shape[-1] = {a.shape[-1]} must equal "
            f"b.shape[{-2 if b.ndim > 1 else 0}] = {b.shape[-2 if b.ndim > 1 else 0]}"
        )
    if a.ndim == 1:  # row vector in, its row out
        return sh.squeeze(matmul(sh.unsqueeze(a, 0), b), -2 if b.ndim > 1 else -1)
    if b.ndim == 1:  # column vector in, its column out
        return sh.squeeze(MatMul.apply(a, sh.unsqueeze(b, 1), False, False), -1)
    return MatMul.apply(a, b, False, False)


class Linear(Function):
    """``y = x @ W^T + b`` for ``x: (*, in)``, ``W: (out, in)``, ``b: (out,)``.

    ``dx = dy @ W``; ``dW = dy^T @ x`` and ``db = sum of dy`` over all leading dims.
    One node instead of three (transpose, matmul, add) keeps small models fast.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = cpu.matmul(x.data.reshape(-1, x.shape[-1]), weight.data.T).reshape(*x.shape[:-1], -1)
        if bias is not None:
            y += bias.data
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = matmul(grad, weight) if ctx.needs_input_grad[0] else None
        flat_grad = grad if grad.ndim == 2 else sh.reshape(grad, -1, grad.shape[-1])
        flat_x = x if x.ndim == 2 else sh.reshape(x, -1, x.shape[-1])
        grad_w = MatMul.apply(flat_grad, flat_x, True, False) if ctx.needs_input_grad[1] else None
        grad_b = flat_grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def linear(input, weight, bias=None):  # noqa: A002  (PyTorch's names)
    """``input @ weight.T + bias``; ``weight`` is ``(out_features, in_features)`` as in PyTorch."""
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input.shape[-1] is {input.shape[-1] if input.ndim else None}, expected "
            f"weight.shape[1] = {weight.shape[1] if weight.ndim == 2 else weight.shape} "
            f"(weight must be (out_features, in_features), got {weight.shape})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    return Linear.apply(input, weight, bias)
