"""``MODELS``: every model ``tinygen train`` knows, by name (as ``data/registry.py``'s ``DATASETS``)."""

from tinygen.models.cgan import CGAN
from tinygen.models.classifier import Classifier
from tinygen.models.dcgan import DCGAN
from tinygen.models.pixelrnn import PixelRNNRecipe
from tinygen.models.vae import VAERecipe
from tinygen.models.wgan_gp import WGANGP

MODELS = {recipe.name: recipe for recipe in (DCGAN, CGAN, WGANGP, VAERecipe, Classifier, PixelRNNRecipe)}


def get_model(name, caller="Run"):
    """The ``Recipe`` class registered as ``name``; ValueError listing the choices otherwise."""
    if name not in MODELS:
        raise ValueError(f"{caller}: model is {name!r}, expected one of {', '.join(MODELS)}")
    return MODELS[name]
