"""Neural-network building blocks. ``tinygen.nn.functional`` holds the functional forms."""

from tinygen.nn import functional  # noqa: F401
