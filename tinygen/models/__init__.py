"""Ready-made generative models built from ``tinygen.nn``, each with a ``Recipe`` for the training run.

- ``dcgan``: DCGAN (Radford et al., 2016); ``cgan``: its class-conditional twin with a projection
  discriminator; ``wgan_gp``: WGAN-GP (Gulrajani et al., 2017), a true second-order penalty.
- ``vae``: the VAE (Kingma & Welling, 2014) and its importance-weighted bound (Burda et al., 2016).
- ``pixelrnn``: PixelRNN (van den Oord et al., 2016), Row LSTM and Diagonal BiLSTM, and a row-by-row
  LSTM baseline: exact likelihoods, pixel-by-pixel sampling.
- ``classifier``: the conv classifier whose features score the GANs (``tinygen.metrics``).

``registry.MODELS`` lists the recipes by name; ``recipe`` defines what a recipe provides.
"""

from tinygen.models import cgan, classifier, dcgan, gan, pixelrnn, vae, wgan_gp  # noqa: F401
from tinygen.models.registry import MODELS, get_model  # noqa: F401
