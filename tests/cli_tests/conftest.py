"""A tiny image set for training runs: 8x8 pictures, so a DCGAN step takes milliseconds."""

import numpy as np
import pytest

from tinygen.data import ImageDataset


def tiny_images(n=48, channels=1, size=8, seed=0):
    """Bright squares on a dark ground, each shifted a little: an easy set for a GAN."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, channels, size, size), np.uint8)
    for i in range(n):
        top, left = rng.integers(0, size // 2, 2)
        images[i, :, top:top + size // 2, left:left + size // 2] = 255
    return ImageDataset(images, rng.integers(0, 10, n), name="squares")


@pytest.fixture
def squares():
    return tiny_images()


# Small settings for every run in these tests.
TINY = {"nz": 8, "ngf": 4, "ndf": 4, "batch_size": 8, "sample_every": 0}


@pytest.fixture(autouse=True)
def empty_user_cache(tmp_path, monkeypatch):
    """A user cache of the test's own: no classifier (judge) from this machine leaks in."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"
