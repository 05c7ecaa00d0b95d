"""Weight initialisation, in place, with PyTorch's names, formulas and defaults.

Every function overwrites ``tensor.data`` in place (the tensor keeps its identity and its
array), drawing from the seeded default generator or ``generator``, and returns the tensor.
Fans follow PyTorch: for a weight of shape ``(out, in, *kernel)``
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``.

Samples are drawn in float64 and then cast to the tensor's dtype, so a seed gives the same
values (up to rounding) in every precision.
"""

import math
import warnings

from tinygen import backend
from tinygen.errors import DTypeError
from tinygen.random import default_generator

_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0,
          "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
          "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}  # fmt: skip


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table).

    ``linear``, ``conv*``, ``sigmoid``: 1;  ``tanh``: 5/3;  ``relu``: sqrt(2);  ``selu``: 3/4;
    ``leaky_relu``: ``sqrt(2 / (1 + slope^2))`` with ``slope = param`` (default 0.01).
    """
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"calculate_gain: unsupported nonlinearity {nonlinearity!r}, expected one of "
            f"{sorted([*_GAINS, 'leaky_relu'])}"
        )
    return _GAINS[nonlinearity]


def _calculate_fan_in_and_fan_out(tensor):
    """``(fan_in, fan_out)`` of a weight shaped ``(out, in, *kernel)`` (PyTorch's private helper)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of 2 or more dims, got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fill(tensor, draw, generator):
    """Overwrite ``tensor.data`` with ``draw(rng, shape)`` (float64 samples), cast to its dtype."""
    if tensor.dtype.kind != "f":
        raise DTypeError(f"init: random initialisation needs a floating-point tensor, got {tensor.dtype}")
    xp = backend.get_array_module(tensor.data)
    rng = (generator or default_generator).rng(xp, tensor.device)
    tensor.data[...] = draw(rng, tensor.shape)
    return tensor


def _empty(tensor):
    """True (with PyTorch's warning) for a tensor with no elements, which init leaves alone."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with samples of U(a, b): ``a + (b - a) * u`` with ``u`` uniform in [0, 1)."""
    return _fill(tensor, lambda rng, shape: a + (b - a) * rng.random(shape), generator)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with samples of N(mean, std^2): ``mean + std * z`` with ``z`` standard normal."""
    return _fill(tensor, lambda rng, shape: mean + std * rng.standard_normal(shape), generator)


def constant_(tensor, val):
    """Fill with the value ``val``."""
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    """Fill with 0."""
    return constant_(tensor, 0)


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    """``gain / sqrt(fan)``, the standard deviation He et al. derive for ``mode``'s fan."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-b, b) with ``b = gain * sqrt(3 / fan)`` (He et al., 2015); PyTorch's defaults.

    ``a`` is the leaky_relu negative slope used in the gain; ``Linear`` and ``Conv2d`` use
    ``a = sqrt(5)``, which gives ``b = 1 / sqrt(fan_in)``.
    """
    if _empty(tensor):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2) with ``std = gain / sqrt(fan)``."""
    if _empty(tensor):
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)
