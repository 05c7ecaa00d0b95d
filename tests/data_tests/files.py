"""Writers for tiny data files in the real formats (IDX, CIFAR-10 batches and archive)."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile

import numpy as np

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array):
    """``array`` as the bytes of an (uncompressed) IDX file."""
    array = np.asarray(array)
    kind = array.dtype.str[1:]
    header = bytes([0, 0, IDX_CODES[kind], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_file(path, data, compress=False):
    """Write ``data`` to ``path`` (gzipped when ``compress``), creating folders; returns the path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
    return path


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def tiny_idx_split(n=6, seed=0):
    """Random ``(images uint8 (n, 28, 28), labels uint8 (n,))`` for an MNIST-like split."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_idx_split(folder, split="train", seed=0, compress=True, n=6):
    """Write one split of an MNIST-like set into ``folder``.

    Returns ``(images, labels, digests)``, digests mapping each file name to the SHA-256 of
    its IDX bytes (what ``DATASETS[...].sha256`` holds).
    """
    prefix = "train" if split == "train" else "t10k"
    images, labels = tiny_idx_split(n, seed)
    digests = {}
    for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        write_file(os.path.join(folder, name + (".gz" if compress else "")), data, compress)
        digests[name] = sha256(data)
    return images, labels, digests


def cifar_batch_bytes(images, labels, protocol=2):
    """A CIFAR-10 batch pickle, laid out as the real ones: bytes keys, data (n, 3072), labels a list."""
    n = len(images)
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": [int(label) for label in labels],
        b"data": np.ascontiguousarray(images).reshape(n, 3072),
        b"filenames": [b"image_%d.png" % k for k in range(n)],
    }
    return pickle.dumps(batch, protocol=protocol)


CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def tiny_cifar_batches(n=2, seed=0):
    """``{batch name: (images uint8 (n, 3, 32, 32), labels int64 (n,))}`` for all six batches."""
    rng = np.random.default_rng(seed)
    return {
        name: (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n))
        for name in CIFAR_BATCHES
    }


def write_cifar_archive(path, batches):
    """Write a ``cifar-10-python.tar.gz`` holding ``batches``; returns its SHA-256.

    The members go in a scrambled order, as in the real archive.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name in sorted(batches, reverse=True):
            data = cifar_batch_bytes(*batches[name])
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with open(path, "rb") as f:
        return sha256(f.read())
