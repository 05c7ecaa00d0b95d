"""Data sets, batches and image grids: everything between files on disk and a training loop.

::

    from tinygen.data import load_dataset, DataLoader, save_image

    train = load_dataset("fashion-mnist", "train")     # ImageDataset, uint8 (60000, 1, 28, 28)
    loader = DataLoader(train, batch_size=128, shuffle=True, value_range=(-1, 1))
    for images, labels in loader:                       # float32 (128, 1, 28, 28), int64 (128,)
        ...
    save_image(fake, "samples/epoch_01.png")            # an 8-wide grid as a PNG

- :func:`read_idx`, :func:`read_cifar_batch`: the MNIST and CIFAR-10 file formats (``formats.py``).
- :class:`ImageDataset`: uint8 images and int64 labels in memory (``dataset.py``).
- :data:`DATASETS`, :func:`load_dataset`: where each set comes from, its checksums, and the
  search order on disk (``registry.py``, ``load.py``, ``download.py``).
- :class:`DataLoader`: shuffled float batches on any device (``loader.py``).
- :func:`make_grid`, :func:`save_image`: pictures of a batch (``images.py``).
- :func:`ring_of_gaussians`, :func:`mode_coverage`: the toy 2-D GAN data and its score (``toy.py``).

See docs/data.md.
"""

from tinygen.data.dataset import ImageDataset
from tinygen.data.formats import read_cifar_batch, read_idx
from tinygen.data.images import make_grid, save_image
from tinygen.data.load import load_dataset, search_dirs
from tinygen.data.loader import DataLoader
from tinygen.data.registry import DATASETS, DatasetSpec
from tinygen.data.toy import mode_coverage, ring_of_gaussians
