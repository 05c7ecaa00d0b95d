"""Reverse-mode automatic differentiation: ``Function``, ``grad``, grad-mode switches."""

from tinygen.autograd import tensor_methods
from tinygen.autograd.function import Context, Function, grad  # noqa: F401
from tinygen.autograd.grad_mode import (  # noqa: F401
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tinygen.autograd.tensor import Tensor  # noqa: F401

tensor_methods.bind(Tensor)  # operators and methods, once the ops they call can be imported
