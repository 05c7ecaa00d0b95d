"""Batch normalisation with a fused, closed-form backward.

Notation: input ``x`` of shape ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; statistics are
per channel ``c``, over the ``m = N * L`` (or ``N * H * W``) values of that channel; ``sum``
below is over those ``m`` positions.

Forward (training, batch statistics):

    mean[c]  = sum(x) / m
    var[c]   = sum((x - mean)**2) / m                  (biased: this one normalises)
    inv_std  = 1 / sqrt(var + eps)
    x_hat    = (x - mean) * inv_std
    y        = gamma[c] * x_hat + beta[c]

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)

Forward (evaluation): the same with ``running_mean`` and ``running_var`` in place of the
batch statistics, which makes it an affine map per channel.

Backward (training), with ``dy`` the gradient of ``y``:

    dbeta  = sum(dy)
    dgamma = sum(dy * x_hat)
    dx     = (gamma * inv_std / m) * (m * dy - dbeta - x_hat * dgamma)

Why: written out by hand, the backward is two passes through the batch (one forms both
per-channel sums, one writes ``dx``) and the training forward three (``mean``; ``x - mean``
with its sum of squares; ``y``), where autograd through the composed mean/sub/pow/sqrt/div
ops records 12 nodes, most with a full-size temporary in their backward. Stability: the
variance is the mean of squared *centred* values (its own pass), never ``E[x^2] - mean^2``,
which cancels catastrophically. Derivation, including the second-order formulas, the pass
count and the tests against references: docs/kernels/batch_norm.md.
"""

import operator

from tinygen import backend, cpu
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor
from tinygen.errors import ShapeError
from tinygen.ops import reduce
from tinygen.ops import shape as sh

# ----------------------------------------------------------------------------- xp version
# Layout, chosen by measurement (docs/kernels/batch_norm.md). Per-channel sums view an
# array as (N, C, L) and are one einsum each (``reduce.channel_sum``): a single pass, without
# the strided walk that ``sum(axis=(0, 2))`` makes. Elementwise steps view it as (N, C*L)
# and take per-channel values as one row of C*L (each repeated L times): the row broadcasts
# along N only, so NumPy's inner loop runs over C*L contiguous values instead of L (the
# speed-up is in benchmarks/RESULTS.md).


def _as_ncl(array):
    """View ``(N, C, *spatial)`` as ``(N, C, L)``."""
    return array.reshape(array.shape[0], array.shape[1], -1)


def _as_rows(array):
    """View ``(N, C, *spatial)`` as ``(N, C*L)``."""
    return array.reshape(array.shape[0], -1)


def _channel_row(xp, values, length):
    """Per-channel ``values`` (C,) as a row of ``C*length``, to broadcast against ``_as_rows``."""
    return xp.repeat(values, length) if length > 1 else values


def _by_rows(fn, rows, fold=None):
    """``cpu.map_batch`` of ``fn(chunk)`` over the batch axis of the (N, ...) array ``rows``.

    Each pass over the data goes by chunks of about ``CHUNK_BYTES``, on every CPU thread;
    per-channel sums are folded in chunk order, so they do not depend on the thread count.
    """
    return cpu.map_batch(fn, rows.shape[0], max(1, rows[:1].nbytes), rows, fold=fold)


def _batch_stats(xp, x):
    """``(mean, var, centered)``: per-channel mean and biased variance, and ``x - mean`` as (N, C*L)."""
    x3, x_rows = _as_ncl(x), _as_rows(x)
    count, length = x3.shape[0] * x3.shape[2], x3.shape[2]
    mean = _by_rows(lambda n: reduce.channel_sum(x3[n]), x3, fold=operator.iadd) / count
    mean_row = _channel_row(xp, mean, length)
    centered = xp.empty_like(x_rows)

    def center(n):  # centered = x - mean, and its per-channel sum of squares
        xp.subtract(x_rows[n], mean_row, out=centered[n])
        return reduce.channel_sum(*[centered[n].reshape(x3[n].shape)] * 2)

    var = _by_rows(center, x3, fold=operator.iadd) / count
    return mean, var, centered


def _bn_forward(xp, centered, scale, bias, length):
    """``y = centered * scale + bias`` with per-channel ``scale = gamma * inv_std`` (bias may be None)."""
    scale_row = _channel_row(xp, scale, length)
    bias_row = None if bias is None else _channel_row(xp, bias, length)
    y = xp.empty_like(centered)

    def rows(n):
        xp.multiply(centered[n], scale_row, out=y[n])
        if bias_row is not None:
            y[n] += bias_row

    _by_rows(rows, centered)
    return y


# The CUDA twins of the elementwise passes: one kernel each, where the xp versions launch
# one per step and per repeated row. Thread ``i`` works on element ``i`` of an (N, C*L) array;
# both kernels start from its channel, ``i % (C*L) / L``.
_CHANNEL_CUDA = """
    const int ch = i % (chans * length) / length;
"""
_BN_FORWARD_CUDA = _CHANNEL_CUDA + """
    y = centered * scale[ch] + bias[ch];
"""

BN_FORWARD_KERNEL = backend.CudaSource(
    "T centered, raw T scale, raw T bias, int32 chans, int32 length", "T y", _BN_FORWARD_CUDA,
    "tinygen_bn_forward",
)


def _bn_forward_cuda(centered, scale, bias, length):
    if bias is None:
        bias = backend.get_array_module(scale).zeros_like(scale)
    kernel = backend.elementwise(BN_FORWARD_KERNEL)
    return kernel(centered, scale, bias, scale.shape[0], length)


bn_forward = backend.twin(_bn_forward, cuda=_bn_forward_cuda)


def bn_backward(grad_out, centered, inv_std, scale):
    """``(dx, dgamma, dbeta)`` from the closed form above; ``scale = gamma * inv_std`` per channel.

    With ``x_hat = centered * inv_std``: ``dgamma = inv_std * sum(dy * centered)`` and
    ``dx = scale * (dy - (dgamma*inv_std/m) * centered - dbeta/m)`` (:func:`bn_grad_x`).
    """
    xp = backend.get_array_module(grad_out)
    grad_out3 = _as_ncl(grad_out)
    count, length = grad_out3.shape[0] * grad_out3.shape[2], grad_out3.shape[2]

    def sums(n):  # (2, C): sum(dy) and sum(dy * centered), per channel
        grad3 = grad_out3[n]
        centered3 = centered[n].reshape(grad3.shape)
        return xp.stack([reduce.channel_sum(grad3), reduce.channel_sum(grad3, centered3)])

    grad_beta, grad_dot = _by_rows(sums, grad_out3, fold=operator.iadd)
    grad_gamma = grad_dot * inv_std
    centered_coef, const_coef = grad_gamma * inv_std / count, grad_beta / count
    grad_x = bn_grad_x(_as_rows(grad_out), centered, centered_coef, const_coef, scale, length)
    return grad_x, grad_gamma, grad_beta


def _bn_grad_x_reference(xp, grad_rows, centered, centered_coef, const_coef, scale, length):
    """``dx = scale * (dy - centered_coef * centered - const_coef)`` as it reads (the reference).

    Per-channel ``scale``, ``centered_coef``, ``const_coef`` against (N, C*L) rows of ``dy``
    and ``centered``. Each operator makes a full-size temporary: :func:`_bn_grad_x` is the
    same arithmetic in place, by batch chunks, and a test checks the two agree.
    """

    def row(values):
        return _channel_row(xp, values, length)

    return row(scale) * (grad_rows - row(centered_coef) * centered - row(const_coef))


def _bn_grad_x(xp, grad_rows, centered, centered_coef, const_coef, scale, length):
    """:func:`_bn_grad_x_reference`, computed in place in ``dx`` by batch chunks: one pass
    through the batch, of four in-place steps on each chunk, with no full-size temporary."""
    centered_row, const_row = _channel_row(xp, centered_coef, length), _channel_row(xp, const_coef, length)
    scale_row = _channel_row(xp, scale, length)
    grad_x = xp.empty_like(centered)

    def rows(n):
        xp.multiply(centered[n], centered_row, out=grad_x[n])
        xp.subtract(grad_rows[n], grad_x[n], out=grad_x[n])
        grad_x[n] -= const_row
        grad_x[n] *= scale_row

    _by_rows(rows, centered)
    return grad_x


_BN_GRAD_X_CUDA = _CHANNEL_CUDA + """
    dx = scale[ch] * (dy - centered * centered_coef[ch] - const_coef[ch]);
"""

BN_GRAD_X_KERNEL = backend.CudaSource(
    "T dy, T centered, raw T centered_coef, raw T const_coef, raw T scale, int32 chans, int32 length",
    "T dx", _BN_GRAD_X_CUDA, "tinygen_bn_grad_x",
)


def _bn_grad_x_cuda(grad_rows, centered, centered_coef, const_coef, scale, length):
    kernel = backend.elementwise(BN_GRAD_X_KERNEL)
    return kernel(grad_rows, centered, centered_coef, const_coef, scale, scale.shape[0], length)


bn_grad_x = backend.twin(_bn_grad_x, cuda=_bn_grad_x_cuda)


# ----------------------------------------------------------------------------- Functions


class BatchNorm(Function):
    """``y = gamma * centered * inv_std + beta`` given the batch's ``centered = x - mean``
    (as (N, C*L)) and ``inv_std``.

    Backward is the fused :class:`BatchNormGrad`.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, centered, inv_std, eps):
        scale = inv_std if weight is None else weight.data * inv_std
        y = bn_forward(centered, scale, None if bias is None else bias.data, _as_ncl(x.data).shape[2])
        ctx.save_for_backward(x, weight, centered, inv_std)
        ctx.eps = eps
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, centered, inv_std = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = BatchNormGrad.apply(
            x, weight, grad_out, centered.data, inv_std.data, ctx.eps
        )
        needs = ctx.needs_input_grad
        return (
            grad_x if needs[0] else None,
            grad_weight if needs[1] else None,
            grad_bias if needs[2] else None,
            None,
            None,
            None,
        )


class BatchNormGrad(Function):
    """``(dx, dgamma, dbeta)`` of batch norm in training mode, as one node (Chainer's design).

    Its own backward (second order: gradient penalties through a batch-normed critic)
    recomputes ``x_hat`` from ``x`` with differentiable ops, so any order works. With
    ``a, p, q`` the gradients of ``dx, dgamma, dbeta``, ``s = inv_std``, ``g = dy``, sums per
    channel, ``B = sum(g)``, ``G = sum(g*x_hat)``, ``A1 = sum(a)``, ``A2 = sum(a*x_hat)``:

        u     = sum(a*g) - (B*A1 + G*A2) / m
        ggamma = s * u
        gg    = gamma*s * (a - A1/m - x_hat*A2/m) + p*x_hat + q
        h     = p*g - (gamma*s/m) * (A2*g + G*a)
        gx    = s * (h - sum(h)/m - x_hat*sum(h*x_hat)/m) - (gamma*u*s**2/m) * x_hat
    """

    @staticmethod
    def forward(ctx, x, weight, grad_out, centered, inv_std, eps):
        scale = inv_std if weight is None else weight.data * inv_std
        grad_x, grad_gamma, grad_beta = bn_backward(grad_out.data, centered, inv_std, scale)
        ctx.save_for_backward(x, weight, grad_out)
        ctx.eps = eps
        return grad_x.reshape(x.shape), grad_gamma, grad_beta

    @staticmethod
    def backward(ctx, grad_gx, grad_ggamma, grad_gbeta):
        x, weight, g = ctx.saved_tensors
        axes = (0, *range(2, x.ndim))
        kept = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        count = x.numel() // x.shape[1]

        def total(t):
            return reduce.sum(t, axes, keepdim=True)

        centered = x - reduce.mean(x, axes, keepdim=True)
        inv_std = (reduce.mean(centered * centered, axes, keepdim=True) + ctx.eps) ** -0.5
        x_hat = centered * inv_std
        gamma = 1.0 if weight is None else sh.reshape(weight, kept)
        a, p, q = grad_gx, sh.reshape(grad_ggamma, kept), sh.reshape(grad_gbeta, kept)
        sum_g, sum_gx, sum_a, sum_ax = total(g), total(g * x_hat), total(a), total(a * x_hat)
        u = total(a * g) - (sum_g * sum_a + sum_gx * sum_ax) / count
        scale = gamma * inv_std
        h = p * g - (scale / count) * (sum_ax * g + sum_gx * a)
        grad_x = inv_std * (h - total(h) / count - x_hat * (total(h * x_hat) / count))
        grad_x = grad_x - (gamma * u * inv_std * inv_std / count) * x_hat
        grad_g = scale * (a - sum_a / count - x_hat * (sum_ax / count)) + p * x_hat + q
        grad_weight = sh.reshape(inv_std * u, (x.shape[1],)) if weight is not None else None
        return grad_x, grad_weight, grad_g, None, None, None


# ----------------------------------------------------------------------------- public function


def _check(input, running_mean, running_var, weight, bias, training, momentum):  # noqa: A002
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: input must be (N, C, *), got shape {input.shape}")
    channels = input.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and t.shape != (channels,):
            raise ShapeError(
                f"batch_norm: {name}.shape is {t.shape}, expected (input.shape[1],) = ({channels},)"
            )
    if training and not isinstance(momentum, (int, float)):
        raise TypeError(
            f"batch_norm: momentum must be a number, got {momentum!r} (the modules turn momentum=None "
            "into 1 / num_batches_tracked, a cumulative average)"
        )
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must be given when training=False")
    if training and input.numel() // max(channels, 1) <= 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input shape {input.shape}"
        )


def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):  # noqa: A002
    """Batch normalisation over ``(N, C, *)`` input, per channel (PyTorch's ``F.batch_norm``).

    **Shapes:** input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; ``running_mean``,
    ``running_var``, ``weight`` (gamma), ``bias`` (beta): ``(C,)`` or None. Output: as input.

    **Forward:** ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with the batch's mean and
    biased variance when ``training`` (and then the running statistics, when given, are
    updated in place: ``r = (1 - momentum) * r + momentum * batch``, the unbiased variance
    for ``running_var``), else with ``running_mean`` and ``running_var``.

    **Backward:** training: the fused closed form ``dx = (gamma*inv_std/m) * (m*dy - sum(dy)
    - x_hat*sum(dy*x_hat))`` (:class:`BatchNormGrad`, differentiable again); evaluation:
    an affine map per channel, built from differentiable ops.

    **Why:** keeps each channel's activations at zero mean and unit variance while training.
    See docs/kernels/batch_norm.md.
    """
    _check(input, running_mean, running_var, weight, bias, training, momentum)
    if not training:
        kept = (1, input.shape[1]) + (1,) * (input.ndim - 2)
        xp = backend.get_array_module(running_var.data)
        scale = Tensor((1 / xp.sqrt(running_var.data + eps)).astype(input.dtype, copy=False))
        if weight is not None:
            scale = scale * weight
        shift = -Tensor(running_mean.data.astype(input.dtype, copy=False)) * scale
        if bias is not None:
            shift = shift + bias
        return input * sh.reshape(scale, kept) + sh.reshape(shift, kept)
    xp = backend.get_array_module(input.data)
    mean, var, centered = _batch_stats(xp, input.data)
    if running_mean is not None:
        running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * mean
    if running_var is not None:
        count = input.numel() // input.shape[1]
        running_var.data[...] = (1 - momentum) * running_var.data + momentum * var * (count / (count - 1))
    inv_std = 1 / xp.sqrt(var + eps)
    return BatchNorm.apply(input, weight, bias, centered, inv_std, eps)
