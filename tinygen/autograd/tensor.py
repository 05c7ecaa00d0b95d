"""``Tensor``: an xp array (NumPy or CuPy) plus what autograd needs to differentiate through it.

A tensor made by the user is a *leaf*: its ``grad_fn`` is None and ``backward`` accumulates
its gradient into ``.grad``. A tensor made by an op that had an input requiring grad carries
``grad_fn`` (the op's node) and ``output_nr`` (which of the op's outputs it is).

Operators and methods mirror PyTorch's and broadcast like NumPy; each is a thin call into
``tinygen.ops``, where the differentiable ``Function`` lives. ``tensor_methods.py`` attaches
them, ``to`` and ``backward`` too, so this file imports no op and not the engine.
"""

import numbers

import numpy

from tinygen import backend
from tinygen.errors import DTypeError

float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
float16 = numpy.dtype("float16")
int64 = numpy.dtype("int64")
int32 = numpy.dtype("int32")
uint8 = numpy.dtype("uint8")
bool_ = numpy.dtype("bool")
default_float_dtype = float32


class Tensor:
    """An n-dimensional array that can record the operations made on it (see module doc)."""

    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "output_nr", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor calls Tensor.__rmul__, not numpy's loop

    def __init__(self, data, requires_grad=False, _grad_fn=None, _output_nr=0):
        xp = backend.get_array_module(data)
        if not isinstance(data, xp.ndarray):
            data = xp.asarray(data)
        if requires_grad and data.dtype.kind != "f":
            raise DTypeError(
                f"only floating-point tensors can require grad, got dtype {data.dtype}; "
                "convert with .float() or .double() first"
            )
        self.data = data
        self.requires_grad = requires_grad
        self.grad = None
        self.grad_fn = _grad_fn
        self.output_nr = _output_nr

    @staticmethod
    def _wrap(data, requires_grad, grad_fn, output_nr):
        """The engine's constructor: ``data`` is already an xp array; no checks."""
        t = object.__new__(Tensor)
        t.data = data
        t.requires_grad = requires_grad
        t.grad = None
        t.grad_fn = grad_fn
        t.output_nr = output_nr
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        body = numpy.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = ""
        if self.dtype != default_float_dtype and self.dtype != int64:
            extras += f", dtype={self.dtype}"
        if self.device != backend.CPU:
            extras += f", device='{self.device}'"
        if self.grad_fn is not None:
            extras += f", grad_fn=<{self.grad_fn.name}>"
        elif self.requires_grad:
            extras += ", requires_grad=True"
        return f"tensor({body}{extras})"

    __hash__ = object.__hash__

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError(f"only single-element integer tensors can be an index, got {self.dtype}")
        return int(self.item())

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        """The values as a NumPy array (copied from the GPU; shares memory on the CPU)."""
        return backend.to_device(self.data, "cpu")

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements, expected 1")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same values, cut from the graph (shares the array)."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf:
            raise DTypeError("requires_grad_: only leaf tensors can change requires_grad")
        if requires_grad and self.dtype.kind != "f":
            raise DTypeError(f"only floating-point tensors can require grad, got dtype {self.dtype}")
        self.requires_grad = requires_grad
        return self

    # to(device, dtype) is an op (Cast, ToDevice): tensor_methods.py binds it, with the operators

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def long(self):
        return self.to(int64)

    def type_as(self, other):
        return self.to(other.dtype)

    # ------------------------------------------------------------------ autograd
    # backward() walks the graph (autograd/function.py): tensor_methods.py binds it

    def zero_(self):
        self.data[...] = 0
        return self


def _from_python(value, dtype):
    """Python numbers and (nested) lists: floats -> float32, ints -> int64, bools -> bool."""
    if dtype is None:
        probe = numpy.asarray(value)
        if probe.dtype.kind == "f":
            dtype = default_float_dtype
        elif probe.dtype.kind in "iu":
            dtype = int64
        return probe.astype(dtype) if dtype is not None else probe
    return numpy.asarray(value, dtype=dtype)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new leaf tensor from an array, a Python number or a nested list.

    Arrays keep their dtype (float64 stays float64); Python floats become float32 and
    Python ints int64, as in PyTorch. The data is always copied.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (numbers.Number, list, tuple)):
        array = _from_python(data, dtype)
    else:
        xp = backend.get_array_module(data)
        array = xp.array(data, dtype=dtype, copy=True)
    if device is not None:
        array = backend.to_device(array, device)
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(value, like=None):
    """``value`` as a Tensor (Tensors pass through uncopied).

    A Python number next to tensor ``like`` takes its device and, following PyTorch's
    promotion rules for scalars, its dtype unless the number is of a higher kind: a float
    next to an integer tensor gives float32, an int next to a bool tensor int64.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number) and like is not None:
        kind = "b" if isinstance(value, bool) else "i" if isinstance(value, numbers.Integral) else "f"
        order = "bif"
        if order.index(kind) <= order.index(like.dtype.kind if like.dtype.kind in order else "i"):
            dtype = like.dtype
        else:
            dtype = default_float_dtype if kind == "f" else int64
        return Tensor(backend.get_array_module(like.data).asarray(value, dtype=dtype))
    return tensor(value)
