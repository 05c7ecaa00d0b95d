"""Per-op overhead of the autograd engine: one SGD training step of a 2-layer MLP.

One step is ``Linear -> ReLU -> Linear -> cross_entropy`` on a batch of 64, backward, and a
plain SGD update ``p -= lr * p.grad`` with the gradients reset to None first (PyTorch's
``zero_grad(set_to_none=True)``). float32 everywhere. Two cases:

- small: 32 -> 64 -> 10. The arrays are tiny, so the time is Python overhead per op.
- large: 1024 -> 1024 -> 1024. The matrix products (GEMM) take most of the time.

Three implementations run in one process from the same weights: tinygen, PyTorch on the
CPU (if installed), and plain NumPy with the backward derived by hand (the floor an
engine built on NumPy can reach). Before timing, the loss and gradients of tinygen are
checked against the other two, so that nothing wrong is ever timed.

Targets: tinygen at most 2.0x PyTorch on small, at most 1.2x on large.

    python benchmarks/bench_mlp.py --threads 2
"""

import math

import harness
import numpy

import tinygen
import tinygen.nn.functional as F

torch = harness.torch  # None when PyTorch is not installed

BATCH = 64
LR = 0.01
# name: (in_features, hidden, out_features, largest tinygen/torch ratio we accept)
CASES = {
    "small": (32, 64, 10, 2.0),
    "large": (1024, 1024, 1024, 1.2),
}


def make_problem(in_features, hidden, out_features, seed=0):
    """Weights (PyTorch's default Linear init), inputs and class labels, as float32 NumPy arrays."""
    rng = numpy.random.default_rng(seed)

    def uniform(fan_in, *shape):  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear does
        bound = 1 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(numpy.float32)

    weights = [
        uniform(in_features, hidden, in_features),  # w1: (out, in), as in PyTorch
        uniform(in_features, hidden),  # b1
        uniform(hidden, out_features, hidden),  # w2
        uniform(hidden, out_features),  # b2
    ]
    x = rng.standard_normal((BATCH, in_features)).astype(numpy.float32)
    y = rng.integers(0, out_features, BATCH)
    return weights, x, y


# ----------------------------------------------------------------------------- the three steps
# Each class copies the weights it is given, so the three never share (and never update) one array.


class TinygenMLP:
    def __init__(self, weights, x, y):
        self.params = [tinygen.tensor(w, requires_grad=True) for w in weights]
        self.x = tinygen.tensor(x)
        self.y = tinygen.tensor(y)

    def step(self):
        w1, b1, w2, b2 = self.params
        for p in self.params:
            p.grad = None
        logits = F.linear(F.relu(F.linear(self.x, w1, b1)), w2, b2)
        loss = F.cross_entropy(logits, self.y)
        loss.backward()
        for p in self.params:
            p.data -= LR * p.grad.data
        self.loss = loss
        return loss

    def results(self):
        """The loss and the gradients of the last step."""
        return [self.loss.item(), *[p.grad.numpy() for p in self.params]]


class TorchMLP:
    def __init__(self, weights, x, y):
        self.params = [torch.tensor(w, requires_grad=True) for w in weights]
        self.x = torch.tensor(x)
        self.y = torch.tensor(y)

    def step(self):
        w1, b1, w2, b2 = self.params
        for p in self.params:
            p.grad = None
        logits = torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(self.x, w1, b1)), w2, b2)
        loss = torch.nn.functional.cross_entropy(logits, self.y)
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= LR * p.grad
        self.loss = loss
        return loss

    def results(self):
        return [self.loss.item(), *[p.grad.numpy() for p in self.params]]


class NumpyMLP:
    """The same step in plain NumPy, backward written out by hand."""

    def __init__(self, weights, x, y):
        self.params = [w.copy() for w in weights]
        self.x = x
        self.y = y
        self.rows = numpy.arange(len(y))
        self.grads = None

    def step(self):
        w1, b1, w2, b2 = self.params
        x, y, rows = self.x, self.y, self.rows
        # forward
        hidden = numpy.maximum(x @ w1.T + b1, 0)
        logits = hidden @ w2.T + b2
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_probs[rows, y].mean()
        # backward: d loss / d logits = (softmax - one_hot(y)) / batch
        grad_logits = numpy.exp(log_probs)
        grad_logits[rows, y] -= 1
        grad_logits /= len(y)
        grad_w2 = grad_logits.T @ hidden
        grad_b2 = grad_logits.sum(axis=0)
        grad_hidden = (grad_logits @ w2) * (hidden > 0)
        grad_w1 = grad_hidden.T @ x
        grad_b1 = grad_hidden.sum(axis=0)
        # update
        self.grads = [grad_w1, grad_b1, grad_w2, grad_b2]
        for p, grad in zip(self.params, self.grads, strict=True):
            p -= LR * grad
        self.loss = loss
        return loss

    def results(self):
        return [self.loss, *self.grads]


# ----------------------------------------------------------------------------- check, then time


def run_case(case, repeat):
    in_features, hidden, out_features, target = CASES[case]
    problem = make_problem(in_features, hidden, out_features)
    classes = {"tinygen": TinygenMLP, "torch": TorchMLP, "numpy": NumpyMLP}
    if torch is None:
        del classes["torch"]
    results, steps = harness.from_classes(classes, *problem)
    labels = ["loss", "grad w1", "grad b1", "grad w2", "grad b2"]
    return harness.check_then_time("bench_mlp", case, results, steps, repeat, 1e-4, target, labels)


def main():
    args = harness.argument_parser(__doc__).parse_args()
    with harness.limit_threads(args.threads):
        harness.print_machine()
        print(f"threads: {args.threads}, batch {BATCH}, float32, median of {args.repeat} samples\n")
        rows = [run_case(case, args.repeat) for case in CASES]
        print(harness.describe_other_load("after the run"))
    print()
    harness.print_table(rows)


if __name__ == "__main__":
    main()
