"""``Embedding``: a lookup table of learned vectors (PyTorch's name, arguments and init).

The kernel and its backward: ``tinygen/kernels/embedding.py``.
"""

import numpy

from tinygen.errors import ShapeError
from tinygen.kernels.embedding import embedding
from tinygen.nn import init
from tinygen.nn.module import Module, Parameter


class Embedding(Module):
    """``num_embeddings`` vectors of size ``embedding_dim``, looked up by integer index.

    **Parameter:** ``weight`` of shape ``(num_embeddings, embedding_dim)``, drawn from N(0, 1),
    with the row ``padding_idx`` (if given) set to zeros; that row gets no gradient.
    Shape: input ``(*)`` integers, output ``(*, embedding_dim)``.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ShapeError(
                    f"Embedding: padding_idx is {padding_idx}, expected it in "
                    f"[-num_embeddings, num_embeddings) = [{-num_embeddings}, {num_embeddings})"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = Parameter(numpy.empty((num_embeddings, embedding_dim), dtype=numpy.float32))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):  # noqa: A002
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else text + f", padding_idx={self.padding_idx}"
