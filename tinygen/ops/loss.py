"""Loss functions, each numerically stable at extreme inputs.

Two have hand-written Functions because composing them from smaller ops is unstable:
``binary_cross_entropy`` (log of 0 at saturated probabilities) and
``binary_cross_entropy_with_logits`` (exp overflow at large logits). The others are
compositions of stable ops (``log_softmax``, indexing, sums).
"""

import numpy

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor
from tinygen.errors import DTypeError, ShapeError
from tinygen.ops import activation as act
from tinygen.ops import elementwise as ew
from tinygen.ops import reduce as rd
from tinygen.ops import shape as sh

REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return rd.mean(loss)
    if reduction == "sum":
        return rd.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction {reduction!r} is not one of {REDUCTIONS}")


def _check_same_shape(input, target, op):  # noqa: A002
    if input.shape != target.shape:
        raise ShapeError(f"{op}: target has shape {target.shape}, expected input's shape {input.shape}")


def mse_loss(input, target, reduction="mean"):  # noqa: A002  (PyTorch's names)
    """``(input - target)**2``, reduced."""
    _check_same_shape(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


class BinaryCrossEntropy(Function):
    """``l = -(t log p + (1 - t) log(1 - p))`` for probabilities ``p``.

    Each log is clamped at -100, as PyTorch does, so ``p`` = 0 or 1 gives a finite loss.
    ``dp = dl * (p - t) / max(p (1 - p), 1e-12)``;  ``dt = dl * (log(1 - p) - log p)`` (unclamped).
    """

    @staticmethod
    def forward(ctx, p, t):
        xp = backend.get_array_module(p.data)
        with numpy.errstate(divide="ignore"):
            log_p = xp.maximum(xp.log(p.data), -100)
            log_1mp = xp.maximum(xp.log1p(-p.data), -100)
        ctx.save_for_backward(p, t)
        return -(t.data * log_p + (1 - t.data) * log_1mp)

    @staticmethod
    def backward(ctx, grad):
        p, t = ctx.saved_tensors
        grad_p = grad * (p - t) / ew.clamp(p * (1 - p), min=1e-12) if ctx.needs_input_grad[0] else None
        grad_t = None
        if ctx.needs_input_grad[1]:  # -logit(p), unclamped as in PyTorch: infinite at p = 0 or 1
            with numpy.errstate(divide="ignore"):
                grad_t = grad * (ew.log(1 - p) - ew.log(p))
        return grad_p, grad_t


def binary_cross_entropy(input, target, weight=None, reduction="mean"):  # noqa: A002
    """BCE on probabilities in [0, 1]; prefer ``binary_cross_entropy_with_logits`` for stability."""
    _check_same_shape(input, target, "binary_cross_entropy")
    if input.numel():
        lo, hi = float(input.data.min()), float(input.data.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"binary_cross_entropy: input values must lie in [0, 1], got range [{lo}, {hi}]; "
                "for logits use binary_cross_entropy_with_logits"
            )
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


class BinaryCrossEntropyWithLogits(Function):
    """``l = (1 - t) x + w_t softplus(-x)`` with ``w_t = 1 + (pos_weight - 1) t``.

    ``softplus(-x) = max(-x, 0) + log1p(exp(-|x|))`` never overflows, so |x| = 100 is fine.
    ``dx = dl * ((1 - t) - w_t sigmoid(-x))`` (= ``sigmoid(x) - t`` when pos_weight = 1);
    ``dt = dl * (-x + (pos_weight - 1) softplus(-x))``;  ``dpos_weight = dl * t softplus(-x)``.
    """

    @staticmethod
    def forward(ctx, x, t, pos_weight):
        xp = backend.get_array_module(x.data)
        softplus_neg = xp.maximum(-x.data, 0) + xp.log1p(xp.exp(-abs(x.data)))
        pw = 1 if pos_weight is None else pos_weight.data
        ctx.save_for_backward(x, t, pos_weight)
        return (1 - t.data) * x.data + (1 + (pw - 1) * t.data) * softplus_neg

    @staticmethod
    def backward(ctx, grad):
        x, t, pos_weight = ctx.saved_tensors
        if pos_weight is None:
            grad_x = grad * (ew.sigmoid(x) - t) if ctx.needs_input_grad[0] else None
            grad_t = -grad * x if ctx.needs_input_grad[1] else None
            return grad_x, grad_t, None
        weight_t = 1 + (pos_weight - 1) * t
        softplus_neg = act.softplus(-x, threshold=float("inf"))  # exact, as in forward
        grad_x = grad * ((1 - t) - weight_t * ew.sigmoid(-x)) if ctx.needs_input_grad[0] else None
        grad_t = grad * (-x + (pos_weight - 1) * softplus_neg) if ctx.needs_input_grad[1] else None
        grad_pw = None
        if ctx.needs_input_grad[2]:
            grad_pw = sh.sum_to(grad * t * softplus_neg, pos_weight.shape)
        return grad_x, grad_t, grad_pw


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):  # noqa: A002
    """BCE of ``sigmoid(input)`` against ``target``, computed from the logits without overflow."""
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is not None and not isinstance(pos_weight, Tensor):
        pos_weight = Tensor(backend.get_array_module(input.data).asarray(pos_weight, dtype=input.dtype))
    loss = BinaryCrossEntropyWithLogits.apply(input, target, pos_weight)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


class NLLLoss(Function):
    """``l_n = -w_n * logp[n, t_n]`` for rows ``logp: (M, C)``, with ``w_n = weight[t_n]`` (0 if ignored).

    ``'none'`` returns ``l``, ``'sum'`` its sum, ``'mean'`` its sum divided by ``sum_n w_n``.
    ``dlogp[n, t_n] = -w_n * dl_n`` (divided by ``sum_n w_n`` for 'mean'), 0 elsewhere: a
    scatter in which each row receives exactly one value, so no accumulation is needed.
    """

    @staticmethod
    def forward(ctx, logp, target, w, reduction):
        xp = backend.get_array_module(logp.data)
        rows = xp.arange(logp.shape[0])
        ctx.index, ctx.shape = (rows, target), logp.shape
        if w is None:  # no class weights, nothing ignored: every w_n is 1
            w = xp.ones(logp.shape[0], dtype=logp.dtype)
        losses = -(w * logp.data[rows, target])
        if reduction == "none":
            ctx.scale = -w
            return losses
        if reduction == "sum":
            ctx.scale = -w
            return losses.sum()
        total = w.sum()
        ctx.scale = -w / total
        with numpy.errstate(invalid="ignore", divide="ignore"):  # all ignored: nan, as PyTorch
            return losses.sum() / total

    @staticmethod
    def backward(ctx, grad):
        per_row = grad * Tensor(ctx.scale)
        return sh.IndexAdd.apply(per_row, ctx.shape, ctx.index, False), None, None, None


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):  # noqa: A002
    """``-w[t_n] * input[n, t_n]`` for log-probabilities ``input: (N, C, *)``, ``target: (N, *)``.

    ``reduction='mean'`` divides by the summed weights of the targets that are not
    ``ignore_index`` (PyTorch's weighted mean).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"nll_loss: reduction {reduction!r} is not one of {REDUCTIONS}")
    logp, target, weight, keep, xp = _class_layout(input, target, weight, ignore_index, "nll_loss")
    if keep is None:
        w = None if weight is None else weight.data[target]
    else:
        target = xp.where(keep, target, 0)
        w = keep if weight is None else weight.data[target] * keep
    w = None if w is None else w.astype(logp.dtype, copy=False)
    loss = NLLLoss.apply(logp, target, w, reduction)
    return sh.reshape(loss, *_batch_shape(input)) if reduction == "none" else loss


def _batch_shape(input):  # noqa: A002
    return (input.shape[0], *input.shape[2:]) if input.ndim > 1 else ()


def _class_layout(input, target, weight, ignore_index, op):  # noqa: A002
    """Flatten ``(N, C, *)`` scores to ``(M, C)`` rows and the targets to ``(M,)``.

    Also returns ``keep``, the mask of targets that are not ``ignore_index`` (None when
    no target is ignored), after checking that the others are class indices.
    """
    if input.ndim < 1:
        raise ShapeError(f"{op}: input must have a class dim, got shape {input.shape}")
    target = target.data if isinstance(target, Tensor) else target
    xp = backend.get_array_module(input.data)
    target = xp.asarray(target)
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    expected = _batch_shape(input)
    if target.shape != expected:
        raise ShapeError(
            f"{op}: target has shape {target.shape}, expected {expected} for input {input.shape}"
        )
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    if weight is not None and weight.shape != (classes,):
        raise ShapeError(f"{op}: weight has shape {weight.shape}, expected ({classes},)")
    if input.ndim == 1:
        rows = sh.reshape(input, 1, classes)
    else:
        rows = sh.reshape(sh.permute(input, 0, *range(2, input.ndim), 1), -1, classes)
    target = target.reshape(-1)
    if target.size and 0 <= target.min() and target.max() < classes and not 0 <= ignore_index < classes:
        return rows, target, weight, None, xp  # every target is a class and none is ignored
    keep = target != ignore_index
    bad = keep & ((target < 0) | (target >= classes))
    if bool(bad.any()):
        raise ValueError(
            f"{op}: target holds {int(target[bad][0])}, expected class indices in [0, {classes}) "
            f"or ignore_index={ignore_index}"
        )
    return rows, target, weight, keep, xp


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):  # noqa: A002
    """``nll_loss(log_softmax(input, 1), target)`` for class indices, or soft targets of input's shape.

    With ``label_smoothing = e`` the target mixes ``1 - e`` of the class with ``e`` spread
    uniformly over the ``C`` classes, as in PyTorch.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 1 if input.ndim > 1 else 0
    logp = rd.log_softmax(input, class_dim)
    classes = input.shape[class_dim]
    target_data = target.data if isinstance(target, Tensor) else target
    if getattr(target_data, "dtype", None) is not None and target_data.dtype.kind == "f":
        return _soft_cross_entropy(logp, target, weight, reduction, label_smoothing, class_dim)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return nll
    rows, target_flat, _, keep, xp = _class_layout(logp, target, weight, ignore_index, "cross_entropy")
    if keep is None:
        keep = xp.ones(target_flat.shape, dtype=bool)
    if weight is not None:
        rows = rows * weight
    smooth = -rd.sum(rows, 1) * Tensor(keep.astype(logp.dtype))
    if reduction == "mean":
        if weight is not None:
            denom = float(weight.data[xp.where(keep, target_flat, 0)][keep].sum())
        else:
            denom = float(keep.sum())
        smooth = rd.sum(smooth) / denom
    elif reduction == "none":
        smooth = sh.reshape(smooth, *_batch_shape(input))
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return (1 - label_smoothing) * nll + (label_smoothing / classes) * smooth


def _soft_cross_entropy(logp, target, weight, reduction, label_smoothing, class_dim):
    """Cross entropy against class probabilities: ``-sum_c w_c t_c log p_c``, per sample and position."""
    if not isinstance(target, Tensor):
        target = Tensor(target)
    _check_same_shape(logp, target, "cross_entropy")
    classes = logp.shape[class_dim]
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = logp * target
    if weight is not None:
        shape = [1] * logp.ndim
        shape[class_dim] = classes
        terms = terms * sh.reshape(weight, *shape)
    return _reduce(-rd.sum(terms, class_dim), reduction, "cross_entropy")


def kl_div(input, target, reduction="mean", log_target=False):  # noqa: A002
    """``target * (log target - input)`` for log-probabilities ``input`` (PyTorch's ``kl_div``).

    ``reduction='batchmean'`` divides the sum by the batch size: the true KL per sample.
    Where ``target`` = 0 the term is 0.
    """
    _check_same_shape(input, target, "kl_div")
    if log_target:
        loss = ew.exp(target) * (target - input)
    else:
        xp = backend.get_array_module(target.data)
        positive = Tensor(target.data > 0)
        safe_log = ew.log(ew.where(positive, target, 1.0))
        loss = ew.where(positive, target * (safe_log - input), Tensor(xp.zeros((), input.dtype)))
    if reduction == "batchmean":
        return rd.sum(loss) / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def gaussian_kl(mu, logvar, reduction="sum"):
    """KL( N(mu, exp(logvar)) || N(0, 1) ) for a VAE's diagonal Gaussian posterior.

    Per element: ``-0.5 * (1 + logvar - mu**2 - exp(logvar))`` (Kingma & Welling 2014,
    Appendix B). ``reduction`` is ``'sum'`` (the classic VAE loss), ``'batchmean'`` (sum / N),
    ``'mean'`` or ``'none'``.
    """
    _check_same_shape(mu, logvar, "gaussian_kl")
    loss = -0.5 * (1 + logvar - mu * mu - ew.exp(logvar))
    if reduction == "batchmean":
        return rd.sum(loss) / (mu.shape[0] if mu.ndim else 1)
    return _reduce(loss, reduction, "gaussian_kl")
