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
        max_exp_avg_sq = state["max_exp_avg_sq"].data if group["amsgrad"] else None
        adam_step(
            param, grad, state["exp_avg"].data, state["exp_avg_sq"].data, max_exp_avg_sq,
            lr=group["lr"], betas=group["betas"], eps=group["eps"], step=step,
        )  # fmt: skip


def _adam_step_reference(xp, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, betas, eps, step):
    """One Adam update, in place, written as the class docstring's formula (the reference)."""
    beta1, beta2 = betas
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    if max_exp_avg_sq is not None:
        max_exp_avg_sq[...] = xp.maximum(max_exp_avg_sq, exp_avg_sq)
    second = exp_avg_sq if max_exp_avg_sq is None else max_exp_avg_sq
    denom = xp.sqrt(second) / (1 - beta2**step) ** 0.5 + eps
    param -= lr / (1 - beta1**step) * exp_avg / denom


def _adam_step(xp, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, betas, eps, step):
    """One Adam update of ``param``, ``exp_avg`` and ``exp_avg_sq`` (and ``max_exp_avg_sq``) in place.

    :func:`_adam_step_reference` with the formula's terms put through two scratch arrays, in
    the formula's order, so the numbers are the reference's to the bit, without its eight
    fresh arrays (a test checks it; the time saved is in benchmarks/RESULTS.md).
    """
    beta1, beta2 = betas
    term, denom = xp.empty_like(param), xp.empty_like(param)
    exp_avg *= beta1
    exp_avg += xp.multiply(grad, 1 - beta1, out=term)  # m = beta1 m + (1 - beta1) g
    exp_avg_sq *= beta2
    xp.multiply(grad, 1 - beta2, out=term)
    term *= grad
    exp_avg_sq += term  # v = beta2 v + (1 - beta2) g g
    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    xp.sqrt(second, out=denom)
    denom /= (1 - beta2**step) ** 0.5
    denom += eps  # sqrt(v) / sqrt(1 - beta2^t) + eps
    xp.multiply(exp_avg, lr / (1 - beta1**step), out=term)
    term /= denom
    param -= term  # p -= lr / (1 - beta1^t) * m / denom


# The same update as one CUDA kernel per parameter: the xp version launches about ten.
# Adam and AMSGrad share the moments; they differ in the second moment the step divides by.
_MOMENTS_CUDA = """
    m = beta1 * m + (1 - beta1) * g;
    v = beta2 * v + (1 - beta2) * g * g;
"""
_ADAM_CUDA = _MOMENTS_CUDA + """
    p -= step_size * m / (sqrt(v) / root_bc2 + eps);
"""
_AMSGRAD_CUDA = _MOMENTS_CUDA + """
    v_max = max(v_max, v);
    p -= step_size * m / (sqrt(v_max) / root_bc2 + eps);
"""

_ADAM_INPUTS = "T g, T beta1, T beta2, T step_size, T root_bc2, T eps"
ADAM_KERNEL = backend.CudaSource(_ADAM_INPUTS, "T p, T m, T v", _ADAM_CUDA, "tinygen_adam")
AMSGRAD_KERNEL = backend.CudaSource(_ADAM_INPUTS, "T p, T m, T v, T v_max", _AMSGRAD_CUDA, "tinygen_amsgrad")


def _adam_step_cuda(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, betas, eps, step):
    """:func:`_adam_step` as one fused kernel (CuPy arrays)."""
    beta1, beta2 = betas
    scalars = [param.dtype.type(value) for value in
               (beta1, beta2, lr / (1 - beta1**step), (1 - beta2**step) ** 0.5, eps)]  # fmt: skip
    if max_exp_avg_sq is None:
        backend.elementwise(ADAM_KERNEL)(grad, *scalars, param, exp_avg, exp_avg_sq)
    else:
        backend.elementwise(AMSGRAD_KERNEL)(grad, *scalars, param, exp_avg, exp_avg_sq, max_exp_avg_sq)


adam_step = backend.twin(_adam_step, cuda=_adam_step_cuda)
