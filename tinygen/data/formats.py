"""Readers for the two file formats the built-in data sets come in: IDX and CIFAR-10 batches.

**IDX** (MNIST, Fashion-MNIST) is a tiny binary format: a 4-byte magic number, then the
dimensions, then the values in row-major (C) order::

    bytes 0-1   0x00 0x00
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     ndim, the number of dimensions
    then        ndim big-endian uint32 sizes, then prod(sizes) big-endian values

The files are usually gzipped; :func:`read_idx` looks at the first two bytes (``1f 8b``)
to tell, not at the file name.

**CIFAR-10 python batches** are Python 2 pickles of a dict ``{b"data": uint8 array
(n, 3072), b"labels": list of n ints, b"batch_label": bytes, b"filenames": list of
bytes}``. Each row of ``data`` holds the 1024 red values of a 32x32 image (row by row),
then the 1024 green, then the 1024 blue, so ``data.reshape(n, 3, 32, 32)`` is NCHW.

Unpickling can run any code a file names, so :func:`read_cifar_batch` uses an unpickler
that resolves only the few globals an array needs (``numpy.ndarray``, ``numpy.dtype``,
the array rebuild function and ``_codecs.encode`` for bytes in protocol 0-2 pickles) and
refuses every other one before anything runs.
"""

import gzip
import math
import os
import pickle
import struct
import zlib

import numpy

from tinygen.errors import DataFormatError

try:  # NumPy 2 renamed numpy.core to numpy._core; pickles name whichever wrote them
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

# ----------------------------------------------------------------------------- IDX

IDX_DTYPES = {
    0x08: numpy.dtype("u1"),
    0x09: numpy.dtype("i1"),
    0x0B: numpy.dtype(">i2"),
    0x0C: numpy.dtype(">i4"),
    0x0D: numpy.dtype(">f4"),
    0x0E: numpy.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def gunzip_if_needed(raw, source):
    """``raw`` decompressed if it starts with the gzip magic bytes, else ``raw`` itself.

    ``source`` names the file in errors: a truncated or corrupted stream is a DataFormatError.
    """
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataFormatError(
            f"{source}: the gzip stream is truncated or corrupted ({type(err).__name__}: {err}); "
            "expected a complete gzip file"
        ) from None


def parse_idx(data, source):
    """The array held by the (already decompressed) IDX bytes ``data``; ``source`` names it in errors.

    Returns a writable NumPy array in native byte order with the header's dtype and shape.
    """
    if len(data) < 4:
        raise DataFormatError(f"{source}: is {len(data)} bytes long, expected at least a 4-byte IDX header")
    if data[0] != 0 or data[1] != 0:
        raise DataFormatError(
            f"{source}: starts with bytes 0x{data[0]:02x} 0x{data[1]:02x}, expected 0x00 0x00 "
            "(the IDX magic number); it is not an IDX file"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} ({d.name})" for c, d in IDX_DTYPES.items())
        raise DataFormatError(f"{source}: IDX dtype code is 0x{code:02x}, expected one of {known}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataFormatError(
            f"{source}: the header names {ndim} dimensions, so it needs {header_size} bytes, "
            f"but the file has only {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header_size
    if found != expected:
        raise DataFormatError(
            f"{source}: expected {expected} bytes of {dtype.name} data after the header "
            f"(shape {shape}), found {found}"
        )
    values = numpy.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_size)
    return values.reshape(shape).astype(dtype.newbyteorder("="))  # a native-order, writable copy


def read_idx(path):
    """Read an IDX file (MNIST's format), gzipped or not, into a NumPy array.

    **Shapes**: as the header says, e.g. ``(60000, 28, 28)`` uint8 for MNIST's training images
    and ``(60000,)`` for its labels.

    Raises DataFormatError, naming the file, for a bad magic number, an unknown dtype code,
    a payload shorter or longer than the header's dimensions, or a truncated gzip stream.
    See docs/data.md.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    return parse_idx(gunzip_if_needed(raw, path), path)


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR_IMAGE_SHAPE = (3, 32, 32)
CIFAR_NUM_CLASSES = 10


# The only globals an array-holding pickle names, and what each one resolves to. Protocol 0-2
# pickles also store bytes as latin-1 text rebuilt by ``_codecs.encode``; see ``find_class``.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): numpy.ndarray,
    ("numpy", "dtype"): numpy.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds arrays, lists, dicts, bytes and numbers, and nothing else."""

    def __init__(self, file, source):
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if (module, name) == ("_codecs", "encode"):
            return self.latin1_encode
        raise DataFormatError(
            f"{self.source}: refuses to load global {module}.{name}: a CIFAR-10 batch holds only "
            "arrays and lists (the file is not a CIFAR-10 batch, or was tampered with)"
        )

    def latin1_encode(self, text, encoding="latin1", errors="strict"):
        """``_codecs.encode`` as protocol 0-2 pickles use it, and for nothing else."""
        if encoding not in ("latin1", "latin-1"):
            raise DataFormatError(
                f"{self.source}: asks _codecs.encode for encoding {encoding!r}, expected 'latin1'"
            )
        return text.encode("latin1", errors)


def _entry(batch, key):
    """``batch[b"key"]`` (Python 2's pickles) or ``batch["key"]`` (re-saved by Python 3), or None."""
    return batch.get(key.encode(), batch.get(key))


def load_cifar_batch(file, source):
    """``read_cifar_batch`` on an open binary file object; ``source`` names it in errors."""
    try:
        batch = _CifarUnpickler(file, source).load()
    except DataFormatError:
        raise
    except Exception as err:  # a damaged pickle can fail in many ways; all mean "not a batch"
        raise DataFormatError(
            f"{source}: is not a readable CIFAR-10 batch; it may be truncated or corrupted "
            f"({type(err).__name__}: {err})"
        ) from None
    if not isinstance(batch, dict):
        raise DataFormatError(f"{source}: holds a {type(batch).__name__}, expected a dict (a CIFAR-10 batch)")
    data, labels = _entry(batch, "data"), _entry(batch, "labels")
    if data is None or labels is None:
        raise DataFormatError(
            f"{source}: has keys {sorted(batch, key=repr)}, expected at least b'data' and b'labels'"
        )
    pixels = CIFAR_IMAGE_SHAPE[0] * CIFAR_IMAGE_SHAPE[1] * CIFAR_IMAGE_SHAPE[2]
    if not isinstance(data, numpy.ndarray):
        raise DataFormatError(
            f"{source}: data is a {type(data).__name__}, expected a uint8 array of shape (n, {pixels})"
        )
    if data.dtype != numpy.uint8 or data.ndim != 2 or data.shape[1] != pixels:
        seen = f"{data.dtype} array of shape {data.shape}"
        raise DataFormatError(f"{source}: data is a {seen}, expected a uint8 array of shape (n, {pixels})")
    labels = numpy.asarray(labels)
    n = data.shape[0]
    if labels.shape != (n,) or (n > 0 and labels.dtype.kind not in "iu"):
        raise DataFormatError(
            f"{source}: labels has shape {labels.shape} and dtype {labels.dtype}, "
            f"expected {n} integers (one per image)"
        )
    if n > 0 and (labels.min() < 0 or labels.max() >= CIFAR_NUM_CLASSES):
        raise DataFormatError(
            f"{source}: labels run from {labels.min()} to {labels.max()}, expected 0..{CIFAR_NUM_CLASSES - 1}"
        )
    return data.reshape((n, *CIFAR_IMAGE_SHAPE)), labels.astype(numpy.int64)


def read_cifar_batch(path_or_fileobj):
    """Read one CIFAR-10 python batch (``data_batch_1`` .. ``data_batch_5``, ``test_batch``).

    **Shapes**: returns ``(images, labels)``: images uint8 ``(n, 3, 32, 32)`` (NCHW, RGB),
    labels int64 ``(n,)`` in 0..9; n is 10000 in the real batches.

    Accepts a path or a binary file object (e.g. from ``tarfile.extractfile``). Loading
    never runs code from the file: any global other than NumPy's array machinery is
    refused with a DataFormatError, as are a missing key, a data array that is not uint8
    ``(n, 3072)``, and labels of the wrong length or outside 0..9. See docs/data.md.
    """
    if hasattr(path_or_fileobj, "read"):
        return load_cifar_batch(path_or_fileobj, getattr(path_or_fileobj, "name", "CIFAR-10 batch"))
    path = os.fspath(path_or_fileobj)
    with open(path, "rb") as f:
        return load_cifar_batch(f, path)
