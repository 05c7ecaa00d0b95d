"""``tinygen.nn.functional`` (import as ``F``): PyTorch's functional API by the same names.

Activations, softmax, dropout, linear, pad, the losses and the kernels. Each entry is the
op from ``tinygen.ops`` or ``tinygen.kernels``; this module is only the public face.
"""

from tinygen.kernels.batch_norm import batch_norm
from tinygen.kernels.conv import conv2d, conv_transpose2d
from tinygen.kernels.embedding import embedding
from tinygen.kernels.layer_norm import layer_norm
from tinygen.kernels.lstm import lstm, lstm_cell
from tinygen.kernels.lstm_cell import lstm_cell_pointwise
from tinygen.kernels.pool import avg_pool2d, max_pool2d
from tinygen.ops.activation import elu, leaky_relu, relu, softplus
from tinygen.ops.dropout import dropout
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

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv2d", "conv_transpose2d", "cross_entropy", "dropout", "elu", "embedding", "gaussian_kl",
    "kl_div", "layer_norm", "leaky_relu", "linear", "log_softmax", "logsumexp", "lstm", "lstm_cell",
    "lstm_cell_pointwise", "max_pool2d", "mse_loss", "nll_loss", "pad", "relu", "sigmoid",
    "softmax", "softplus", "tanh",
]  # fmt: skip

