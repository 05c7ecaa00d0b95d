"""Adam (Kingma & Ba, 2015), with L2 weight decay and AMSGrad, as ``torch.optim.Adam`` computes it."""

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam, for each parameter ``p`` with gradient ``g`` at step ``t = 1, 2, ...``::

        g = -g                                    if maximize
        g = g + weight_decay * p                  (L2 penalty, added to the gradient)
        m = beta1 * m + (1 - beta1) * g           (first moment, m starts at 0)
        v = beta2 * v + (1 - beta2) * g^2         (second moment, v starts at 0)
        v_max = max(v_max, v)                     if amsgrad, and then v_max is used for v below
        denom = sqrt(v) / sqrt(1 - beta2^t) + eps
        p = p - lr / (1 - beta1^t) * m / denom

    The two bias corrections undo the pull of the zero start towards 0. ``eps`` is added
    after the square root and the bias correction, as in PyTorch. ``state[p]`` holds
    ``step`` (an int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False
    ):
        if lr < 0.0:
            raise ValueError(f"Adam: lr must be >= 0, got {lr}")
        if eps < 0.0:
            raise ValueError(f"Adam: eps must be >= 0, got {eps}")
        if len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Adam: betas[{i}] must be in [0, 1), got {beta}")
        if weight_decay < 0.0:
            raise ValueError(f"Adam: weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        xp = backend.get_array_module(param)
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = Tensor(xp.zeros_like(param))
            state["exp_avg_sq"] = Tensor(xp.zeros_like(param))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = Tensor(xp.zeros_like(param))
        state["step"] += 1
        step = state["step"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        exp_avg, exp_avg_sq = state["exp_avg"].data, state["exp_avg_sq"].data
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            second = state["max_exp_avg_sq"].data
            xp.maximum(second, exp_avg_sq, out=second)
        else:
            second = exp_avg_sq
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        denom = xp.sqrt(second) / bias_correction2**0.5 + group["eps"]
        param -= (group["lr"] / bias_correction1) * exp_avg / denom
