"""Activation layers: each holds its arguments and calls ``tinygen.nn.functional``.

``inplace`` is accepted for PyTorch compatibility (DCGAN code writes ``nn.ReLU(True)``)
and shown in the repr, but the result is always a new tensor: the values are the same.
"""

import warnings

import tinygen.nn.functional as F
from tinygen.nn.module import Module


class ReLU(Module):
    """``y = max(x, 0)``, elementwise."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):  # noqa: A002  (PyTorch's name)
        return F.relu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``y = x if x > 0 else negative_slope * x``, elementwise."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):  # noqa: A002
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``, elementwise."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):  # noqa: A002
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    """``y = log(1 + exp(beta * x)) / beta``, and ``y = x`` where ``beta * x > threshold``."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):  # noqa: A002
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))``, elementwise."""

    def forward(self, input):  # noqa: A002
        return F.sigmoid(input)


class Tanh(Module):
    """``y = tanh(x)``, elementwise."""

    def forward(self, input):  # noqa: A002
        return F.tanh(input)


def _softmax_dim(name, dim, ndim):
    """``dim``, or PyTorch's legacy choice (0 for 0-, 1- and 3-d input, else 1) with its warning."""
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
        "as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """``y[..., i, ...] = exp(x_i) / sum_j exp(x_j)`` along ``dim``; the outputs sum to 1 there."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.softmax(input, _softmax_dim("softmax", self.dim, input.ndim))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``y = x - logsumexp(x)`` along ``dim`` (the log of ``Softmax``, computed stably)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.log_softmax(input, _softmax_dim("log_softmax", self.dim, input.ndim))

    def extra_repr(self):
        return f"dim={self.dim}"
