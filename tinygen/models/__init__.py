"""Ready-made generative models built from ``tinygen.nn``: ``dcgan`` (Radford et al., 2016)."""

from tinygen.models import dcgan  # noqa: F401
