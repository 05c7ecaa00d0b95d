"""``make_grid`` and ``save_image``: tile a batch of images into one picture (torchvision's names)."""

import math
import os
import uuid

import numpy

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.errors import ShapeError


def _as_numpy(images, caller):
    """``images`` (Tensor, NumPy or CuPy array) as a NumPy float32 array of shape (N, C, H, W)."""
    if isinstance(images, Tensor):
        images = images.numpy()
    elif not isinstance(images, backend.ARRAY_TYPES):
        raise TypeError(f"{caller}: images is a {type(images).__name__}, expected a Tensor or an array")
    images = backend.to_device(images, "cpu")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ShapeError(
            f"{caller}: images has shape {images.shape}, expected (N, C, H, W) with C = 1 or 3, or (N, H, W)"
        )
    if images.shape[0] == 0:
        raise ShapeError(f"{caller}: images has shape {images.shape}, expected at least one image")
    return images.astype(numpy.float32, copy=False)


def make_grid(images, nrow=8, padding=2, value_range=(-1.0, 1.0), pad_value=1.0):
    """Tile a batch of images into one image, as torchvision's ``make_grid``.

    **Shapes**: images ``(N, C, H, W)`` (C = 1 or 3) or ``(N, H, W)``, a Tensor on any device
    or an array. Returns a NumPy float32 array ``(C, rows*(H+padding)+padding,
    cols*(W+padding)+padding)`` with ``cols = min(nrow, N)`` and ``rows = ceil(N / cols)``;
    image k sits at row ``k // cols``, column ``k % cols``.

    **Values**: ``out = clip((x - lo) / (hi - lo), 0, 1)`` for ``(lo, hi) = value_range``; the
    default (-1, 1) fits a tanh generator, use (0, 1) for a sigmoid one. The padding and any
    empty cells are ``pad_value``, on the output's [0, 1] scale (1.0 is white).
    """
    images = _as_numpy(images, "make_grid")
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"make_grid: nrow is {nrow!r}, expected a positive int")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"make_grid: padding is {padding!r}, expected an int >= 0")
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(f"make_grid: value_range is {value_range!r}, expected lo < hi")
    n, channels, height, width = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    scaled = numpy.clip((images - low) / (high - low), 0.0, 1.0)
    # Give every cell its top and left padding, fill the empty cells, then lay the cells out.
    cells = numpy.full((rows * cols, channels, height + padding, width + padding), pad_value, numpy.float32)
    cells[:n, :, padding:, padding:] = scaled
    cell_h, cell_w = height + padding, width + padding
    grid = cells.reshape(rows, cols, channels, cell_h, cell_w).transpose(2, 0, 3, 1, 4)
    grid = grid.reshape(channels, rows * cell_h, cols * cell_w)
    # ... and the bottom and right padding of the whole grid.
    out = numpy.full((channels, grid.shape[1] + padding, grid.shape[2] + padding), pad_value, numpy.float32)
    out[:, : grid.shape[1], : grid.shape[2]] = grid
    return out


def save_image(images, path, nrow=8, padding=2, value_range=(-1.0, 1.0)):
    """Write a grid of ``images`` (see :func:`make_grid`) to ``path`` as a PNG; returns ``path`` as given.

    One-channel images are saved in grey (0 black, 1 white), three-channel ones as RGB.
    The parent folder is created if missing. The PNG is written to a temporary file in
    the same folder and renamed over ``path``, so ``path`` never holds half an image.
    """
    import matplotlib.image  # imported here: matplotlib is slow to import and only needed now

    grid = make_grid(images, nrow=nrow, padding=padding, value_range=value_range)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    pixels = numpy.round(grid * 255).astype(numpy.uint8).transpose(1, 2, 0)  # (H, W, C) bytes
    if pixels.shape[2] == 1:
        pixels = numpy.repeat(pixels, 3, axis=2)  # grey written as RGB: exact, no colormap lookup
    try:
        matplotlib.image.imsave(tmp, pixels, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
