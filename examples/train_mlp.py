"""Train a 2-layer MLP on a two-spirals toy set with tinygen's autograd engine.

The whole loop is visible: forward, loss, backward, a plain SGD-with-momentum update.
It is the smallest whole training loop in tinygen; chapter 3 of the learning path
(docs/learn/03-mlp.md) builds up to it.

    python examples/train_mlp.py --steps 2000
"""

import argparse
import math

import numpy as np

import tinygen
import tinygen.nn.functional as F


def two_spirals(n, rng):
    """Points on two interleaved spirals (classes 0 and 1), a classic non-linear toy task."""
    turns = np.sqrt(rng.random(n)) * 3 * math.pi
    labels = rng.integers(0, 2, n)
    sign = np.where(labels == 0, 1.0, -1.0)
    points = np.stack([sign * turns * np.cos(turns), sign * turns * np.sin(turns)], axis=1) / 10
    points += rng.normal(scale=0.05, size=points.shape)
    return points.astype(np.float32), labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tinygen.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_all, y_all = two_spirals(2048, rng)

    def init(fan_in, *shape):  # PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1 / math.sqrt(fan_in)
        return ((tinygen.rand(*shape) * 2 - 1) * bound).detach().requires_grad_()

    params = [
        init(2, args.hidden, 2),
        init(2, args.hidden),
        init(args.hidden, 2, args.hidden),
        init(args.hidden, 2),
    ]
    velocity = [np.zeros_like(p.data) for p in params]

    for step in range(1, args.steps + 1):
        batch = rng.integers(0, len(x_all), 64)
        x, y = tinygen.tensor(x_all[batch]), tinygen.tensor(y_all[batch])
        w1, b1, w2, b2 = params
        logits = F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)
        loss = F.cross_entropy(logits, y)
        for p in params:
            p.grad = None
        loss.backward()
        for p, v in zip(params, velocity, strict=True):  # SGD with momentum 0.9
            v *= 0.9
            v += p.grad.data
            p.data -= args.lr * v
        if step % 250 == 0 or step == 1:
            with tinygen.no_grad():
                logits = F.linear(F.relu(F.linear(tinygen.tensor(x_all), w1, b1)), w2, b2)
                accuracy = float((logits.argmax(1).numpy() == y_all).mean())
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
