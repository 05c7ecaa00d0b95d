"""LSTM forward + backward: tinygen's fused layer against PyTorch's ``nn.LSTM`` and plain NumPy.

One call is a training step's worth of LSTM work: a 1-layer LSTM over a sequence of 28
steps (28 inputs per step, a row-by-row MNIST image), batch 64, float32, from zero initial
state; loss = sum of the output; backward; gradients reset to None first. Cases: hidden
size 128 and 256, and "overhead": 784 steps (an MNIST image pixel by pixel), batch 1, one
input, hidden 4, where the arrays are tiny and the time is the cost per step of the loop
itself (no target).

Columns:

- tinygen: ``LSTM`` from ``tinygen.nn.modules.rnn`` (the fused layer, ``fused=True``).
- torch: ``torch.nn.LSTM`` on the CPU with the same weights and thread count.
- numpy: a naive NumPy LSTM with the backward written by hand, as a learner would write it
  first: both products at every step, separate sigmoid and tanh calls, weight gradients
  summed step by step.

The row ``gemm-only`` times only the matrix products any LSTM step must do, in NumPy:
``x @ W_ih^T`` for all steps, ``h @ W_hh^T`` and ``dgates @ W_hh`` at each step, and the
weight gradients (the input needs none). It is a lower bound for an engine built on NumPy,
shown against PyTorch.

Before timing, tinygen's loss and gradients are checked against PyTorch's and NumPy's.
Target: tinygen at most 1.2x PyTorch.

    python benchmarks/bench_lstm.py --threads 2
    python benchmarks/bench_lstm.py --threads 1
"""

import math

import harness
import numpy

import tinygen
from tinygen.nn.modules.rnn import LSTM

torch = harness.torch  # None when PyTorch is not installed

STEPS, BATCH, INPUTS = 28, 64, 28
# name: (steps, batch, inputs, hidden, largest tinygen/torch ratio we accept)
CASES = {
    "hidden 128": (STEPS, BATCH, INPUTS, 128, 1.2),
    "hidden 256": (STEPS, BATCH, INPUTS, 256, 1.2),
    "overhead": (784, 1, 1, 4, None),
}


def make_problem(steps, batch, inputs, hidden, seed=0):
    """PyTorch-initialised weights ``[w_ih, w_hh, b_ih, b_hh]`` and an input ``(T, N, F)``, float32."""
    rng = numpy.random.default_rng(seed)
    bound = 1 / math.sqrt(hidden)
    shapes = [(4 * hidden, inputs), (4 * hidden, hidden), (4 * hidden,), (4 * hidden,)]
    weights = [rng.uniform(-bound, bound, shape).astype(numpy.float32) for shape in shapes]
    x = rng.standard_normal((steps, batch, inputs)).astype(numpy.float32)
    return weights, x


def _state_dict(weights):
    return dict(zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"], weights, strict=True))


# ----------------------------------------------------------------------------- the steps


class TinygenLSTM:
    def __init__(self, weights, x):
        self.model = LSTM(x.shape[2], weights[1].shape[1])
        self.model.load_state_dict(_state_dict(weights))
        self.x = tinygen.tensor(x)

    def step(self):
        self.model.zero_grad()
        output, _ = self.model(self.x)
        loss = output.sum()
        loss.backward()
        self.loss = loss.item()
        return self.loss

    def results(self):
        """The loss and the gradients of the last step."""
        return [self.loss, *[p.grad.numpy() for p in self.model.parameters()]]


class TorchLSTM:
    def __init__(self, weights, x):
        self.model = torch.nn.LSTM(x.shape[2], weights[1].shape[1])
        self.model.load_state_dict({k: torch.tensor(v) for k, v in _state_dict(weights).items()})
        self.x = torch.tensor(x)

    def step(self):
        self.model.zero_grad(set_to_none=True)
        output, _ = self.model(self.x)
        loss = output.sum()
        loss.backward()
        self.loss = loss.item()
        return self.loss

    def results(self):
        return [self.loss, *[p.grad.numpy() for p in self.model.parameters()]]


def _sigmoid(z):
    return 1 / (1 + numpy.exp(-z))


class NumpyLSTM:
    """The naive version: everything per step, backward by hand."""

    def __init__(self, weights, x):
        self.weights = [w.copy() for w in weights]
        self.x = x
        self.grads = None

    def step(self):
        w_ih, w_hh, b_ih, b_hh = self.weights
        steps, batch, _ = self.x.shape
        hidden = w_hh.shape[1]
        h = numpy.zeros((batch, hidden), numpy.float32)
        c = numpy.zeros((batch, hidden), numpy.float32)
        cache, loss = [], 0.0
        for t in range(steps):
            gates = self.x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
            i, f = _sigmoid(gates[:, :hidden]), _sigmoid(gates[:, hidden : 2 * hidden])
            g, o = numpy.tanh(gates[:, 2 * hidden : 3 * hidden]), _sigmoid(gates[:, 3 * hidden :])
            c_new = f * c + i * g
            tanh_c = numpy.tanh(c_new)
            cache.append((h, c, i, f, g, o, tanh_c))
            h, c = o * tanh_c, c_new
            loss += h.sum()
        grads = [numpy.zeros_like(w) for w in self.weights]
        grad_h = numpy.zeros((batch, hidden), numpy.float32)
        grad_c = numpy.zeros((batch, hidden), numpy.float32)
        for t in reversed(range(steps)):
            h_prev, c_prev, i, f, g, o, tanh_c = cache[t]
            grad_h = grad_h + 1  # d loss / d h_t from the output
            grad_c = grad_c + grad_h * o * (1 - tanh_c**2)
            grad_gates = numpy.concatenate(
                [grad_c * g * i * (1 - i), grad_c * c_prev * f * (1 - f), grad_c * i * (1 - g**2),
                 grad_h * tanh_c * o * (1 - o)], axis=1,
            )  # fmt: skip
            grads[0] += grad_gates.T @ self.x[t]
            grads[1] += grad_gates.T @ h_prev
            grads[2] += grad_gates.sum(0)
            grads[3] += grad_gates.sum(0)
            grad_h, grad_c = grad_gates @ w_hh, grad_c * f
        self.grads = grads
        self.loss = loss
        return loss

    def results(self):
        return [self.loss, *self.grads]


class GemmOnly:
    """Only the matrix products of a forward and backward, on arrays of the right shapes."""

    def __init__(self, weights, x):
        self.w_ih, self.w_hh = weights[0], weights[1]
        self.steps, self.batch, inputs = x.shape
        hidden = self.w_hh.shape[1]
        self.x = x.reshape(self.steps * self.batch, inputs)
        self.h = numpy.zeros((self.batch, hidden), numpy.float32)
        self.grad_gates = numpy.ones((self.steps * self.batch, 4 * hidden), numpy.float32)
        self.hs = numpy.ones((self.steps * self.batch, hidden), numpy.float32)
        self.w_hh_t = numpy.ascontiguousarray(self.w_hh.T)

    def step(self):
        self.x @ self.w_ih.T
        for _ in range(self.steps):
            self.h @ self.w_hh_t
        for t in range(self.steps):
            self.grad_gates[t * self.batch : (t + 1) * self.batch] @ self.w_hh
        self.grad_gates.T @ self.hs
        self.grad_gates.T @ self.x


# ----------------------------------------------------------------------------- check, then time


def run_case(case, repeat):
    steps, batch, inputs, hidden, target = CASES[case]
    problem = make_problem(steps, batch, inputs, hidden)
    classes = {"tinygen": TinygenLSTM, "torch": TorchLSTM, "numpy": NumpyLSTM}
    if torch is None:
        del classes["torch"]
    results, calls = harness.from_classes(classes, *problem)
    calls["gemm"] = GemmOnly(*problem).step
    labels = ["loss", "grad weight_ih", "grad weight_hh", "grad bias_ih", "grad bias_hh"]
    row = harness.check_then_time("bench_lstm", case, results, calls, repeat, 1e-4, target, labels)
    if target is None:
        timings = {"tinygen": row.tinygen, "torch": row.torch, "numpy": row.numpy, **row.extra}
        per_step = ", ".join(
            f"{name} {t.median / steps * 1e6:.1f}" for name, t in timings.items() if t is not None
        )
        print(f"{case}: microseconds per step (forward + backward): {per_step}")
    return [row, harness.Row(f"{case} gemm-only", row.extra["gemm"], row.torch)]


def main():
    args = harness.argument_parser(__doc__).parse_args()
    with harness.limit_threads(args.threads):
        harness.print_machine()
        print(
            f"threads: {args.threads}, float32, median of {args.repeat} samples; cases as "
            f"(steps, batch, inputs, hidden): {', '.join(f'{k} {v[:4]}' for k, v in CASES.items())}\n"
        )
        rows = [row for case in CASES for row in run_case(case, args.repeat)]
        print(harness.describe_other_load("after the run"))
    print()
    harness.print_table(rows)


if __name__ == "__main__":
    main()
