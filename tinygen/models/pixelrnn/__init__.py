"""PixelRNN: images generated pixel by pixel by LSTMs, with an exact log-likelihood.

van den Oord, Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks" (ICML 2016).
An image ``x`` of ``D = H*W`` pixels, read row by row, has the density

    p(x) = prod_{i=1}^{D} p(x_i | x_1, ..., x_{i-1})                    (the paper's eq. 1)

with no approximation: any distribution factorises this way. A network gives all D
conditionals in one pass, provided its output at pixel i never depends on pixels >= i
(**causality**: masked convolutions, LSTMs that only look up and left, the shift of the
Diagonal BiLSTM's second direction). Then ``-log p(x) = -sum_i log p(x_i | x_<i)`` is exact:
nats per image, summed over the pixels; bits/dim = nats / (D ln 2).

- ``masked``: :func:`causal_mask` (masks A and B), :class:`MaskedConv2d`.
- ``layers``: :func:`row_lstm` and :class:`RowLSTMLayer` (§3.1); :func:`skew`, :func:`unskew`,
  :func:`diagonal_lstm` and :class:`DiagonalBiLSTMLayer` (§3.2).
- ``models``: :class:`PixelRNN` (either layer), :class:`RowBaseline` (``nn.LSTM`` one row per
  step), :func:`negative_log_likelihood`.
- ``sampling``: :func:`sample`, naive (the whole network per pixel) or cached (each
  activation once).
- ``recipe``: :func:`evaluate` (the exact test NLL) and :class:`PixelRNNRecipe`
  (``tinygen train pixelrnn``).

Derivations, pictures and figures: ``docs/pixelrnn.md``.
"""

from tinygen.models.pixelrnn.layers import (
    DiagonalBiLSTMLayer,
    RowLSTMLayer,
    diagonal_lstm,
    flip_columns,
    row_lstm,
    shift_down,
    skew,
    unskew,
)
from tinygen.models.pixelrnn.masked import MaskedConv2d, causal_mask, masked_conv2d
from tinygen.models.pixelrnn.models import (
    ARCHITECTURES,
    OUTPUTS,
    PixelRNN,
    RowBaseline,
    bits_per_dim,
    grey_levels,
    make_model,
    negative_log_likelihood,
    nll,
)
from tinygen.models.pixelrnn.recipe import TEST_SEED, PixelRNNRecipe, eval_images, evaluate
from tinygen.models.pixelrnn.sampling import draw, sample
