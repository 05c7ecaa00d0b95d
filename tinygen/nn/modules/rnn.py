"""Recurrent layers: ``LSTM`` and ``LSTMCell``, with PyTorch's arguments, parameter names and init.

The math and the kernels are in ``tinygen/kernels/lstm_cell.py`` (the cell),
``tinygen/kernels/lstm_layer.py`` (one layer and its BPTT) and ``tinygen/kernels/lstm.py``
(layers, directions, dropout, the checks); derivations in ``docs/kernels/lstm.md``.
These classes hold the parameters and call them.
"""

import math
import warnings

import numpy

from tinygen.kernels.lstm import check_dropout, check_proj_size, lstm, lstm_cell
from tinygen.nn import init
from tinygen.nn.module import Module, Parameter


def _parameter(*shape):
    return Parameter(numpy.empty(shape, dtype=numpy.float32))


class LSTM(Module):
    """A multi-layer LSTM over a sequence: PyTorch's ``nn.LSTM``, ``proj_size`` included.

    For each layer, direction and step (gates in PyTorch's order i, f, g, o; ``s`` = sigmoid)::

        i, f, g, o = s, s, tanh, s  of  (x_t @ W_ih^T + b_ih + h_{t-1} @ W_hh^T + b_hh)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)                      (proj_size = 0)
        h_t = (o * tanh(c_t)) @ W_hr^T           (proj_size = P > 0: h has size P, c keeps size H)

    Layer k > 0 reads the output of layer k - 1, passed through dropout with probability
    ``dropout`` while training (never after the last layer). With ``bidirectional=True`` each
    layer also runs a second LSTM (the ``_reverse`` parameters) from step L down to step 1; its
    h sequence is concatenated after the forward one on the last dim.

    Shape (``D = 2`` if ``bidirectional`` else 1; ``R = proj_size`` if ``proj_size > 0`` else ``H``):
        - input: ``(L, N, H_in)``, ``(N, L, H_in)`` with ``batch_first=True``, or unbatched ``(L, H_in)``
        - hx: ``(h_0, c_0)``, ``h_0`` ``(D*num_layers, N, R)`` and ``c_0`` ``(D*num_layers, N, H)``
          (no N unbatched); zeros if None
        - output: ``(L, N, D*R)`` (``(N, L, D*R)`` with ``batch_first``), the last layer's h at every step
        - h_n ``(D*num_layers, N, R)``, c_n ``(D*num_layers, N, H)``: the state after the last
          step, ordered layer 0 forward, layer 0 reverse, layer 1 forward, ...

    Parameters, named and ordered as in PyTorch so that its ``state_dict`` loads: for each
    layer k, ``weight_ih_l{k}`` ``(4H, H_in)`` for k = 0 (``(4H, D*R)`` above),
    ``weight_hh_l{k}`` ``(4H, R)``, ``bias_ih_l{k}`` and ``bias_hh_l{k}`` ``(4H,)``, then
    ``weight_hr_l{k}`` ``(P, H)`` if ``proj_size > 0``; then the same with the suffix
    ``_reverse`` when bidirectional; all drawn from ``U(-1/sqrt(H), 1/sqrt(H))``.
    ``proj_size`` must be an int with ``0 <= proj_size < hidden_size``.

    ``dropout`` must be a number in [0, 1]; a non-zero value with ``num_layers=1`` does nothing,
    and warns, as in PyTorch. The masks come from the seeded default generator
    (``tinygen.manual_seed``), as :class:`~tinygen.nn.Dropout`'s do; ``model.eval()`` turns
    dropout off.

    ``fused`` (default True) runs each layer and direction as one node with hand-written
    backpropagation through time: fastest, first-order gradients only. Set ``fused=False``
    (argument or attribute) for a per-step graph that can be differentiated twice (gradient
    penalties).
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        *,
        fused=True,
    ):
        super().__init__()
        if hidden_size < 1 or input_size < 1 or num_layers < 1:
            raise ValueError(
                f"LSTM: input_size, hidden_size and num_layers must be positive, got "
                f"{input_size}, {hidden_size}, {num_layers}"
            )
        check_dropout("LSTM", dropout)
        check_proj_size("LSTM", proj_size)
        if proj_size >= hidden_size:
            raise ValueError(
                f"LSTM: proj_size is {proj_size}, expected less than hidden_size = {hidden_size}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"LSTM: dropout is applied to the output of every layer but the last, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                UserWarning,
                stacklevel=2,
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.fused = bias, batch_first, fused
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        directions = 2 if bidirectional else 1
        out_size = proj_size if proj_size > 0 else hidden_size  # the size of h
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else directions * out_size
            for suffix in ["", "_reverse"][:directions]:
                setattr(self, f"weight_ih_l{layer}{suffix}", _parameter(4 * hidden_size, layer_input))
                setattr(self, f"weight_hh_l{layer}{suffix}", _parameter(4 * hidden_size, out_size))
                if bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", _parameter(4 * hidden_size))
                    setattr(self, f"bias_hh_l{layer}{suffix}", _parameter(4 * hidden_size))
                if proj_size > 0:  # registered last: PyTorch's _flat_weights order
                    setattr(self, f"weight_hr_l{layer}{suffix}", _parameter(proj_size, hidden_size))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flat_weights(self):
        """The parameters in PyTorch's ``_flat_weights`` order (per layer, per direction, 2 to 5).

        ``[w_ih_l0, w_hh_l0, b_ih_l0, b_hh_l0, (w_hr_l0,) w_ih_l0_reverse, ..., w_ih_l1, ...]``.
        """
        return list(self._parameters.values())

    def forward(self, input, hx=None):  # noqa: A002  (PyTorch's names)
        return lstm(
            input,
            hx,
            self.flat_weights(),
            self.num_layers,
            self.batch_first,
            self.fused,
            dropout=self.dropout,
            training=self.training,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
        )

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        if not self.fused:
            text += ", fused=False"
        return text


class LSTMCell(Module):
    """One LSTM step (PyTorch's ``nn.LSTMCell``): ``(h, c)`` from ``input`` and ``hx = (h, c)``.

    ``gates = input @ W_ih^T + b_ih + h @ W_hh^T + b_hh``, then the cell of :class:`LSTM`.

    Shape:
        - input: ``(N, H_in)`` or ``(H_in,)``
        - hx: ``(h_0, c_0)``, each ``(N, H)`` or ``(H,)``; zeros if None
        - output: ``(h_1, c_1)``, each ``(N, H)`` or ``(H,)``

    Parameters: ``weight_ih (4H, H_in)``, ``weight_hh (4H, H)``, ``bias_ih``, ``bias_hh (4H,)``,
    all from ``U(-1/sqrt(H), 1/sqrt(H))``. Differentiable to any order.
    """

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        if hidden_size < 1 or input_size < 1:
            raise ValueError(
                f"LSTMCell: input_size and hidden_size must be positive, got {input_size}, {hidden_size}"
            )
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = _parameter(4 * hidden_size, input_size)
        self.weight_hh = _parameter(4 * hidden_size, hidden_size)
        if bias:
            self.bias_ih = _parameter(4 * hidden_size)
            self.bias_hh = _parameter(4 * hidden_size)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, input, hx=None):  # noqa: A002  (PyTorch's names)
        return lstm_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
