"""Chapter 2: write a differentiable op with ``tinygen.autograd.Function`` and check it.

    python examples/learn/02_custom_op.py

The op is Swish with a learnable slope, ``y = x * sigmoid(beta * x)`` (beta = 1 is SiLU).
It has two inputs, so backward returns two gradients, and beta is a scalar broadcast over x,
so its gradient is a sum. ``gradcheck`` and ``gradgradcheck`` pass; a backward that forgets
one term of the product rule fails, and the printed report says where. The page is
docs/learn/02-custom-op.md; examples/check_custom_op.py is the fuller tool (``check_op``).
"""

import argparse
from pathlib import Path

import numpy as np

import tinygen
from tinygen import backend
from tinygen.autograd import Function
from tinygen.testing import GradcheckError, gradcheck, gradgradcheck


class Swish(Function):
    """Swish with a learnable slope: y = x * sigmoid(beta * x).

    Shapes: x any shape, beta a scalar (shape ()), y the shape of x.
    Forward: y[i] = x[i] * s[i], s[i] = sigmoid(beta * x[i]).
    Backward: dx[i] = dy[i] * (s[i] + beta*x[i]*s[i]*(1 - s[i])),
              dbeta = sum_i dy[i] * x[i]**2 * s[i]*(1 - s[i]).
    Why: the product rule on x * s, with d sigmoid(z)/dz = s*(1 - s); beta is broadcast, so dbeta sums.
    """

    @staticmethod
    def forward(ctx, x, beta):
        xp = backend.get_array_module(x.data)
        s = 0.5 * (1 + xp.tanh(0.5 * beta.data * x.data))  # sigmoid(z) = (1 + tanh(z/2)) / 2: no overflow
        ctx.save_for_backward(x, beta)
        return x.data * s

    @staticmethod
    def backward(ctx, grad):
        x, beta = ctx.saved_tensors
        s = tinygen.sigmoid(beta * x)  # tinygen ops from here on: backward is differentiable too
        slope = s * (1 - s)  # d sigmoid(z)/dz
        grad_x = grad * (s + beta * x * slope) if ctx.needs_input_grad[0] else None
        grad_beta = (grad * x * x * slope).sum() if ctx.needs_input_grad[1] else None
        return grad_x, grad_beta


class SwishForgetsProductRule(Swish):
    """Planted bug: dx = dy * s, as if the x inside sigmoid(beta * x) were a constant."""

    @staticmethod
    def backward(ctx, grad):
        x, beta = ctx.saved_tensors
        s = tinygen.sigmoid(beta * x)
        return grad * s, (grad * x * x * s * (1 - s)).sum()


def swish_from_builtins(x, beta):
    """The same function from built-in ops, to compare values and gradients with."""
    return x * tinygen.sigmoid(beta * x)


def draw_figures(out):
    """02-swish.png: y = Swish(x, beta) and dy/dx from its backward, for three slopes beta."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for beta in (0.5, 1.0, 4.0):
        x = tinygen.linspace(-4, 4, 201, dtype=tinygen.float64, requires_grad=True)
        y = Swish.apply(x, tinygen.tensor(beta, dtype=tinygen.float64))
        y.sum().backward()  # dy/dx[i], since y[i] depends on x[i] alone
        left.plot(x.numpy(), y.numpy(), label=f"beta = {beta:g}")
        right.plot(x.numpy(), x.grad.numpy(), label=f"beta = {beta:g}")
    left.set(xlabel="x", title="y = x * sigmoid(beta * x)")
    right.set(xlabel="x", title="dy/dx from Swish.backward")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(out) / "02-swish.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/learn/02", help="unused: this chapter writes no files")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x_data = rng.uniform(-3, 3, size=(3, 4))

    # 1. Forward and backward against the same function built from tinygen's own ops.
    x = tinygen.tensor(x_data, requires_grad=True)
    beta = tinygen.tensor(1.5, dtype=tinygen.float64, requires_grad=True)
    y = Swish.apply(x, beta)
    print(f"y = Swish.apply(x, beta): shape {y.shape}, grad_fn {y.grad_fn}")
    (y * y).sum().backward()
    ours = x.grad.numpy(), beta.grad.item()
    x.grad = beta.grad = None
    reference = swish_from_builtins(x, beta)
    (reference * reference).sum().backward()
    forward_gap = np.abs(y.numpy() - reference.numpy()).max()
    print(f"forward vs x * sigmoid(beta * x): max |difference| {forward_gap:.1e}")
    print(f"dx vs autograd through built-ins:  max |difference| {np.abs(ours[0] - x.grad.numpy()).max():.1e}")
    print(f"dbeta: ours {ours[1]:.10f}, built-ins {beta.grad.item():.10f}")

    # 2. The checkers: every element of dx and dbeta, then the derivative of backward itself.
    inputs = (x.detach().requires_grad_(), beta.detach().requires_grad_())  # float64 leaves
    print(f"\ngradcheck(Swish.apply, inputs)     -> {gradcheck(Swish.apply, inputs)}")
    print(f"gradgradcheck(Swish.apply, inputs) -> {gradgradcheck(Swish.apply, inputs)}")

    # 3. A planted bug. The check raises GradcheckError; its message is the report.
    try:
        gradcheck(SwishForgetsProductRule.apply, inputs)
    except GradcheckError as report:
        print(f"\nthe planted bug is caught:\n{report}")
    else:
        raise AssertionError("gradcheck missed the forgotten product-rule term")


if __name__ == "__main__":
    main()
