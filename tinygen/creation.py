"""Functions that make new leaf tensors: ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ...

Same names, signatures and defaults as PyTorch: floating results are float32 unless
``dtype`` says otherwise, and random ones draw from the seeded default generator.
"""

import numpy

from tinygen import backend
from tinygen.autograd.tensor import Tensor, default_float_dtype, int64
from tinygen.ops.shape import _shape_arg
from tinygen.random import default_generator


def _make(array_fn, size, dtype, device, requires_grad):
    dev = backend.device(device or "cpu")
    dtype = numpy.dtype(dtype or default_float_dtype)
    with backend.on_device(dev):
        data = array_fn(backend.array_module(dev), _shape_arg(size), dtype)
    return Tensor(data, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None and isinstance(fill_value, (bool, int)):
        dtype = numpy.dtype(bool) if isinstance(fill_value, bool) else int64
    return _make(lambda xp, s, d: xp.full(s, fill_value, d), (size,), dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.eye(n, m, dtype=d), (), dtype, device, requires_grad)


def _like(fn, x, dtype, device, requires_grad, *args):
    return fn(*args, x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    return _like(zeros, x, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    return _like(ones, x, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    return full(
        x.shape, fill_value, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad
    )


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """``[start, end)`` in steps; integers give int64, floats float32, as in PyTorch."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        whole = all(isinstance(v, (int, numpy.integer)) for v in (start, end, step))
        dtype = int64 if whole else default_float_dtype
    return _make(lambda xp, s, d: xp.arange(start, end, step, dtype=d), (), dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.linspace(start, end, steps, dtype=d), (), dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples from the seeded generator."""
    gen = generator or default_generator

    def draw(xp, shape, dtype):
        return gen.rng(xp, backend.device(device or "cpu")).standard_normal(shape, dtype=dtype)

    return _make(draw, size, dtype, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1) from the seeded generator."""
    gen = generator or default_generator

    def draw(xp, shape, dtype):
        return gen.rng(xp, backend.device(device or "cpu")).random(shape, dtype=dtype)

    return _make(draw, size, dtype, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None):
    """Integers in ``[low, high)``; ``randint(high, size)`` starts at 0, as PyTorch."""
    if high is None:
        low, high = 0, low
    gen = generator or default_generator

    def draw(xp, shape, dtype):
        return gen.rng(xp, backend.device(device or "cpu")).integers(low, high, shape).astype(dtype)

    return _make(draw, (size,), dtype or int64, device, False)


def randn_like(x, dtype=None, device=None, requires_grad=False):
    return randn(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad=False):
    return rand(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def from_numpy(array):
    """A tensor sharing memory with a NumPy array (its dtype kept)."""
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)
