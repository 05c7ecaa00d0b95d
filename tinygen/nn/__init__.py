"""Neural-network building blocks: ``Module``, ``Parameter``, layers, ``init``, ``functional``."""

from tinygen.nn import functional, init  # noqa: F401
from tinygen.nn.module import Module, Parameter  # noqa: F401
