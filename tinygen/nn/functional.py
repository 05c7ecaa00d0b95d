"""``tinygen.nn.functional`` (import as ``F``): PyTorch's functional API by the same names.

Activations, softmax, dropout, linear, pad and the losses. Each entry is the op from
``tinygen.ops``; this module is only the public face.
"""

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.kernels.batch_norm import batch_norm
from tinygen.kernels.conv2d import conv2d
from tinygen.kernels.conv_transpose2d import conv_transpose2d
from tinygen.kernels.embedding import embedding
from tinygen.kernels.layer_norm import layer_norm
from tinygen.kernels.lstm import lstm
from tinygen.kernels.lstm_cell import lstm_cell, lstm_cell_pointwise
from tinygen.kernels.pool import avg_pool2d, max_pool2d
from tinygen.ops.activation import elu, leaky_relu, relu, softplus
from tinygen.ops.elementwise import sigmoid, tanh
from tinygen.ops.linalg import linear
from tinygen.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_kl,
    kl_div,
    mse_loss,
    nll_loss,
)
from tinygen.ops.reduce import log_softmax, logsumexp, softmax
from tinygen.ops.shape import pad
from tinygen.random import default_generator

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv2d", "conv_transpose2d", "cross_entropy", "dropout", "elu", "embedding", "gaussian_kl",
    "kl_div", "layer_norm", "leaky_relu", "linear", "log_softmax", "logsumexp", "lstm", "lstm_cell",
    "lstm_cell_pointwise", "max_pool2d", "mse_loss", "nll_loss", "pad", "relu", "sigmoid",
    "softmax", "softplus", "tanh",
]  # fmt: skip


def dropout(input, p=0.5, training=True, generator=None):  # noqa: A002  (PyTorch's names)
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The scaling keeps the expected value unchanged, so evaluation (``training=False``)
    is the identity. The mask comes from the seeded generator.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    xp = backend.get_array_module(input.data)
    rng = (generator or default_generator).rng(xp, input.device)
    keep = rng.random(input.shape, dtype=input.dtype) >= p
    return input * Tensor(keep.astype(input.dtype) / input.dtype.type(1 - p))
