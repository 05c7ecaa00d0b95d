"""The one place that knows NumPy from CuPy.

Arrays carry their device: a ``numpy.ndarray`` lives on ``"cpu"``, a ``cupy.ndarray``
on ``"cuda:N"``. Everything else asks :func:`get_array_module` for ``xp`` and writes
``xp.`` code that runs on either. CuPy is imported once, here, and only if installed.

Kernels that have a hand-written CUDA twin register both with :func:`twin`, so no
kernel ever tests ``xp is cupy`` itself. Kernels that work on a batch in pieces (the
convolutions) hand the pieces to :func:`map_batch`, which alone knows how the CPU runs them.
"""

import concurrent.futures
import ctypes
import functools
import glob
import math
import os

import numpy

from tinygen.errors import DeviceError, DTypeError

try:  # CuPy is optional: tinygen runs on NumPy without it.
    import cupy
except ImportError:
    cupy = None


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")`` (= ``cuda:0``) or ``Device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu"):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise DeviceError(f"device must be a str like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, index = spec.partition(":")
        if kind == "cpu" and not index:
            self.type, self.index = "cpu", None
        elif kind == "cuda" and (not index or index.isdigit()):
            self.type, self.index = "cuda", int(index or 0)
        else:
            raise DeviceError(f"device {spec!r} is not understood; expected 'cpu', 'cuda' or 'cuda:N'")

    def __str__(self):
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __repr__(self):
        return f"device('{self}')"

    def __eq__(self, other):
        if isinstance(other, str):
            other = Device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


CPU = Device("cpu")


def device(spec):
    """Parse ``spec`` and check that the device can be used: CuPy installed, GPU present."""
    dev = Device(spec)
    if dev.type == "cuda":
        if cupy is None:
            raise DeviceError(
                f"device '{dev}' needs CuPy, which is not installed; install it with "
                "pip install 'tinygen[cuda12]' (or [cuda13]) to match your CUDA toolkit"
            )
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as err:
            raise DeviceError(f"device '{dev}' asked for, but CUDA reports no GPU: {err}") from None
        if dev.index >= count:
            raise DeviceError(f"device '{dev}' asked for, but only {count} GPU(s) are visible")
    return dev


def device_and_dtype(args, device_arg=None, dtype_arg=None):
    """Sort the positional arguments of ``Tensor.to`` / ``Module.to`` into a device and a dtype.

    A str or Device is the device, anything else the dtype; returns ``(Device or None,
    numpy.dtype or None)``, checked: an unknown device or dtype names itself in the error.
    """
    for arg in args:
        if isinstance(arg, (str, Device)):
            device_arg = arg
        else:
            dtype_arg = arg
    if dtype_arg is not None:
        try:
            dtype_arg = numpy.dtype(dtype_arg)
        except TypeError:
            raise DTypeError(f"to: {dtype_arg!r} is neither a device nor a dtype") from None
    return (None if device_arg is None else device(device_arg)), dtype_arg


def cuda_available():
    """True when CuPy is installed and at least one GPU is visible."""
    try:
        device("cuda")
    except DeviceError:
        return False
    return True


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy`` (Chainer's convention)."""
    if cupy is not None:
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                return cupy
    return numpy


def device_of(array):
    """The :class:`Device` an array lives on."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return Device(f"cuda:{array.device.id}")
    return CPU


def to_device(array, dev):
    """Copy ``array`` to device ``dev`` (no copy when it is already there)."""
    dev = device(dev)
    if dev.type == "cpu":
        return array.get() if cupy is not None and isinstance(array, cupy.ndarray) else array
    with cupy.cuda.Device(dev.index):
        return cupy.asarray(array)


def twin(xp_version, cuda=None):
    """One callable for a kernel with an ``xp`` version and an optional CUDA twin.

    ``xp_version(xp, *arrays)`` is the readable formula that runs on NumPy or CuPy;
    ``cuda(*arrays)``, when given, is a fused CUDA kernel used for CuPy arrays.
    """

    @functools.wraps(xp_version)
    def dispatch(*arrays, **kwargs):
        xp = get_array_module(*arrays)
        if cuda is not None and xp is not numpy:
            return cuda(*arrays, **kwargs)
        return xp_version(xp, *arrays, **kwargs)

    return dispatch


@functools.cache
def elementwise(in_params, out_params, operation, name, preamble=""):
    """A compiled, cached ``cupy.ElementwiseKernel`` (Chainer's memoized ``cuda.elementwise``)."""
    if cupy is None:
        raise DeviceError(f"CUDA kernel {name!r} needs CuPy, which is not installed")
    return cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=preamble)


# ----------------------------------------------------------------------------- CPU threads

CHUNK_BYTES = 2**21  # the scratch one batch chunk may use: about an L2 cache (1-2 MiB here)


@functools.cache
def _openblas():
    """``(get_num_threads, set_num_threads)`` of the OpenBLAS that NumPy calls, or None.

    NumPy's wheels ship OpenBLAS (as ``scipy_openblas``) beside the package; a NumPy built
    against another BLAS (MKL, Accelerate), or an OpenBLAS threaded by OpenMP, gives None,
    and :func:`map_batch` then runs its chunks one after another.
    """
    package = os.path.dirname(numpy.__file__)
    blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    folders = [os.path.join(os.path.dirname(package), "numpy.libs"), os.path.join(package, ".dylibs")]
    folders.append(blas.get("lib directory") or "")
    for path in (p for folder in folders for p in glob.glob(os.path.join(folder, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: this only looks it up
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            for suffix in ("64_", "_64", ""):
                get, put, layer = (
                    getattr(lib, f"{prefix}openblas_{name}{suffix}", None)
                    for name in ("get_num_threads", "set_num_threads", "get_parallel")
                )
                if get and put and layer and layer() == 1:  # 1: OpenBLAS's own pthreads pool
                    return get, put
    return None


@functools.cache
def _pool(workers):
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tinygen")


def map_batch(fn, batch, bytes_per_item, array):
    """``fn(rows)`` for each chunk ``rows`` of a batch of ``batch`` items; yields the results in order.

    The batch is cut into an even number of equal chunks (``slice`` objects, the last one
    shorter when the batch does not divide), each of at most ``CHUNK_BYTES // bytes_per_item``
    items (at least one), so a kernel's scratch (im2col's columns) stays in cache and its
    peak memory near one chunk's. The results come in chunk order,
    so ``sum(map_batch(...))`` adds them in the same order whatever the thread count.

    On the CPU, with NumPy's OpenBLAS set to ``t > 1`` threads, the chunks run on ``t``
    Python threads while OpenBLAS is set to one thread (NumPy releases the GIL in its
    copies, ufuncs and GEMMs), so im2col's copies and col2im's additions use every core as
    the GEMMs do. A CuPy ``array`` gives one chunk: the GPU takes the whole batch at once.
    """
    if not isinstance(array, numpy.ndarray):
        yield fn(slice(0, batch))
        return
    most = max(1, CHUNK_BYTES // bytes_per_item)
    chunks = max(2, 2 * math.ceil(batch / (2 * most)))  # even, so two threads share them evenly
    size = max(1, math.ceil(batch / chunks))
    slices = [slice(start, min(start + size, batch)) for start in range(0, batch, size)]
    blas = _openblas()
    threads = blas[0]() if blas else 1
    if threads < 2 or len(slices) < 2:
        yield from map(fn, slices)
        return
    blas[1](1)
    try:
        yield from _pool(threads).map(fn, slices)
    finally:
        blas[1](threads)


def run_batch(fn, batch, bytes_per_item, array):
    """:func:`map_batch` for an ``fn`` that writes its chunk's result into an output array."""
    for _ in map_batch(fn, batch, bytes_per_item, array):
        pass
