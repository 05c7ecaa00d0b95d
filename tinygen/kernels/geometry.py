"""``pair``: the int-or-pair arguments of convolution and pooling (kernel size, stride, padding, ...).

The kernels and the modules that hold these arguments normalise them once, here, as
PyTorch's ``_pair`` and Chainer's ``_pair`` do.
"""

import numbers

from tinygen.errors import ShapeError


def pair(value, name, op):
    """``value`` as a pair of ints: ``2 -> (2, 2)``, ``(2, 3) -> (2, 3)``; errors name ``op`` and ``name``."""
    both = (value, value) if isinstance(value, numbers.Integral) else value
    is_pair = isinstance(both, (tuple, list)) and len(both) == 2
    if not is_pair or not all(isinstance(v, numbers.Integral) for v in both):
        raise ShapeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return (int(both[0]), int(both[1]))
