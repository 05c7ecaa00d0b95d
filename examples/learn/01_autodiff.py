"""Chapter 1: reverse-mode autodiff, on scalars first, then on tensors that broadcast.

    python examples/learn/01_autodiff.py

A ``Value`` is a float that remembers which op made it from which parents. ``backward``
visits every Value in reverse topological order and applies each op's local chain rule,
adding (``+=``) into a parent's ``grad``, so a Value used twice gets both contributions.
The gradients are compared with tinygen's ``Tensor`` on the same expression and with
central finite differences. The page is docs/learn/01-autodiff.md.
"""

import argparse
import math

import numpy as np

import tinygen


class Value:
    """A scalar in a recorded expression: its value, its gradient, the op and parents that made it."""

    def __init__(self, data, parents=(), op="", label=""):
        self.data = float(data)
        self.grad = 0.0
        self.parents = parents
        self.op = op
        self.label = label
        self.push_grad = lambda: None  # set by the op: adds this Value's grad into its parents'

    def __repr__(self):
        return f"Value({self.data:.6g}, grad={self.grad:.6g})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def push_grad():  # d(a + b)/da = d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out.push_grad = push_grad
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def push_grad():  # d(a * b)/da = b,  d(a * b)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out.push_grad = push_grad
        return out

    __radd__ = __add__
    __rmul__ = __mul__

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def push_grad():  # d tanh(a)/da = 1 - tanh(a)**2
            self.grad += (1 - t * t) * out.grad

        out.push_grad = push_grad
        return out

    def exp(self):
        e = math.exp(self.data)
        out = Value(e, (self,), "exp")

        def push_grad():  # d exp(a)/da = exp(a)
            self.grad += e * out.grad

        out.push_grad = push_grad
        return out

    def backward(self):
        """Set d(self)/d(self) = 1, then push gradients from the output back to the leaves."""
        order = topological_order(self)
        for value in order:
            value.grad = 0.0
        self.grad = 1.0
        for value in reversed(order):
            value.push_grad()


def topological_order(root):
    """Every Value ``root`` depends on, each listed after its parents (iterative depth-first search)."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        value, parents_done = stack.pop()
        if parents_done:
            order.append(value)
            continue
        if value in seen:
            continue
        seen.add(value)
        stack.append((value, True))  # comes back off the stack after all its parents
        stack.extend((parent, False) for parent in value.parents if parent not in seen)
    return order


def expression(a, b):
    """L = tanh(a*b + a) * b + exp(b): both a and b are used more than once."""
    return (a * b + a).tanh() * b + b.exp()


def central_difference(f, a, b, eps=1e-6):
    """(dL/da, dL/db) from (f(x + eps) - f(x - eps)) / (2 eps), one input at a time."""
    da = (f(Value(a + eps), Value(b)).data - f(Value(a - eps), Value(b)).data) / (2 * eps)
    db = (f(Value(a), Value(b + eps)).data - f(Value(a), Value(b - eps)).data) / (2 * eps)
    return da, db


def scalar_demo(a0, b0):
    a, b = Value(a0, label="a"), Value(b0, label="b")
    loss = expression(a, b)
    loss.backward()
    order = topological_order(loss)
    print(f"L = tanh(a*b + a) * b + exp(b)   at a = {a0}, b = {b0}:  L = {loss.data:.10f}")
    print("backward visits: " + " -> ".join(v.label or v.op for v in reversed(order)))

    ta = tinygen.tensor(a0, dtype=tinygen.float64, requires_grad=True)
    tb = tinygen.tensor(b0, dtype=tinygen.float64, requires_grad=True)
    expression(ta, tb).backward()
    numerical = central_difference(expression, a0, b0)

    print(f"{'':6}{'Value':>16}{'tinygen.Tensor':>18}{'central diff':>16}")
    for name, value, tensor, approx in zip("ab", (a, b), (ta, tb), numerical, strict=True):
        print(f"dL/d{name}{value.grad:16.10f}{tensor.grad.item():18.10f}{approx:16.10f}")
        assert abs(value.grad - tensor.grad.item()) < 1e-12
        assert abs(value.grad - approx) < 1e-8
    worst = max(abs(v.grad - n) for v, n in zip((a, b), numerical, strict=True))
    print(f"Value and Tensor agree to 1e-12; largest gap to the central difference: {worst:.1e}")


def broadcast_demo(rng):
    """y = x + b + c with x (2, 3), b (3,), c (2, 1): each gradient comes back in its input's shape."""
    x = tinygen.tensor(rng.normal(size=(2, 3)), requires_grad=True)
    b = tinygen.tensor(rng.normal(size=3), requires_grad=True)
    c = tinygen.tensor(rng.normal(size=(2, 1)), requires_grad=True)
    weights = rng.normal(size=(2, 3))
    y = x + b + c
    loss = (tinygen.tensor(weights) * y).sum()  # L = sum(weights * y), so dy = weights
    loss.backward()
    expected = {
        "x": (x, weights, "dy"),
        "b": (b, weights.sum(axis=0), "dy summed over axis 0 (the axis numpy prepended)"),
        "c": (c, weights.sum(axis=1, keepdims=True), "dy summed over axis 1 (kept, of size 1)"),
    }
    print(f"\nbroadcasting: y = x + b + c has shape {y.shape}; L = sum(weights * y), so dy = weights")
    print(f"  {'input':<6}{'shape':<9}{'grad shape':<12}grad equals")
    for name, (t, grad, rule) in expected.items():
        assert t.grad.shape == t.shape and np.allclose(t.grad.numpy(), grad)
        print(f"  {name:<6}{str(t.shape):<9}{str(t.grad.shape):<12}{rule}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=float, default=0.5, help="value of a")
    parser.add_argument("--b", type=float, default=-1.5, help="value of b")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/learn/01", help="unused: this chapter writes no files")
    args = parser.parse_args(argv)
    scalar_demo(args.a, args.b)
    broadcast_demo(np.random.default_rng(args.seed))


if __name__ == "__main__":
    main()
