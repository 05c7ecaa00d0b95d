"""PixelRNN's two LSTM layers: the Row LSTM (§3.1) and the Diagonal BiLSTM (§3.2).

van den Oord, Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks" (ICML 2016).
Both layers map a feature map ``x`` of shape ``(N, C, H, W)`` (C = 2h) to ``x + conv1x1(state)``
(the residual connection of the paper's Fig. 5), where the LSTM state ``(N, h, H, W)`` at
pixel ``(i, j)`` depends on ``x`` only at pixels before ``(i, j)`` or at ``(i, j)`` itself,
so a stack of them on top of a mask-A convolution stays causal. The cell is tinygen's fused
``F.lstm_cell_pointwise`` (gates i, f, g, o along dim 1, for any spatial shape)::

    i, f, o = s(gates_i), s(gates_f), s(gates_o);  g = tanh(gates_g)      (s = sigmoid)
    c = f * c_prev + i * g;  h = o * tanh(c)

**Row LSTM**: the state of a whole row at once, from the row above. ``gates = K_is (*) x``
is a 1x3 mask-B convolution of the input along its row, for all rows in one call; then,
row by row, ``gates_row + K_ss (*) h_{row-1}`` (a 1x3 convolution of the previous row's
hidden state) feeds the cell, with ``c_prev = c_{row-1}``. The receptive field of one
layer is a triangle above the pixel (one more column each side per row up) and, in the
pixel's own row, the 4 pixels to its left that the 7x7 mask A and the 1x3 mask B reach.

**Diagonal BiLSTM**: skew the map so that each diagonal becomes a column, run an LSTM over
the columns (1x1 input-to-state, 2x1 state-to-state: the states above and to the left),
unskew. A second LSTM does the same on the mirrored map (states above and to the right);
its output is shifted down one row, so pixel ``(i, j)`` gets the right-to-left state of
``(i - 1, j)``, which has seen only rows above ``i``. One layer sees every pixel before it
but one: the last pixel of the row above (for ``j < W - 4``), which only the mask-A
features of a later pixel of that row would carry.

Derivations, pictures and the causality argument: ``docs/pixelrnn.md``.
"""

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen import backend, nn
from tinygen.errors import ShapeError
from tinygen.models.pixelrnn.masked import MaskedConv2d


def _check_state_weight(op, gates, weight, kernel):
    """``gates`` ``(N, 4h, H, W)`` and ``weight`` ``(4h, h, *kernel)``, or a ShapeError naming them."""
    if gates.ndim != 4 or gates.shape[1] % 4:
        raise ShapeError(f"{op}: gates has shape {tuple(gates.shape)}, expected (N, 4h, H, W)")
    hidden = gates.shape[1] // 4
    expected = (4 * hidden, hidden, *kernel)
    if tuple(weight.shape) != expected:
        raise ShapeError(f"{op}: weight has shape {tuple(weight.shape)}, expected (4h, h, {kernel[0]}, "
                         f"{kernel[1]}) = {expected} for gates {tuple(gates.shape)}")
    return hidden


# ----------------------------------------------------------------------------- Row LSTM


def row_lstm(gates, weight, bias=None):
    """The Row LSTM's recurrence: the hidden state of every row from its input-to-state gates.

    **Shapes**: ``gates`` ``(N, 4h, H, W)`` (blocks i, f, g, o), ``weight`` ``(4h, h, 1, 3)``,
    ``bias`` ``(4h,)``; returns ``h`` ``(N, h, H, W)``.

    **Forward**, for rows ``r = 0 .. H-1`` with ``h_{-1} = c_{-1} = 0`` (each ``(N, h, 1, W)``)::

        state_gates = conv2d(h_{r-1}, weight, bias, padding (0, 1))
        (h_r, c_r)  = lstm_cell_pointwise(gates[:, :, r] + state_gates, c_{r-1})

    **Backward**: through time, row by row (the cell's fused backward, conv2d's).
    **Why**: the state-to-state product runs over a whole row at once: H steps, not H*W.
    """
    _check_state_weight("row_lstm", gates, weight, (1, 3))
    n, four_h, _, width = gates.shape
    h = tinygen.zeros(n, four_h // 4, 1, width, dtype=gates.dtype, device=gates.device)
    c = h
    rows = []
    for gates_row in tinygen.split(gates, 1, dim=2):
        h, c = F.lstm_cell_pointwise(gates_row + F.conv2d(h, weight, bias, padding=(0, 1)), c)
        rows.append(h)
    return tinygen.cat(rows, dim=2)


class RowLSTMLayer(nn.Module):
    """One Row LSTM layer with its residual connection: ``x + output(row_lstm(input_to_state(x)))``.

    Submodules: ``input_to_state`` a 1x3 mask-B :class:`MaskedConv2d` ``(C -> 4h)``,
    ``state_to_state`` a 1x3 ``Conv2d`` ``(h -> 4h)`` (its weights, used by :func:`row_lstm`),
    ``output`` a 1x1 ``Conv2d`` ``(h -> C)``. Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, channels, hidden):
        super().__init__()
        self.channels, self.hidden = channels, hidden
        self.input_to_state = MaskedConv2d(channels, 4 * hidden, (1, 3), "B")
        self.state_to_state = nn.Conv2d(hidden, 4 * hidden, (1, 3), padding=(0, 1))
        self.output = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        h = row_lstm(self.input_to_state(x), self.state_to_state.weight, self.state_to_state.bias)
        return x + self.output(h)

    def extra_repr(self):
        return f"channels={self.channels}, hidden={self.hidden}"


# ----------------------------------------------------------------------------- Diagonal BiLSTM


def skew(x):
    """Shift row ``r`` of ``x`` right by ``r``: ``(N, C, H, W) -> (N, C, H, W + H - 1)``.

    ``out[..., r, r + j] = x[..., r, j]``, zeros elsewhere, so diagonal ``r + j = k`` of ``x``
    is column ``k`` of ``out``. Done without a loop: pad each row with H zeros (row length
    ``W + H``), flatten, drop the last ``H`` entries and read the rest as rows of ``W + H - 1``:
    flat index ``r (W + H - 1) + r + j = r (W + H) + j``. **Backward**: the same reshapes and
    slices, reversed (:func:`unskew` of the gradient).
    """
    n, channels, height, width = x.shape
    flat = F.pad(x, (0, height)).reshape(n, channels, height * (width + height))
    return flat[:, :, : height * (width + height - 1)].reshape(n, channels, height, width + height - 1)


def unskew(x):
    """Undo :func:`skew`, ``(N, C, H, W + H - 1) -> (N, C, H, W)``: ``out[..., r, j] = x[..., r, r + j]``.

    The same trick backwards: flatten, pad H zeros at the end, read as rows of ``W + H``, keep
    the first W columns (flat index ``r (W + H) + j = r (W + H - 1) + r + j``).
    """
    n, channels, height, skewed_width = x.shape
    width = skewed_width - height + 1
    if width < 1:
        raise ShapeError(f"unskew: x has shape {tuple(x.shape)}, expected (N, C, H, W + H - 1) with W >= 1")
    flat = F.pad(x.reshape(n, channels, height * skewed_width), (0, height))
    return flat.reshape(n, channels, height, width + height)[:, :, :, :width]


def skewed_pixels(height, width, xp=numpy, dtype=numpy.float64):
    """``(H, W + H - 1)`` 0/1: which positions of a skewed ``H x W`` map hold a pixel (``0 <= k - r < W``)."""
    shift = numpy.arange(width + height - 1)[None, :] - numpy.arange(height)[:, None]
    return xp.asarray(((shift >= 0) & (shift < width)).astype(dtype))


def diagonal_lstm(gates, weight, bias=None):
    """One direction of the Diagonal BiLSTM: a column LSTM over the skewed gates, unskewed.

    **Shapes**: ``gates`` ``(N, 4h, H, W)`` (the 1x1 input-to-state pre-activations, blocks i,
    f, g, o), ``weight`` ``(4h, h, 2, 1)``, ``bias`` ``(4h,)``; returns ``h`` ``(N, h, H, W)``.

    **Forward**: ``G = skew(gates)``; for columns ``k = 0 .. W+H-2`` of the skewed map, with
    ``h_{-1} = c_{-1} = 0`` (each ``(N, h, H, 1)``)::

        (h_k, c_k) = lstm_cell_pointwise(G[..., k] + conv2d(pad_top(h_{k-1}), weight, bias), c_{k-1})
        h_k, c_k   = h_k * inside_k, c_k * inside_k

    Row ``r`` of ``conv2d(pad_top(h_{k-1}))`` reads rows ``r - 1`` and ``r`` of column ``k - 1``:
    in the image, the states above and to the left of pixel ``(r, k - r)``; ``c_prev`` is the
    left one's. ``inside_k`` zeroes the states of positions that hold no pixel, so the state
    left of column 0 is 0, as the state above row 0 is. Returns ``unskew(h_0 .. h_{W+H-2})``.

    **Backward**: through the columns, then the skew's reshapes. **Why**: each step computes a
    whole diagonal at once, W + H - 1 steps instead of H*W.
    """
    hidden = _check_state_weight("diagonal_lstm", gates, weight, (2, 1))
    n, _, height, width = gates.shape
    inside = tinygen.Tensor(skewed_pixels(height, width, backend.get_array_module(gates.data), gates.dtype))
    h = tinygen.zeros(n, hidden, height, 1, dtype=gates.dtype, device=gates.device)
    c = h
    columns = []
    for k, gates_column in enumerate(tinygen.split(skew(gates), 1, dim=3)):
        above_and_left = F.pad(h, (0, 0, 1, 0))  # (N, h, H + 1, 1): output row r reads rows r - 1 and r
        h, c = F.lstm_cell_pointwise(gates_column + F.conv2d(above_and_left, weight, bias), c)
        keep = inside[:, k : k + 1]  # (H, 1)
        h, c = h * keep, c * keep
        columns.append(h)
    return unskew(tinygen.cat(columns, dim=3))


def flip_columns(x):
    """``x[..., ::-1]``: the map mirrored left to right (its own inverse)."""
    return x[..., ::-1]


def shift_down(x):
    """Move every row one down, row 0 zeros, the last row dropped: ``out[..., r, :] = x[..., r - 1, :]``."""
    return F.pad(x, (0, 0, 1, -1))


class DiagonalBiLSTMLayer(nn.Module):
    """One Diagonal BiLSTM layer with its residual connection (module docstring).

    ``gates = input_to_state(x)`` (a 1x1 ``Conv2d``, ``C -> 8h``: channels ``0 .. 4h`` for the
    left-to-right LSTM, ``4h .. 8h`` for the right-to-left one)::

        left  = diagonal_lstm(gates[:, :4h], state_to_state.weight, ...)
        right = flip(diagonal_lstm(flip(gates[:, 4h:]), state_to_state_reverse.weight, ...))
        out   = x + output(left + shift_down(right))

    ``state_to_state`` and ``state_to_state_reverse`` are 2x1 ``Conv2d`` ``(h -> 4h)`` holding
    the weights (the ``_reverse`` suffix as in ``nn.LSTM``), ``output`` a 1x1 ``Conv2d``
    ``(h -> C)``. Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, channels, hidden):
        super().__init__()
        self.channels, self.hidden = channels, hidden
        self.input_to_state = nn.Conv2d(channels, 8 * hidden, 1)
        self.state_to_state = nn.Conv2d(hidden, 4 * hidden, (2, 1))
        self.state_to_state_reverse = nn.Conv2d(hidden, 4 * hidden, (2, 1))
        self.output = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        left_gates, right_gates = tinygen.split(self.input_to_state(x), 4 * self.hidden, dim=1)
        left = diagonal_lstm(left_gates, self.state_to_state.weight, self.state_to_state.bias)
        reverse = self.state_to_state_reverse
        right = flip_columns(diagonal_lstm(flip_columns(right_gates), reverse.weight, reverse.bias))
        return x + self.output(left + shift_down(right))

    def extra_repr(self):
        return f"channels={self.channels}, hidden={self.hidden}"
