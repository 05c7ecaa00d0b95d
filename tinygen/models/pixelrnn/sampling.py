"""Sampling ``p(x) = prod_i p(x_i | x_<i)`` pixel by pixel, in raster order: naive, and with caches.

Pixel ``i`` is drawn from ``p(x_i | x_<i)``, which needs the pixels before it, so sampling
is sequential: D = H*W steps. Every step inverts the pixel's CDF at a uniform draw
``u[:, r, j]`` (:func:`draw`), so two samplers given the same uniforms draw the same images.

- **naive** (``cached=False``): the whole network over the image so far, for every pixel:
  D passes over D pixels, ``O(D^2)`` work.
- **cached** (default): each activation is computed once, when its inputs are final. Setting
  pixel ``(r, j)`` changes no activation at a pixel before it (causality), and the next
  pixel's activations need, per layer, only its own position and states already cached:

  - Row LSTM: the layer's input at ``(r, j - 1), (r, j)`` (its 1x3 mask-B tap, kept for the
    row) and the state-to-state gates of row ``r``, one 1x3 convolution of row ``r - 1``'s
    hidden state per row; the cell's ``c_prev`` is row ``r - 1``'s.
  - Diagonal BiLSTM: left-to-right, the states above ``(r - 1, j)`` and to the left
    ``(r, j - 1)``: one position of the diagonal the pixel lies on. Right-to-left, row
    ``r - 1``'s states, which the shift down gives row ``r``: they need all of row ``r - 1``,
    so they are run once per row, right to left, when row ``r - 1`` is complete.
  - Row baseline: one LSTM step per row gives the whole row's logits.

  So the cached sampler does the work of one forward pass (in D small steps) instead of D.

Both run under ``no_grad`` in the model's dtype and on its device; the draws are made in
NumPy float64 on the CPU.
"""

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.errors import ShapeError
from tinygen.models.pixelrnn.masked import MaskedConv2d
from tinygen.models.pixelrnn.models import OUTPUTS, RowBaseline


def draw(logits, uniform, output):
    """Pixel values ``(n,)`` from logits ``(n, K)`` and uniforms ``(n,)`` in [0, 1): the inverse CDF.

    ``bernoulli``: 1 where ``u < p``, ``p = sigmoid(logit) = (1 + tanh(logit / 2)) / 2`` (tanh
    never overflows). ``softmax256``: the first level whose CDF reaches ``u``, divided by 255;
    the CDF is normalised by its last entry, which is then exactly 1 > u.
    """
    logits = numpy.asarray(logits, dtype=numpy.float64)
    if output == "bernoulli":
        return (uniform < 0.5 * (1 + numpy.tanh(logits[:, 0] / 2))).astype(numpy.float64)
    cdf = numpy.cumsum(numpy.exp(logits - logits.max(1, keepdims=True)), axis=1)
    cdf /= cdf[:, -1:]
    return (cdf < uniform[:, None]).sum(1) / 255


def _array_kind(model):
    """``(xp, dtype)`` of the model's parameters."""
    data = next(iter(model.parameters())).data
    return backend.get_array_module(data), data.dtype


def _dense(conv, out_channels=slice(None)):
    """A convolution at one position: ``(matrix (O, C*kH*kW), bias (O,))`` of its (masked) kernel,
    for ``F.linear`` on the flattened window ``(n, C, kH, kW)``."""
    weight = conv.masked_weight() if isinstance(conv, MaskedConv2d) else conv.weight
    weight = weight[out_channels]
    return weight.reshape(weight.shape[0], -1), conv.bias[out_channels]


class _Naive:
    """The whole network over the image so far, for every pixel."""

    def __init__(self, model, n, height, width):
        xp, dtype = _array_kind(model)
        self.model = model
        self.image = xp.zeros((n, 1, height, width), dtype)

    def start_row(self, r):
        pass

    def logits(self, r, j):
        return self.model(Tensor(self.image))[:, :, r, j]


class _PixelRNNCache:
    """What both PixelRNN caches share: the canvas (the image, padded by conv_in's reach of 3),
    conv_in at one pixel, and the 1x1 head at one pixel."""

    def __init__(self, model, n, height, width):
        xp, dtype = _array_kind(model)
        self.xp, self.n, self.width = xp, n, width
        self.pad = model.conv_in.padding[0]  # 3: the 7x7 kernel's reach
        self.canvas = xp.zeros((n, 1, height + 2 * self.pad, width + 2 * self.pad), dtype)
        self.image = self.canvas[:, :, self.pad : self.pad + height, self.pad : self.pad + width]
        self.conv_in = _dense(model.conv_in)
        self.head = (_dense(model.head[1]), _dense(model.head[3]))

    def features_in(self, r, j):
        """``conv_in(x)`` at pixel ``(r, j)``, ``(n, 2h)``: its 7x7 window of the padded image."""
        size = 2 * self.pad + 1
        window = self.canvas[:, :, r : r + size, j : j + size].reshape(self.n, -1)
        return F.linear(Tensor(window), *self.conv_in)

    def logits_out(self, features):
        (w1, b1), (w2, b2) = self.head
        return F.linear(F.relu(F.linear(F.relu(features), w1, b1)), w2, b2)


class _RowLSTMCache(_PixelRNNCache):
    """The Row LSTM pixel by pixel (module docstring). Per layer, for the current row ``r``:
    ``inputs`` ``(n, C, W + 2)`` (column j at index j + 1, zeros at both ends), the gates
    from row ``r - 1``'s state ``ss_gates`` ``(n, 4h, W)``, and ``h``/``c`` of rows ``r - 1`` and ``r``."""

    class Layer:
        def __init__(self, layer, xp, dtype, n, width):
            self.input_to_state = _dense(layer.input_to_state)  # (4h, 3C): taps j - 1, j, j + 1 (masked)
            self.state_to_state = layer.state_to_state
            self.output = _dense(layer.output)
            shape = (n, layer.hidden, width)
            self.h_above, self.c_above = xp.zeros(shape, dtype), xp.zeros(shape, dtype)
            self.h, self.c = xp.zeros(shape, dtype), xp.zeros(shape, dtype)
            self.inputs = xp.zeros((n, layer.channels, width + 2), dtype)
            self.ss_gates = None

    def __init__(self, model, n, height, width):
        super().__init__(model, n, height, width)
        xp, dtype = _array_kind(model)
        self.layers = [self.Layer(layer, xp, dtype, n, width) for layer in model.layers]

    def start_row(self, r):
        xp = self.xp
        for layer in self.layers:
            if r > 0:
                layer.h_above, layer.c_above = layer.h, layer.c
                layer.h, layer.c = xp.zeros_like(layer.h), xp.zeros_like(layer.c)
                layer.inputs = xp.zeros_like(layer.inputs)
            conv = layer.state_to_state
            gates = F.conv2d(Tensor(layer.h_above[:, :, None, :]), conv.weight, conv.bias, padding=(0, 1))
            layer.ss_gates = gates.data[:, :, 0]

    def logits(self, r, j):
        features = self.features_in(r, j)
        for layer in self.layers:
            layer.inputs[:, :, j + 1] = features.data
            window = Tensor(layer.inputs[:, :, j : j + 3].reshape(self.n, -1))
            gates = F.linear(window, *layer.input_to_state) + Tensor(layer.ss_gates[:, :, j])
            h, c = F.lstm_cell_pointwise(gates, Tensor(layer.c_above[:, :, j]))
            layer.h[:, :, j], layer.c[:, :, j] = h.data, c.data
            features = features + F.linear(h, *layer.output)
        return self.logits_out(features)


class _DiagonalCache(_PixelRNNCache):
    """The Diagonal BiLSTM pixel by pixel (module docstring). Per layer: the current row's
    ``inputs`` ``(n, C, W)``; left-to-right ``h``/``c`` of row ``r`` ``(n, h, W + 1)`` (column j at
    index j + 1, the zero state left of column 0 at index 0) and ``h`` of row ``r - 1``;
    right-to-left ``h``/``c`` of row ``r - 1`` ``(n, h, W + 1)`` (the zero state right of the
    last column at index W) and ``h`` of row ``r - 2``."""

    class Layer:
        def __init__(self, layer, xp, dtype, n, width):
            four_h = 4 * layer.hidden
            self.input_to_state = _dense(layer.input_to_state, slice(0, four_h))
            self.reverse_input = layer.input_to_state.weight[four_h:], layer.input_to_state.bias[four_h:]
            self.state_to_state = _dense(layer.state_to_state)  # (4h, 2h): taps above, beside
            self.state_to_state_reverse = _dense(layer.state_to_state_reverse)
            self.output = _dense(layer.output)
            self.inputs = xp.zeros((n, layer.channels, width), dtype)
            state = (n, layer.hidden, width + 1)
            self.h, self.c, self.h_above = (xp.zeros(state, dtype) for _ in range(3))
            self.reverse_h, self.reverse_c, self.reverse_h_above = (xp.zeros(state, dtype) for _ in range(3))

    def __init__(self, model, n, height, width):
        super().__init__(model, n, height, width)
        xp, dtype = _array_kind(model)
        self.layers = [self.Layer(layer, xp, dtype, n, width) for layer in model.layers]

    def start_row(self, r):
        if r == 0:
            return
        xp = self.xp
        for layer in self.layers:
            layer.h_above = layer.h
            layer.h, layer.c = xp.zeros_like(layer.h), xp.zeros_like(layer.c)
            self._reverse_row(layer)
            layer.inputs = xp.zeros_like(layer.inputs)

    def _reverse_row(self, layer):
        """The right-to-left states of row ``r - 1`` from its inputs, column ``W - 1`` down to 0."""
        xp = self.xp
        layer.reverse_h_above = layer.reverse_h
        layer.reverse_h, layer.reverse_c = xp.zeros_like(layer.reverse_h), xp.zeros_like(layer.reverse_c)
        gates_row = F.conv2d(Tensor(layer.inputs[:, :, None, :]), *layer.reverse_input).data[:, :, 0]
        for k in reversed(range(self.width)):
            above_and_right = xp.stack([layer.reverse_h_above[:, :, k], layer.reverse_h[:, :, k + 1]], axis=2)
            gates = Tensor(gates_row[:, :, k]) + F.linear(Tensor(above_and_right.reshape(self.n, -1)),
                                                          *layer.state_to_state_reverse)
            h, c = F.lstm_cell_pointwise(gates, Tensor(layer.reverse_c[:, :, k + 1]))
            layer.reverse_h[:, :, k], layer.reverse_c[:, :, k] = h.data, c.data

    def logits(self, r, j):
        features = self.features_in(r, j)
        for layer in self.layers:
            layer.inputs[:, :, j] = features.data
            above_and_left = self.xp.stack([layer.h_above[:, :, j + 1], layer.h[:, :, j]], axis=2)
            gates = F.linear(features, *layer.input_to_state) + F.linear(
                Tensor(above_and_left.reshape(self.n, -1)), *layer.state_to_state)
            h, c = F.lstm_cell_pointwise(gates, Tensor(layer.c[:, :, j]))
            layer.h[:, :, j + 1], layer.c[:, :, j + 1] = h.data, c.data
            right_from_above = Tensor(layer.reverse_h[:, :, j])  # row r - 1's: the shift down
            features = features + F.linear(h + right_from_above, *layer.output)
        return self.logits_out(features)


class _RowBaselineCache:
    """The row baseline one LSTM step per row: the step reads row ``r - 1``, gives row ``r``'s logits."""

    def __init__(self, model, n, height, width):
        xp, dtype = _array_kind(model)
        self.model, self.width = model, width
        self.image = xp.zeros((n, 1, height, width), dtype)
        self.first_input = xp.zeros((n, 1, width), dtype)
        self.state, self.row_logits = None, None

    def start_row(self, r):
        previous = self.image[:, :, r - 1] if r > 0 else self.first_input  # (n, 1, W): one step of one row
        states, self.state = self.model.lstm(Tensor(previous), self.state)
        self.row_logits = self.model.out(states[:, 0]).reshape(len(previous), self.width, -1)

    def logits(self, r, j):
        return self.row_logits[:, j]


def _cache(model):
    if isinstance(model, RowBaseline):
        return _RowBaselineCache
    return _RowLSTMCache if model.arch == "row-lstm" else _DiagonalCache


def sample(model, uniform, cached=True, prefix=None, return_logits=False):
    """Images ``(n, 1, H, W)`` (NumPy, the model's dtype) drawn pixel by pixel from ``model``.

    Pixel ``(r, j)`` is :func:`draw` of its logits at ``uniform[:, r, j]`` (``uniform`` is
    ``(n, H, W)`` in [0, 1)). ``cached=False`` runs the naive sampler (module docstring).
    ``prefix`` ``(n, 1, R, W)``, when given, fixes the first R rows: the model completes
    them. ``return_logits=True`` also returns the logits ``(n, K, H, W)`` used (float64).
    """
    uniform = numpy.asarray(uniform, dtype=numpy.float64)
    if uniform.ndim != 3:
        raise ShapeError(f"pixelrnn.sample: uniform has shape {uniform.shape}, expected (n, H, W)")
    n, height, width = uniform.shape
    given_rows = 0
    if prefix is not None:
        prefix = numpy.asarray(prefix)
        fits = prefix.ndim == 4 and prefix.shape[:2] == (n, 1) and prefix.shape[3] == width
        if not fits or prefix.shape[2] > height:
            raise ShapeError(f"pixelrnn.sample: prefix has shape {prefix.shape}, expected (n, 1, R, W) = "
                             f"({n}, 1, R <= {height}, {width})")
        given_rows = prefix.shape[2]
    used = numpy.zeros((n, OUTPUTS[model.output], height, width))
    was_training = model.training
    model.eval()
    try:
        with tinygen.no_grad():
            stepper = (_cache(model) if cached else _Naive)(model, n, height, width)
            xp = backend.get_array_module(stepper.image)
            for r in range(height):
                stepper.start_row(r)
                for j in range(width):
                    logits = stepper.logits(r, j).numpy()
                    used[:, :, r, j] = logits
                    if r < given_rows:
                        value = prefix[:, 0, r, j]
                    else:
                        value = draw(logits, uniform[:, r, j], model.output)
                    stepper.image[:, 0, r, j] = xp.asarray(value, dtype=stepper.image.dtype)
    finally:
        model.train(was_training)
    images = backend.to_device(stepper.image, "cpu").copy()
    return (images, used) if return_logits else images
