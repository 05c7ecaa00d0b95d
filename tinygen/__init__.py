"""tinygen: deep generative models on NumPy (and CuPy), with a small autograd engine.

The names mirror PyTorch: ``tinygen.tensor``, ``tinygen.randn``, ``tinygen.no_grad``,
``tinygen.nn.functional``, ``tinygen.autograd.Function``; ``tinygen.testing`` holds the
gradient checkers.
"""

from tinygen import autograd, backend, nn, ops, optim  # noqa: F401
from tinygen.autograd.function import grad  # noqa: F401
from tinygen.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from tinygen.autograd.tensor import (  # noqa: F401
    Tensor,
    bool_,
    float16,
    float32,
    float64,
    int32,
    int64,
    tensor,
    uint8,
)
from tinygen.backend import Device, cuda_available  # noqa: F401
from tinygen.backend import device as device  # noqa: F401
from tinygen.cpu import get_num_threads, set_num_threads  # noqa: F401
from tinygen.creation import (  # noqa: F401
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    zeros,
    zeros_like,
)
from tinygen.ops.activation import relu
from tinygen.ops.elementwise import (  # noqa: F401
    abs_ as abs,
)
from tinygen.ops.elementwise import (
    clamp,
    exp,
    log,
    maximum,
    minimum,
    pow,
    sigmoid,
    sign,
    sqrt,
    tanh,
    where,
)
from tinygen.ops.linalg import matmul
from tinygen.ops.reduce import (  # noqa: F401
    amax,
    amin,
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    norm,
    softmax,
    std,
    sum,
    var,
)
from tinygen.ops.shape import (  # noqa: F401
    cat,
    chunk,
    flatten,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from tinygen.random import Generator, default_generator, manual_seed  # noqa: F401
from tinygen.serialization import load, save

bool = bool_  # noqa: A001  (tinygen.bool, as torch.bool)
__version__ = "0.1.0"


def __getattr__(name):
    """``tinygen.testing`` is imported on first use, so ``import tinygen`` stays light."""
    if name == "testing":
        import importlib

        return importlib.import_module("tinygen.testing")
    raise AttributeError(f"module 'tinygen' has no attribute {name!r}")
