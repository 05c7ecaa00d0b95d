"""Chapter 3: a linear layer's gradients by hand, then an MLP trained on two spirals.

    python examples/learn/03_mlp.py

``LinearFn`` is ``y = x @ W^T + b`` with the backward derived on the page
(``dx = dy @ W``, ``dW = dy^T @ x``, ``db = sum_n dy``); gradcheck and ``F.linear`` agree
with it. Then ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` learns the two spirals of
examples/train_mlp.py with ``F.cross_entropy`` and SGD, next to one linear layer that
cannot. The page is docs/learn/03-mlp.md.
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np

import tinygen
import tinygen.nn.functional as F
from tinygen import nn, optim
from tinygen.autograd import Function
from tinygen.testing import gradcheck

EXAMPLES = Path(__file__).resolve().parents[1]


def load_two_spirals():
    """``two_spirals(n, rng)`` from examples/train_mlp.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("train_mlp", EXAMPLES / "train_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.two_spirals


class LinearFn(Function):
    """A linear layer: y = x @ W^T + b.

    Shapes: x (N, in), W (out, in), b (out,), y (N, out).
    Forward: y[n,o] = b[o] + sum_i W[o,i]*x[n,i].
    Backward: dx = dy @ W,  dW = dy^T @ x,  db[o] = sum_n dy[n,o].
    Why: y[n,o] depends on x[n,i] through W[o,i], on W[o,i] through x[n,i], and on b[o] for every n.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return x.data @ weight.data.T + bias.data

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        return grad @ weight, grad.T @ x, grad.sum(0)


def check_linear(rng):
    x = tinygen.tensor(rng.normal(size=(5, 3)), requires_grad=True)
    weight = tinygen.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    bias = tinygen.tensor(rng.normal(size=4), requires_grad=True)
    print("LinearFn: y = x @ W^T + b")
    print(f"  x {x.shape}, W {weight.shape}, b {bias.shape} -> y {LinearFn.apply(x, weight, bias).shape}")
    print(f"  gradcheck(LinearFn.apply, (x, W, b)) -> {gradcheck(LinearFn.apply, (x, weight, bias))}")

    upstream = tinygen.tensor(rng.normal(size=(5, 4)))  # L = sum(upstream * y), so dy = upstream
    grads = []
    for linear in (LinearFn.apply, F.linear):
        for t in (x, weight, bias):
            t.grad = None
        (upstream * linear(x, weight, bias)).sum().backward()
        grads.append([t.grad.numpy() for t in (x, weight, bias)])
    gap = max(np.abs(ours - builtin).max() for ours, builtin in zip(*grads, strict=True))
    print(
        f"  dx {x.grad.shape}, dW {weight.grad.shape}, db {bias.grad.shape}; "
        f"largest gap to F.linear's gradients: {gap:.1e}"
    )


def accuracy(model, points, labels):
    with tinygen.no_grad():
        predicted = model(tinygen.tensor(points)).argmax(1).numpy()
    return float((predicted == labels).mean())


def train(model, points, labels, steps, lr, rng, log_every=0):
    """Minibatch SGD with momentum on the cross-entropy; returns the loss of every step."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for step in range(1, steps + 1):
        batch = rng.integers(0, len(points), 64)
        logits = model(tinygen.tensor(points[batch]))
        loss = F.cross_entropy(logits, tinygen.tensor(labels[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step == 1 or step % log_every == 0):
            print(
                f"  step {step:4d}  loss {loss.item():.4f}  "
                f"train accuracy {accuracy(model, points, labels):.3f}"
            )
    return losses


def mlp(hidden):
    return nn.Sequential(
        nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2)
    )


def fit_spirals(steps, hidden, lr, seed, log=True):
    """Train one linear layer and an MLP on the same spirals; returns what the figure needs."""
    tinygen.manual_seed(seed)
    rng = np.random.default_rng(seed)
    two_spirals = load_two_spirals()
    train_x, train_y = two_spirals(2048, rng)
    test_x, test_y = two_spirals(512, rng)
    linear = nn.Linear(2, 2)
    train(linear, train_x, train_y, steps, lr, rng)
    model = mlp(hidden)
    if log:
        print(f"\n{model}")
    losses = train(model, train_x, train_y, steps, lr, rng, log_every=250 if log else 0)
    if log:
        print(
            f"test accuracy: one Linear layer {accuracy(linear, test_x, test_y):.3f}, "
            f"MLP {accuracy(model, test_x, test_y):.3f}"
        )
    return linear, model, losses, test_x, test_y


def draw_figures(out):
    """03-spirals.png: the MLP's loss per step, and the decision regions of both models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    linear, model, losses, test_x, test_y = fit_spirals(steps=1500, hidden=32, lr=0.1, seed=0, log=False)
    grid = np.linspace(-1.1, 1.1, 200, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].plot(losses, lw=0.6)
    axes[0].set(xlabel="step", ylabel="cross-entropy (batch of 64)", title="MLP training loss")
    for ax, name, net in ((axes[1], "one Linear layer", linear), (axes[2], "MLP", model)):
        with tinygen.no_grad():
            regions = net(tinygen.tensor(np.stack([gx.ravel(), gy.ravel()], 1))).argmax(1).numpy()
        ax.contourf(gx, gy, regions.reshape(gx.shape), levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#fdd0a2"])
        ax.scatter(*test_x.T, c=test_y, cmap="coolwarm", s=4)
        title = f"{name}: test accuracy {accuracy(net, test_x, test_y):.3f}"
        ax.set(title=title, aspect="equal", xticks=[], yticks=[])
    fig.tight_layout()
    path = Path(out) / "03-spirals.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/learn/03", help="unused: this chapter writes no files")
    args = parser.parse_args(argv)
    check_linear(np.random.default_rng(args.seed))
    fit_spirals(args.steps, args.hidden, args.lr, args.seed)


if __name__ == "__main__":
    main()
