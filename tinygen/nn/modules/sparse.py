"""``Embedding``: a lookup table of learned vectors (PyTorch's name, arguments and init).

The kernel and its backward: ``tinygen/kernels/embedding.py``.
"""

import numpy

from tinygen.autograd.tensor import Tensor, default_float_dtype
from tinygen.errors import ShapeError
from tinygen.kernels.embedding import check_options, embedding
from tinygen.nn import init
from tinygen.nn.module import Module, Parameter


class Embedding(Module):
    """``num_embeddings`` vectors of size ``embedding_dim``, looked up by integer index.

    **Parameter:** ``weight`` of shape ``(num_embeddings, embedding_dim)``, drawn from N(0, 1),
    with the row ``padding_idx`` (if given) set to zeros; that row gets no gradient. Given
    ``_weight``, that tensor is the parameter as it is (padding row included), as in torch;
    ``_freeze=True`` makes it not require grad.
    Shape: input ``(*)`` integers, output ``(*, embedding_dim)``.

    **Options** (as ``F.embedding``): ``max_norm`` renormalises, in place, each looked-up row
    whose ``norm_type``-norm exceeds it, before the lookup; ``scale_grad_by_freq`` divides
    each row's gradient by how often it occurs in the batch. ``sparse=True`` is not supported
    (tinygen has no sparse tensors) and raises NotImplementedError.
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        padding_idx=None,
        max_norm=None,
        norm_type=2.0,
        scale_grad_by_freq=False,
        sparse=False,
        _weight=None,
        _freeze=False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(value, (int, numpy.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Embedding: {name} must be a non-negative int, got {value!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ShapeError(
                    f"Embedding: padding_idx is {padding_idx}, expected it in "
                    f"[-num_embeddings, num_embeddings) = [{-num_embeddings}, {num_embeddings})"
                )
            padding_idx %= num_embeddings
        check_options("Embedding", max_norm, norm_type, scale_grad_by_freq, sparse)
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), bool(sparse)
        if _weight is None:
            dtype = numpy.dtype(dtype or default_float_dtype)
            self.weight = Parameter(
                numpy.empty((self.num_embeddings, self.embedding_dim), dtype=dtype), requires_grad=not _freeze
            )
            self.reset_parameters()
        else:
            shape = tuple(_weight.shape)
            if shape != (self.num_embeddings, self.embedding_dim):
                raise ShapeError(
                    f"Embedding: _weight has shape {shape}, expected (num_embeddings, embedding_dim) = "
                    f"({self.num_embeddings}, {self.embedding_dim})"
                )
            data = _weight.data if isinstance(_weight, Tensor) else _weight
            self.weight = Parameter(data, requires_grad=not _freeze)
        if device is not None:
            self.to(device)

    @classmethod
    def from_pretrained(
        cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
        scale_grad_by_freq=False, sparse=False,
    ):  # fmt: skip
        """An Embedding whose weight is ``embeddings`` (2-D, ``(num_embeddings, embedding_dim)``),
        as given (the padding row is not zeroed), and not trained when ``freeze`` (torch's default)."""
        shape = tuple(embeddings.shape)
        if len(shape) != 2:
            raise ShapeError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {shape}")
        return cls(
            *shape, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=embeddings, _freeze=freeze,
        )  # fmt: skip

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):  # noqa: A002
        return embedding(
            input, self.weight, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq,
            self.sparse,
        )  # fmt: skip

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            text += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        return text  # sparse=True never gets here: the constructor refuses it
