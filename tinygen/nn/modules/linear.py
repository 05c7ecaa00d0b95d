"""``Linear`` (``y = x W^T + b``) and ``Identity``, with PyTorch's parameters and initialisation."""

import math

import numpy

import tinygen.nn.functional as F
from tinygen.autograd.tensor import default_float_dtype
from tinygen.nn import init
from tinygen.nn.module import Module, Parameter


class Identity(Module):
    """Returns its input unchanged; any constructor arguments are ignored (as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):  # noqa: A002  (PyTorch's name)
        return input


class Linear(Module):
    """Affine map ``y = x W^T + b``.

    Shape: input ``(*, in_features)``, output ``(*, out_features)``.
    Parameters: ``weight`` ``(out_features, in_features)``, ``bias`` ``(out_features,)``.
    Init (PyTorch's default): ``weight`` from ``kaiming_uniform_(a=sqrt(5))``, which is
    U(-1/sqrt(in_features), 1/sqrt(in_features)), and ``bias`` from that same uniform.
    The values are drawn on the CPU, so a seed gives the same model on every device.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, numpy.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dtype = numpy.dtype(dtype or default_float_dtype)
        self.weight = Parameter(numpy.empty((self.out_features, self.in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(numpy.empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Draw fresh weights with PyTorch's default initialisation (see the class docstring)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):  # noqa: A002  (PyTorch's name)
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )
