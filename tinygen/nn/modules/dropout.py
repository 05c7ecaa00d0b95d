"""``Dropout``: random zeroing while training, the identity in eval mode."""

import tinygen.nn.functional as F
from tinygen.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Active only while ``self.training`` (``model.train()``); ``model.eval()`` makes it the
    identity. The mask comes from the seeded default generator. ``inplace`` is accepted
    for PyTorch compatibility; the result is always a new tensor.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):  # noqa: A002  (PyTorch's name)
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
