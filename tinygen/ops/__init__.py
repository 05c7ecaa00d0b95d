"""The small differentiable op set everything else is built from."""

from tinygen.ops import activation, dropout, elementwise, linalg, loss, reduce, shape  # noqa: F401
