"""Layer normalisation: normalise each sample over its last dimensions.

Notation: input ``x`` of shape ``(*, *normalized_shape)``; statistics are per leading
index (one "row"), over the ``m = prod(normalized_shape)`` values of that row; ``mean_r``
and ``sum_r`` below are over those ``m`` values, ``sum_lead`` over the leading indices.

Forward:

    mean    = mean_r(x)
    var     = mean_r((x - mean)**2)            (biased, as PyTorch)
    inv_std = 1 / sqrt(var + eps)
    x_hat   = (x - mean) * inv_std
    y       = weight * x_hat + bias            (weight, bias of shape normalized_shape)

Backward, with ``dy`` the gradient of ``y`` and ``g = dy * weight``:

    dx      = inv_std * (g - mean_r(g) - x_hat * mean_r(g * x_hat))
    dweight = sum_lead(dy * x_hat)
    dbias   = sum_lead(dy)

The formula for ``dx`` is batch norm's (docs/kernels/batch_norm.md) with the roles of the
axes swapped. Why: a GAN generator or transformer block normalised per sample, with no
dependence on the batch. Stability: two-pass variance, as in batch norm. See
docs/kernels/layer_norm.md.
"""

import math

from tinygen import backend
from tinygen.autograd import grad_mode
from tinygen.autograd.function import Function
from tinygen.errors import ShapeError
from tinygen.ops import reduce
from tinygen.ops import shape as sh

# ----------------------------------------------------------------------------- xp version


def _normalize_rows(xp, x2, eps):
    """``(x_hat, inv_std)`` for ``x2`` of shape (rows, m), normalised along axis 1."""
    mean = x2.mean(axis=1, keepdims=True)
    centered = x2 - mean
    var = xp.einsum("rm,rm->r", centered, centered)[:, None] / x2.shape[1]
    inv_std = 1 / xp.sqrt(var + eps)
    centered *= inv_std
    return centered, inv_std


# ----------------------------------------------------------------------------- Function


class LayerNorm(Function):
    """``y = weight * x_hat + bias`` over the last ``len(normalized_shape)`` dims.

    Backward is written with differentiable ops. When it is itself recorded
    (``create_graph=True``) it recomputes ``x_hat`` and ``inv_std`` from ``x`` with ops,
    so that they depend on ``x`` in the graph and every order of derivative is right;
    otherwise it uses the arrays saved by forward.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_ndim, eps):
        xp = backend.get_array_module(x.data)
        width = math.prod(x.shape[x.ndim - normalized_ndim :])
        x_hat, inv_std = _normalize_rows(xp, x.data.reshape(-1, width), eps)
        x_hat = x_hat.reshape(x.shape)
        inv_std = inv_std.reshape(x.shape[: x.ndim - normalized_ndim] + (1,) * normalized_ndim)
        if weight is None and bias is None:
            y = x_hat.copy()
        else:
            y = x_hat * weight.data if weight is not None else x_hat.copy()
            if bias is not None:
                y += bias.data
        ctx.save_for_backward(x, weight, x_hat, inv_std)
        ctx.normalized_ndim, ctx.eps = normalized_ndim, eps
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, x_hat, inv_std = ctx.saved_tensors
        axes = tuple(range(x.ndim - ctx.normalized_ndim, x.ndim))
        if grad_mode.is_grad_enabled():  # recompute, so that x_hat and inv_std depend on x
            centered = x - reduce.mean(x, axes, keepdim=True)
            inv_std = (reduce.mean(centered * centered, axes, keepdim=True) + ctx.eps) ** -0.5
            x_hat = centered * inv_std
        g = grad_out if weight is None else grad_out * weight
        needs = ctx.needs_input_grad
        grad_x = grad_weight = grad_bias = None
        if needs[0]:
            mean_g = reduce.mean(g, axes, keepdim=True)
            mean_gx = reduce.mean(g * x_hat, axes, keepdim=True)
            grad_x = inv_std * (g - mean_g - x_hat * mean_gx)
        if needs[1]:
            grad_weight = sh.sum_to(grad_out * x_hat, weight.shape)
        if needs[2]:
            grad_bias = sh.sum_to(grad_out, x.shape[x.ndim - ctx.normalized_ndim :])
        return grad_x, grad_weight, grad_bias, None, None


# ----------------------------------------------------------------------------- public function


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Layer normalisation over the last dims (PyTorch's ``F.layer_norm``).

    **Shapes:** input ``(*, *normalized_shape)``; ``weight`` and ``bias``:
    ``normalized_shape`` or None. Output: as input.

    **Forward:** ``y = weight * (x - mean) / sqrt(var + eps) + bias``, with the mean and the
    biased variance of each sample over the last ``len(normalized_shape)`` dims.

    **Backward:** ``dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))`` with
    ``g = dy * weight``; ``dweight = sum(dy * x_hat)``, ``dbias = sum(dy)`` over the leading
    dims. Differentiable to any order.

    **Why:** per-sample normalisation, independent of the batch. See docs/kernels/layer_norm.md.
    """
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    count = len(normalized_shape)
    if count == 0 or input.shape[input.ndim - count :] != normalized_shape or input.ndim < count:
        raise ShapeError(
            f"layer_norm: input.shape is {input.shape}, expected its last {count} dims to equal "
            f"normalized_shape = {normalized_shape}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != normalized_shape:
            raise ShapeError(
                f"layer_norm: {name}.shape is {t.shape}, expected normalized_shape = {normalized_shape}"
            )
    return LayerNorm.apply(input, weight, bias, count, eps)
