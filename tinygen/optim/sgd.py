"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay (PyTorch's rule)."""

from tinygen.autograd.tensor import Tensor
from tinygen.optim.optimizer import Optimizer


class SGD(Optimizer):
    """SGD exactly as ``torch.optim.SGD`` computes it, for each parameter ``p`` with gradient ``g``::

        g = -g                       if maximize
        g = g + weight_decay * p     (L2 penalty, added to the gradient)
        if momentum != 0:
            b = g                                          on the first step
            b = momentum * b + (1 - dampening) * g         afterwards
            g = g + momentum * b     if nesterov,  else  g = b
        p = p - lr * g

    ``state[p]["momentum_buffer"]`` holds ``b`` (only when ``momentum != 0``).
    """

    def __init__(
        self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False
    ):
        if lr < 0.0:
            raise ValueError(f"SGD: lr must be >= 0, got {lr}")
        if momentum < 0.0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum={momentum}, "
                f"dampening={dampening}"
            )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        momentum = group["momentum"]
        if momentum != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = Tensor(grad.copy())
            else:
                buf = state["momentum_buffer"].data
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            buf = state["momentum_buffer"].data
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * grad
