"""Operators and methods of ``Tensor``, each a one-line call into ``tinygen.ops`` or the engine.

Kept apart from ``tensor.py`` so that file shows what a tensor *is*, and this one
what it can *do*. ``bind(Tensor)`` attaches them.
"""

from tinygen import backend
from tinygen.autograd import function
from tinygen.ops import activation, linalg, reduce, shape
from tinygen.ops import elementwise as ew


def _reflected(fn):
    return lambda self, other: fn(other, self)


METHODS = {
    # arithmetic operators (NumPy broadcasting; numbers allowed on either side)
    "__add__": ew.add,
    "__radd__": _reflected(ew.add),
    "__sub__": ew.sub,
    "__rsub__": _reflected(ew.sub),
    "__mul__": ew.mul,
    "__rmul__": _reflected(ew.mul),
    "__truediv__": ew.div,
    "__rtruediv__": _reflected(ew.div),
    "__pow__": ew.pow,
    "__rpow__": _reflected(ew.pow),
    "__matmul__": linalg.matmul,
    "__rmatmul__": _reflected(linalg.matmul),
    "__neg__": ew.neg,
    "__abs__": ew.abs_,
    "__getitem__": shape.getitem,
    # comparisons (bool tensors, no gradient)
    "__eq__": ew.eq,
    "__ne__": ew.ne,
    "__lt__": ew.lt,
    "__le__": ew.le,
    "__gt__": ew.gt,
    "__ge__": ew.ge,
    "eq": ew.eq,
    "ne": ew.ne,
    "lt": ew.lt,
    "le": ew.le,
    "gt": ew.gt,
    "ge": ew.ge,
    # elementwise
    "add": ew.add,
    "sub": ew.sub,
    "mul": ew.mul,
    "div": ew.div,
    "neg": ew.neg,
    "pow": ew.pow,
    "exp": ew.exp,
    "log": ew.log,
    "sqrt": ew.sqrt,
    "abs": ew.abs_,
    "tanh": ew.tanh,
    "sigmoid": ew.sigmoid,
    "relu": activation.relu,
    "sign": ew.sign,
    "clamp": ew.clamp,
    "clip": ew.clamp,
    "maximum": ew.maximum,
    "minimum": ew.minimum,
    # reductions
    "sum": reduce.sum,
    "mean": reduce.mean,
    "max": reduce.max,
    "min": reduce.min,
    "amax": reduce.amax,
    "amin": reduce.amin,
    "argmax": reduce.argmax,
    "argmin": reduce.argmin,
    "var": reduce.var,
    "std": reduce.std,
    "norm": reduce.norm,
    "logsumexp": reduce.logsumexp,
    "softmax": reduce.softmax,
    "log_softmax": reduce.log_softmax,
    # linear algebra
    "matmul": linalg.matmul,
    # shape
    "reshape": shape.reshape,
    "view": shape.reshape,
    "transpose": shape.transpose,
    "permute": shape.permute,
    "flatten": shape.flatten,
    "squeeze": shape.squeeze,
    "unsqueeze": shape.unsqueeze,
    "expand": shape.expand,
    "broadcast_to": shape.broadcast_to,
    "split": shape.split,
    "chunk": shape.chunk,
}


def _any(self):
    return type(self)(self.data.any())


def _all(self):
    return type(self)(self.data.all())


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(self.shape[0]))


def _expand_as(self, other):
    return shape.broadcast_to(self, other.shape)


def _view_as(self, other):
    return shape.reshape(self, other.shape)


def to(self, *args, dtype=None, device=None):
    """``to(device)``, ``to(dtype)`` or ``to(device, dtype)``; differentiable, like PyTorch."""
    device, dtype = backend.device_and_dtype(args, device, dtype)
    out = self
    if dtype is not None and dtype != self.dtype:
        out = ew.Cast.apply(out, dtype)
    if device is not None and device != self.device:
        out = ew.ToDevice.apply(out, device)
    return out


def backward(self, gradient=None, retain_graph=None, create_graph=False):
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's signature)."""
    roots, grads = function._roots_and_grads("backward", [self], gradient)
    retain_graph = create_graph if retain_graph is None else retain_graph
    function.run_backward(roots, grads, retain_graph, create_graph)


def bind(cls):
    for name, fn in METHODS.items():
        setattr(cls, name, fn)
    cls.any = _any
    cls.all = _all
    cls.__iter__ = _iter
    cls.expand_as = _expand_as
    cls.view_as = _view_as
    cls.reshape_as = _view_as
    cls.to = to
    cls.backward = backward
