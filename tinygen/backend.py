"""The one place that knows NumPy from CuPy.

Arrays carry their device: a ``numpy.ndarray`` lives on ``"cpu"``, a ``cupy.ndarray``
on ``"cuda:N"``. Everything else asks :func:`get_array_module` for ``xp`` (or, making a new
array on a device, :func:`array_module` and :func:`on_device`) and writes ``xp.`` code that
runs on either. CuPy is imported once, here, and only if installed.

Kernels that have a hand-written CUDA twin register both with :func:`twin`, so no
kernel ever tests ``xp is cupy`` itself; :func:`elementwise` compiles a twin's source once.
How the NumPy side uses the CPU's cores and memory is :mod:`tinygen.cpu`'s business.
"""

import contextlib
import functools
import typing

import numpy

from tinygen.errors import DeviceError, DTypeError

try:  # CuPy is optional: tinygen runs on NumPy without it.
    import cupy
except ImportError:
    cupy = None

ARRAY_TYPES = (numpy.ndarray,) if cupy is None else (numpy.ndarray, cupy.ndarray)  # isinstance(a, ...)


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


def array_module(dev):
    """The array module that makes arrays on :class:`Device` ``dev``: ``numpy`` or ``cupy``."""
    return numpy if dev.type == "cpu" else cupy


def on_device(dev):
    """A context in which CuPy makes its arrays on :class:`Device` ``dev`` (nothing to do on the CPU)."""
    return contextlib.nullcontext() if dev.type == "cpu" else cupy.cuda.Device(dev.index)


def synchronize(dev):
    """Wait until every kernel queued on ``dev`` has finished (a CPU runs nothing queued)."""
    dev = device(dev)
    if dev.type == "cuda":
        cupy.cuda.Device(dev.index).synchronize()


def to_device(array, dev):
    """Copy ``array`` to device ``dev`` (no copy when it is already there)."""
    dev = device(dev)
    if dev.type == "cpu":
        return array.get() if cupy is not None and isinstance(array, cupy.ndarray) else array
    with on_device(dev):
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


class CudaSource(typing.NamedTuple):
    """An elementwise CUDA kernel as CuPy's ``ElementwiseKernel`` takes it: parameters such as
    ``"T x, raw T w, int32 n"``, the body run for element ``i``, a name and a preamble."""

    in_params: str
    out_params: str
    operation: str
    name: str
    preamble: str = ""


@functools.cache
def elementwise(source):
    """A compiled, cached ``cupy.ElementwiseKernel`` for a ``CudaSource`` (Chainer's memoized
    ``cuda.elementwise``)."""
    if cupy is None:
        raise DeviceError(f"CUDA kernel {source.name!r} needs CuPy, which is not installed")
    return cupy.ElementwiseKernel(source.in_params, source.out_params, source.operation, source.name,
                                  preamble=source.preamble)


_C_TYPES = {"T": "T", "bool": "bool", "int32": "int", "int64": "long long", "float32": "float",
            "float64": "double"}


def translation_unit(source, dtype="float"):
    """``source`` as CUDA C++ that ``nvcc`` compiles without a GPU, laid out as CuPy lays out an
    ``ElementwiseKernel``: ``T`` is ``dtype``; thread ``i`` strides over the elements; a plain
    parameter is element ``i`` of its array (a reference, for an output), a ``raw`` one the
    whole array. The kernel sits in a namespace of its own, so several fit in one file."""
    args, elements = [], []
    for params, output in ((source.in_params, False), (source.out_params, True)):
        for param in params.split(","):
            *words, c_name = param.split()
            c_type = ("" if output else "const ") + _C_TYPES[words[-1]]
            if words[0] == "raw":
                args.append(f"{c_type}* {c_name}")
            else:
                args.append(f"{c_type}* {c_name}_array")
                elements.append(f"{c_type}& {c_name} = {c_name}_array[i];")
    lines = "\n        ".join(elements)
    return f"""namespace {source.name}_{dtype} {{
typedef {dtype} T;
{source.preamble}
extern "C" __global__ void {source.name}_{dtype}({", ".join(args)}, long long size_) {{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size_;
         i += (long long)blockDim.x * gridDim.x) {{
        {lines}
{source.operation}
    }}
}}
}}
"""
