"""Dropout: zero each element with probability ``p`` and scale the survivors by ``1 / (1 - p)``.

Built from existing ops: a random 0/1 mask, scaled, multiplied into the input, so its
gradient is the same mask times ``1 / (1 - p)`` and every higher order comes free.
"""

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.random import default_generator


def dropout(input, p=0.5, training=True, generator=None):  # noqa: A002  (PyTorch's names)
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    **Shapes**: any; the output is shaped as ``input``.
    **Forward**: ``y = x * keep / (1 - p)``, ``keep`` drawn 1 with probability ``1 - p`` from
    ``generator`` (the seeded default one when None); the identity when not ``training``.
    **Backward**: ``dx = dy * keep / (1 - p)`` (a product with a constant).
    **Why**: the scaling keeps the expected value unchanged, so evaluation is the identity.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    xp = backend.get_array_module(input.data)
    rng = (generator or default_generator).rng(xp, input.device)
    keep = rng.random(input.shape, dtype=input.dtype) >= p
    return input * Tensor(keep.astype(input.dtype) / input.dtype.type(1 - p))
