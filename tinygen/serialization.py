"""``save`` and ``load``: checkpoints as ``.npz`` files, with no pickle.

A checkpoint is a nested structure of dicts, lists and tuples whose leaves are Tensors,
NumPy arrays, NumPy scalars and Python ``None``/``bool``/``int``/``float``/``str``::

    tinygen.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                  "epoch": 3, "rng": tinygen.default_generator.get_state()}, "ckpt.npz")

Every array goes into the ``.npz`` under its own name (``t0``, ``t1``, ...); the structure
goes in as JSON (array ``__tinygen__``, UTF-8 bytes), where a leaf array is written as
``{"type": "tensor", "array": "t0"}``. Loading uses ``allow_pickle=False``, so opening
a checkpoint never runs code from it.

``save`` writes a temporary file in the same directory, flushes it to disk, then renames
it over ``path`` (``os.replace`` is atomic): a crash leaves the old checkpoint or the new
one, never half of one. The file is written to ``path`` exactly as given; no ``.npz``
suffix is added (unlike ``numpy.savez``), so ``load`` must be given the same path.
"""

import json
import os
import uuid
import zipfile

import numpy

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.errors import CheckpointError

_META = "__tinygen__"
_FORMAT = "tinygen-checkpoint"
_VERSION = 1


def _store(array, kind, path, arrays):
    """Put a NumPy ``array`` into ``arrays`` under a fresh name and return its JSON node."""
    if array.dtype.hasobject:
        raise TypeError(f"save: {path} is an array of Python objects, which needs pickle; not supported")
    name = f"t{len(arrays)}"
    arrays[name] = array
    return {"type": kind, "array": name}


def _encode(obj, path, arrays):
    """``obj`` as JSON-ready data; arrays are moved into ``arrays``. ``path`` names ``obj`` in errors."""
    if isinstance(obj, Tensor):
        return _store(obj.numpy(), "tensor", path, arrays)
    if isinstance(obj, numpy.generic):  # checked before float: numpy.float64 is a float too
        return _store(numpy.asarray(obj), "scalar", path, arrays)
    if isinstance(obj, numpy.ndarray) or backend.get_array_module(obj) is not numpy:  # NumPy or CuPy
        return _store(numpy.asarray(backend.to_device(obj, "cpu")), "ndarray", path, arrays)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(
                    f"save: {path} has a key {key!r} of type {type(key).__name__}; keys must be str or int"
                )
            items.append([key, _encode(value, f"{path}[{key!r}]", arrays)])
        return {"type": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        values = [_encode(v, f"{path}[{i}]", arrays) for i, v in enumerate(obj)]
        return {"type": type(obj).__name__, "items": values}
    raise TypeError(
        f"save: {path} is a {type(obj).__name__}, which cannot be stored; supported are dicts, lists and "
        "tuples of Tensors, NumPy arrays and scalars, None, bool, int, float and str"
    )


def _decode(node, arrays):
    """The inverse of ``_encode``: tensors come back as CPU Tensors, arrays as NumPy arrays."""
    if not isinstance(node, dict):
        return node
    kind = node["type"]
    if kind == "dict":
        return {key: _decode(value, arrays) for key, value in node["items"]}
    if kind in ("list", "tuple"):
        values = [_decode(v, arrays) for v in node["items"]]
        return values if kind == "list" else tuple(values)
    array = arrays[node["array"]]
    if kind == "tensor":
        return Tensor(array)
    if kind == "scalar":
        return array[()]
    if kind == "ndarray":
        return array
    raise KeyError(f"unknown node type {kind!r}")


def save(obj, path):
    """Write ``obj`` (see the module docstring for what it may hold) to ``path``, atomically."""
    path = os.fspath(path)
    arrays = {}
    meta = {"format": _FORMAT, "version": _VERSION, "root": _encode(obj, "obj", arrays)}
    meta_bytes = numpy.frombuffer(json.dumps(meta).encode("utf-8"), dtype=numpy.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            numpy.savez(f, **{_META: meta_bytes}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    if os.name == "posix":  # make the rename itself durable
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load(path):
    """Read a checkpoint written by ``save``; Tensors come back on the CPU with their dtypes."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, numpy.lib.npyio.NpzFile) or _META not in archive.files:
                raise CheckpointError(f"load: {path!r} is not a tinygen checkpoint (no {_META} entry)")
            meta = json.loads(archive[_META].tobytes().decode("utf-8"))
            if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
                raise CheckpointError(
                    f"load: {path!r} has format {meta.get('format')!r} version "
                    f"{meta.get('version')!r}, expected {_FORMAT!r} version {_VERSION}"
                )
            arrays = {name: archive[name] for name in archive.files if name != _META}
        return _decode(meta["root"], arrays)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"load: {path!r} is not a readable tinygen checkpoint; it may be truncated or corrupted "
            f"({type(err).__name__}: {err})"
        ) from err
