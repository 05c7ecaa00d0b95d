"""``ImageDataset``: a labelled set of uint8 images held in memory as NumPy arrays."""

import numbers

import numpy

from tinygen.errors import DTypeError, ShapeError


class ImageDataset:
    """Images and their class labels, kept as uint8 so 60000 28x28 images take 47 MB.

    **Shapes**: ``images`` uint8 ``(N, C, H, W)`` (a ``(N, H, W)`` array gets ``C = 1``),
    ``labels`` int64 ``(N,)`` with values in ``0 .. len(classes) - 1``.

    ``ds[i]`` is ``(image, label)``: a uint8 ``(C, H, W)`` array and an int. ``ds[2:10]``,
    ``ds[index_array]`` or ``ds[bool_mask]`` is a new ImageDataset with those examples
    (same name, split and classes). :class:`DataLoader` turns the pixels into float
    tensors in batches. ``classes`` defaults to ``("0", "1", ...)``, one per label value.
    """

    def __init__(self, images, labels, classes=None, name="custom", split="train"):
        if not isinstance(images, numpy.ndarray) or images.dtype != numpy.uint8:
            seen = f"{images.dtype} array" if isinstance(images, numpy.ndarray) else type(images).__name__
            raise DTypeError(
                f"ImageDataset: images is a {seen}, expected a numpy uint8 array (N, C, H, W); "
                "convert floats in [0, 1] with (x * 255).round().astype(numpy.uint8)"
            )
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise ShapeError(
                f"ImageDataset: images has shape {images.shape}, expected (N, C, H, W) or (N, H, W)"
            )
        labels = numpy.asarray(labels)
        if labels.size and labels.dtype.kind not in "iu":
            raise DTypeError(f"ImageDataset: labels has dtype {labels.dtype}, expected integers")
        if labels.shape != (len(images),):
            raise ShapeError(
                f"ImageDataset: labels has shape {labels.shape}, expected ({len(images)},), one per image"
            )
        labels = labels.astype(numpy.int64, copy=False)
        if labels.size and labels.min() < 0:
            raise ValueError(f"ImageDataset: labels has a negative value {labels.min()}, expected 0 or more")
        if classes is None:
            classes = [str(k) for k in range(int(labels.max()) + 1 if labels.size else 0)]
        classes = tuple(classes)
        if not all(isinstance(c, str) for c in classes):
            raise TypeError(f"ImageDataset: classes must be strings, got {classes!r}")
        if labels.size and labels.max() >= len(classes):
            raise ValueError(
                f"ImageDataset: labels go up to {labels.max()}, but there are only {len(classes)} classes"
            )
        self.images = images
        self.labels = labels
        self.classes = classes
        self.name = name
        self.split = split

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral) and not isinstance(index, bool):
            return self.images[index], int(self.labels[index])
        return ImageDataset(self.images[index], self.labels[index], self.classes, self.name, self.split)

    def __repr__(self):
        return f"ImageDataset(name={self.name!r}, split={self.split!r}, images={self.images.shape})"
