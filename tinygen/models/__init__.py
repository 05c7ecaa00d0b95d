"""Ready-made generative models built from ``tinygen.nn``, each with a ``Recipe`` for the training run.

- ``dcgan``: DCGAN (Radford et al., 2016).
- ``vae``: the VAE (Kingma & Welling, 2014) and its importance-weighted bound (Burda et al., 2016).

``registry.MODELS`` lists the recipes by name; ``recipe`` defines what a recipe provides.
"""

from tinygen.models import dcgan, vae  # noqa: F401
from tinygen.models.registry import MODELS, get_model  # noqa: F401
