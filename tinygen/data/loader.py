"""``DataLoader``: batches of float image tensors from a dataset of uint8 images.

Each batch is gathered as uint8 (a quarter of the bytes of float32), moved to ``device``
as uint8, and only there turned into ``dtype``, so no float64 copy of a batch is ever made.
"""

import math
import numbers

import numpy

import tinygen.random
from tinygen import backend
from tinygen.autograd.tensor import float32, float64
from tinygen.creation import from_numpy, rand
from tinygen.errors import DTypeError, ShapeError


class DataLoader:
    """Iterate over ``dataset`` in batches of ``(images, labels)`` tensors (PyTorch's ``DataLoader``).

    **Shapes**: images ``(B, C, H, W)`` of ``dtype`` on ``device``; labels int64 ``(B,)``.
    B is ``batch_size``, except a smaller last batch unless ``drop_last``.
    ``len(loader)`` is the number of batches: ``ceil(N / B)``, or ``floor(N / B)`` with ``drop_last``.

    **Pixels**: with ``p = pixel / 255`` in [0, 1], a batch holds ``lo + (hi - lo) * v``, where
    ``(lo, hi) = value_range`` and ``v = p``, or with ``binarize=True`` ``v = [u < p]`` for
    ``u`` uniform in [0, 1), drawn afresh for every batch (dynamic binarisation: pixel p is 1
    with probability p). ``value_range=(-1, 1)`` matches a tanh generator; ``(0, 1)`` with
    ``binarize=True`` gives the 0/1 images a Bernoulli decoder models.

    **Order**: with ``shuffle``, every ``iter(loader)`` draws one permutation of 0..N-1 from
    ``generator`` (``None`` means ``tinygen.random.default_generator``, looked up at that
    time, so ``tinygen.manual_seed`` fixes the order); without it the order is 0..N-1. The
    same seed gives the same batches, bit for bit.

    ``dataset`` is an :class:`ImageDataset`, or anything with a uint8 ``images`` array
    ``(N, C, H, W)`` and an integer ``labels`` array ``(N,)``.
    """

    def __init__(
        self,
        dataset,
        batch_size=1,
        shuffle=False,
        drop_last=False,
        generator=None,
        value_range=(0.0, 1.0),
        binarize=False,
        device="cpu",
        dtype=float32,
    ):
        images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
        if not isinstance(images, numpy.ndarray) or not isinstance(labels, numpy.ndarray):
            raise TypeError(
                f"DataLoader: dataset is a {type(dataset).__name__}, expected an ImageDataset "
                "(or an object with numpy arrays .images and .labels)"
            )
        if images.dtype != numpy.uint8 or images.ndim != 4:
            raise DTypeError(
                f"DataLoader: dataset.images is {images.dtype} {images.shape}, expected uint8 (N, C, H, W)"
            )
        if labels.shape != (len(images),) or (labels.size and labels.dtype.kind not in "iu"):
            raise ShapeError(
                f"DataLoader: dataset.labels is {labels.dtype} {labels.shape}, "
                f"expected integers of shape ({len(images)},)"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size is {batch_size!r}, expected a positive int")
        for arg, value in (("shuffle", shuffle), ("drop_last", drop_last), ("binarize", binarize)):
            if not isinstance(value, bool):
                raise TypeError(f"DataLoader: {arg} is {value!r}, expected True or False")
        if generator is not None and not isinstance(generator, tinygen.random.Generator):
            raise TypeError(
                f"DataLoader: generator is a {type(generator).__name__}, expected a tinygen.Generator or None"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.value_range = _value_range(value_range)
        self.binarize = binarize
        self.device = backend.device(device)
        self.dtype = numpy.dtype(dtype)
        if self.dtype.kind != "f":
            raise DTypeError(f"DataLoader: dtype is {self.dtype}, expected a floating dtype such as float32")

    def __len__(self):
        n = len(self.dataset.images)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        generator = self.generator if self.generator is not None else tinygen.random.default_generator
        n = len(self.dataset.images)
        order = generator.rng(numpy).permutation(n) if self.shuffle else numpy.arange(n)
        for k in range(len(self)):
            index = order[k * self.batch_size : (k + 1) * self.batch_size]
            yield self._batch(index, generator)

    def _batch(self, index, generator):
        """The ``(images, labels)`` tensors for the examples at ``index`` (see the class docstring)."""
        pixels = from_numpy(self.dataset.images[index]).to(self.device)  # moved as uint8
        images = pixels.to(self.dtype) / 255
        if self.binarize:
            uniform_dtype = float64 if self.dtype == float64 else float32  # NumPy draws no float16
            uniform = rand(images.shape, generator=generator, dtype=uniform_dtype, device=self.device)
            images = (uniform < images).to(self.dtype)
        low, high = self.value_range
        if (low, high) != (0.0, 1.0):
            images = images * (high - low) + low
        labels = from_numpy(self.dataset.labels[index].astype(numpy.int64)).to(self.device)
        return images, labels

    def __repr__(self):
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"value_range={self.value_range}, binarize={self.binarize}, device='{self.device}')"
        )


def _value_range(value_range):
    """``value_range`` as a pair of floats ``lo < hi``, or a ValueError saying what was wrong."""
    try:
        low, high = value_range
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(
            f"DataLoader: value_range is {value_range!r}, expected two numbers (lo, hi)"
        ) from None
    if not low < high:
        raise ValueError(f"DataLoader: value_range is {value_range!r}, expected lo < hi")
    return low, high
