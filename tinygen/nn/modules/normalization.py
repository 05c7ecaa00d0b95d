"""Normalisation layers: ``BatchNorm1d``, ``BatchNorm2d`` and ``LayerNorm`` (PyTorch's names,
arguments, parameters, buffers and ``state_dict`` keys).

The math and its derivation live with the kernels: ``tinygen/kernels/batch_norm.py`` and
``layer_norm.py`` (docs/kernels/batch_norm.md, layer_norm.md).
"""

import numpy

from tinygen.autograd.tensor import Tensor
from tinygen.errors import ShapeError
from tinygen.kernels.batch_norm import batch_norm
from tinygen.kernels.layer_norm import layer_norm
from tinygen.nn import init
from tinygen.nn.module import Module, Parameter


class _BatchNorm(Module):
    """Batch norm over channel ``C`` of an ``(N, C, *)`` input; subclasses fix the input rank.

    **Parameters:** ``weight`` (gamma, ones) and ``bias`` (beta, zeros), shape ``(C,)``, when
    ``affine``. **Buffers:** ``running_mean`` (zeros), ``running_var`` (ones) and
    ``num_batches_tracked`` (int64) when ``track_running_stats``.

    Training normalises with the batch statistics and updates the running ones:
    ``r = (1 - momentum) * r + momentum * batch`` (the unbiased batch variance for
    ``running_var``); with ``momentum=None`` the factor is ``1 / num_batches_tracked``, a
    cumulative average of all batches seen. Evaluation uses the running statistics, or the
    batch's when they are not tracked.
    """

    _input_ranks = ()

    def __init__(
        self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(numpy.ones(num_features, dtype=numpy.float32))
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = Parameter(numpy.zeros(num_features, dtype=numpy.float32))
        else:
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(numpy.zeros(num_features, dtype=numpy.float32)))
            self.register_buffer("running_var", Tensor(numpy.ones(num_features, dtype=numpy.float32)))
            self.register_buffer("num_batches_tracked", Tensor(numpy.zeros((), dtype=numpy.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):  # noqa: A002
        if input.ndim not in self._input_ranks:
            expected = " or ".join(f"{r}D" for r in self._input_ranks)
            raise ShapeError(f"{type(self).__name__}: expected {expected} input, got shape {input.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        tracked = not self.training or self.track_running_stats
        return batch_norm(
            input,
            self.running_mean if tracked else None,
            self.running_var if tracked else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm of ``(N, C)`` or ``(N, C, L)`` input (statistics over N, or N and L).

    Shape: input ``(N, C)`` or ``(N, C, L)``, output the same.
    """

    _input_ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of ``(N, C, H, W)`` input (statistics per channel over N, H and W).

    Shape: input ``(N, C, H, W)``, output the same.
    """

    _input_ranks = (4,)


class LayerNorm(Module):
    """Layer norm over the last ``len(normalized_shape)`` dims of each sample.

    **Parameters** (when ``elementwise_affine``): ``weight`` (ones) and ``bias`` (zeros, unless
    ``bias=False``) of shape ``normalized_shape``. Shape: input ``(*, *normalized_shape)``,
    output the same.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(numpy.ones(self.normalized_shape, dtype=numpy.float32))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(numpy.zeros(self.normalized_shape, dtype=numpy.float32))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):  # noqa: A002
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
