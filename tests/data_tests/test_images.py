"""make_grid and save_image: grid layout and value mapping, PNGs that read back, atomic writes."""

import os

import matplotlib.image
import numpy as np
import pytest

import tinygen
from tinygen.data import make_grid, save_image
from tinygen.errors import ShapeError


def naive_grid(images, nrow, padding, value_range, pad_value):
    """The grid built one image at a time, as a reference."""
    n, channels, height, width = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    low, high = value_range
    out_h, out_w = rows * (height + padding) + padding, cols * (width + padding) + padding
    out = np.full((channels, out_h, out_w), pad_value)
    for k in range(n):
        top = (k // cols) * (height + padding) + padding
        left = (k % cols) * (width + padding) + padding
        out[:, top : top + height, left : left + width] = np.clip((images[k] - low) / (high - low), 0, 1)
    return out


@pytest.mark.parametrize(
    "n, channels, nrow, padding", [(10, 1, 4, 2), (3, 3, 8, 1), (8, 1, 8, 0), (1, 3, 8, 2), (7, 1, 3, 3)]
)
def test_make_grid_matches_naive_layout(n, channels, nrow, padding):
    rng = np.random.default_rng(n)
    images = rng.uniform(-1.5, 1.5, (n, channels, 5, 6)).astype(np.float32)  # some values outside (-1, 1)
    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=0.25)
    cols = min(nrow, n)
    rows = -(-n // cols)
    assert grid.shape == (channels, rows * (5 + padding) + padding, cols * (6 + padding) + padding)
    assert grid.dtype == np.float32
    np.testing.assert_allclose(grid, naive_grid(images, nrow, padding, (-1, 1), 0.25), atol=1e-6)


def test_make_grid_value_mapping_and_inputs():
    values = np.array([-1.0, 0.0, 1.0, 3.0, -2.0], np.float32).reshape(5, 1, 1)  # (N, H, W)
    grid = make_grid(values, nrow=5, padding=0)
    assert grid.ravel().tolist() == [0.0, 0.5, 1.0, 1.0, 0.0]
    grid = make_grid(tinygen.tensor(values * 0.5 + 0.5), nrow=5, padding=0, value_range=(0, 1))
    assert grid.ravel().tolist() == [0.0, 0.5, 1.0, 1.0, 0.0]
    grid = make_grid(np.zeros((2, 1, 2, 2), np.uint8), value_range=(0, 255), padding=1)
    assert grid.shape == (1, 4, 7) and grid[0, 0, 0] == 1.0 and grid[0, 1, 1] == 0.0


@pytest.mark.parametrize(
    "images, kwargs, error, message",
    [
        (np.zeros((2, 2, 4, 4)), {}, ShapeError, r"\(2, 2, 4, 4\), expected \(N, C, H, W\) with C = 1 or 3"),
        (np.zeros((4, 4)), {}, ShapeError, "expected"),
        (np.zeros((0, 1, 4, 4)), {}, ShapeError, "at least one image"),
        ([[1.0]], {}, TypeError, "images is a list"),
        (np.zeros((2, 1, 4, 4)), {"nrow": 0}, ValueError, "nrow is 0"),
        (np.zeros((2, 1, 4, 4)), {"padding": -1}, ValueError, "padding is -1"),
        (np.zeros((2, 1, 4, 4)), {"value_range": (1, 1)}, ValueError, "expected lo < hi"),
    ],
)
def test_make_grid_bad_arguments(images, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_grid(images, **kwargs)


@pytest.mark.parametrize("channels", [1, 3])
def test_save_image_writes_a_png_that_reads_back(tmp_path, channels):
    rng = np.random.default_rng(0)
    images = tinygen.tensor(rng.uniform(-1, 1, (5, channels, 6, 6)).astype(np.float32))
    path = tmp_path / "new" / "folder" / "grid.png"
    assert save_image(images, path, nrow=3) == path
    assert os.listdir(path.parent) == ["grid.png"]  # no temporary file left behind
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    grid = make_grid(images, nrow=3)
    assert pixels.shape[:2] == grid.shape[1:]
    expected = np.repeat(grid, 3, axis=0) if channels == 1 else grid
    np.testing.assert_allclose(pixels[..., :3], expected.transpose(1, 2, 0), atol=0.5 / 255 + 1e-6)


def test_save_image_replaces_an_existing_file(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    save_image(np.ones((1, 1, 4, 4), np.float32), str(path))
    assert matplotlib.image.imread(path)[..., :3].min() == 1.0
    assert os.listdir(tmp_path) == ["grid.png"]
