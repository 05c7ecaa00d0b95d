"""``Flatten`` and ``Unflatten``: reshape between a feature vector and a feature map."""

import math

from tinygen.errors import ShapeError
from tinygen.nn.module import Module


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one.

    Shape: ``(N, C, H, W)`` becomes ``(N, C*H*W)`` with the defaults ``start_dim=1, end_dim=-1``.
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):  # noqa: A002  (PyTorch's name)
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``; one entry may be -1 (inferred).

    Shape: ``(N, C*H*W)`` becomes ``(N, C, H, W)`` with ``dim=1, unflattened_size=(C, H, W)``.
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(s, int) for s in unflattened_size
        ):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input):  # noqa: A002
        dim = self.dim + input.ndim if self.dim < 0 else self.dim
        if not 0 <= dim < input.ndim:
            raise ShapeError(f"Unflatten: dim {self.dim} is out of range for a {input.ndim}-d input")
        known = math.prod(s for s in self.unflattened_size if s != -1)
        if -1 not in self.unflattened_size and known != input.shape[dim]:
            raise ShapeError(
                f"Unflatten: unflattened_size {self.unflattened_size} has {known} elements, "
                f"expected input.shape[{self.dim}] = {input.shape[dim]}"
            )
        return input.reshape(*input.shape[:dim], *self.unflattened_size, *input.shape[dim + 1 :])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
