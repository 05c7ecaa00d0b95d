"""BatchNorm2d in training mode: forward and backward of one batch.

One step is ``y = bn(x)`` with batch statistics (and the running statistics updated),
then ``y.backward(dy)`` for a fixed ``dy``, giving ``dx``, ``dweight`` and ``dbias``; the
gradients are reset to None first. float32, input (64, 128, 14, 14): a DCGAN-sized
feature map of 1.6 M values (6.4 MB).

Three implementations run in one process from the same input: tinygen
(``tinygen.nn.modules.normalization.BatchNorm2d``), PyTorch on the CPU (if installed) and
plain NumPy written the obvious way (``mean``/``var`` over axes (0, 2, 3) and the closed-form
backward), the baseline an engine on NumPy should beat. Before timing, tinygen's output
and gradients are checked against the other two, so that nothing wrong is ever timed.

Target: tinygen at most 1.2x PyTorch.

    python benchmarks/bench_batch_norm.py --threads 2
"""

import harness
import numpy

import tinygen
from tinygen.nn.modules.normalization import BatchNorm2d

torch = harness.torch  # None when PyTorch is not installed

SHAPE = (64, 128, 14, 14)
EPS = 1e-5
TARGET = 1.2


def make_problem(seed=0):
    rng = numpy.random.default_rng(seed)
    x = (rng.standard_normal(SHAPE) * 2 + 0.5).astype(numpy.float32)
    grad_out = rng.standard_normal(SHAPE).astype(numpy.float32)
    return x, grad_out


class TinygenBatchNorm:
    def __init__(self, x, grad_out):
        self.bn = BatchNorm2d(SHAPE[1])
        self.x = tinygen.tensor(x, requires_grad=True)
        self.grad_out = tinygen.tensor(grad_out)
        self.y = None

    def step(self):
        self.x.grad = self.bn.weight.grad = self.bn.bias.grad = None
        self.y = self.bn(self.x)
        self.y.backward(self.grad_out)

    def results(self):
        return [self.y.numpy(), self.x.grad.numpy(), self.bn.weight.grad.numpy(), self.bn.bias.grad.numpy()]


class TorchBatchNorm:
    def __init__(self, x, grad_out):
        self.bn = torch.nn.BatchNorm2d(SHAPE[1])
        self.x = torch.tensor(x, requires_grad=True)
        self.grad_out = torch.tensor(grad_out)
        self.y = None

    def step(self):
        self.x.grad = self.bn.weight.grad = self.bn.bias.grad = None
        self.y = self.bn(self.x)
        self.y.backward(self.grad_out)

    def results(self):
        grads = [self.x.grad, self.bn.weight.grad, self.bn.bias.grad]
        return [self.y.detach().numpy()] + [g.numpy() for g in grads]


class NumpyBatchNorm:
    """The same step in plain NumPy, written the obvious way."""

    def __init__(self, x, grad_out):
        channels = SHAPE[1]
        self.x, self.grad_out = x, grad_out
        self.weight = numpy.ones(channels, numpy.float32)
        self.bias = numpy.zeros(channels, numpy.float32)
        self.running_mean = numpy.zeros(channels, numpy.float32)
        self.running_var = numpy.ones(channels, numpy.float32)
        self.out = None

    def step(self, momentum=0.1):
        x, dy, axes = self.x, self.grad_out, (0, 2, 3)
        count = x.size // x.shape[1]
        # forward
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        inv_std = 1 / numpy.sqrt(var + EPS)
        x_hat = (x - mean) * inv_std
        y = x_hat * self.weight[:, None, None] + self.bias[:, None, None]
        self.running_mean = (1 - momentum) * self.running_mean + momentum * mean.ravel()
        self.running_var = (1 - momentum) * self.running_var + momentum * var.ravel() * count / (count - 1)
        # backward
        grad_bias = dy.sum(axis=axes)
        grad_weight = (dy * x_hat).sum(axis=axes)
        scale = (self.weight[:, None, None] * inv_std) / count
        grad_x = scale * (count * dy - grad_bias[:, None, None] - x_hat * grad_weight[:, None, None])
        self.out = [y, grad_x, grad_weight, grad_bias]

    def results(self):
        return self.out


def main():
    args = harness.argument_parser(__doc__).parse_args()
    problem = make_problem()
    with harness.limit_threads(args.threads):
        harness.print_machine()
        print(f"threads: {args.threads}, input {SHAPE} float32, median of {args.repeat} samples\n")
        classes = {"tinygen": TinygenBatchNorm, "torch": TorchBatchNorm, "numpy": NumpyBatchNorm}
        if torch is None:
            del classes["torch"]
        results, steps = harness.from_classes(classes, *problem)
        labels = ["y", "dx", "dweight", "dbias"]
        row = harness.check_then_time(
            "bench_batch_norm", "bn2d fwd+bwd", results, steps, args.repeat, 1e-3, TARGET, labels
        )
        print(harness.describe_other_load("after the run"))
    print()
    harness.print_table([row])


if __name__ == "__main__":
    main()
