"""The networks: PixelRNN (Row LSTM or Diagonal BiLSTM layers) and the row-by-row LSTM baseline.

Each maps an image ``x`` ``(N, 1, H, W)`` to logits ``(N, K, H, W)``: at pixel ``i`` the
parameters of ``p(x_i | x_<i)``, for all pixels in one pass (training and the exact
likelihood need no loop over pixels; only sampling does). ``K = 1`` with
``output="bernoulli"``: a logit, ``p(x_i = 1 | x_<i) = sigmoid(logit)``, on binarized
images; ``K = 256`` with ``output="softmax256"``: a softmax over the grey levels
``0 .. 255`` of a grey image (its values ``level / 255``).

``-log p(x)`` is then a sum over pixels (:func:`negative_log_likelihood`), exact: no bound.
"""

import math

import tinygen.nn.functional as F
from tinygen import backend, nn
from tinygen.errors import ShapeError
from tinygen.models.pixelrnn.layers import DiagonalBiLSTMLayer, RowLSTMLayer, shift_down
from tinygen.models.pixelrnn.masked import MaskedConv2d
from tinygen.models.recipe import check_count

ARCHITECTURES = ("row-lstm", "diagonal-bilstm", "row-baseline")
OUTPUTS = {"bernoulli": 1, "softmax256": 256}  # output -> K, the logits per pixel


def _check_output(owner, output):
    if output not in OUTPUTS:
        raise ValueError(f"{owner}: output is {output!r}, expected one of {', '.join(OUTPUTS)}")
    return output


def _check_image(owner, x, width=None):
    if x.ndim != 4 or x.shape[1] != 1 or (width is not None and x.shape[3] != width):
        expected = f"(N, 1, H, {width})" if width is not None else "(N, 1, H, W)"
        raise ShapeError(f"{owner}: input has shape {tuple(x.shape)}, expected {expected}: one channel")


class PixelRNN(nn.Module):
    """PixelRNN (van den Oord et al. 2016, Table 1): a 7x7 mask-A conv, LSTM layers, a 1x1 head.

    ``arch`` is ``"row-lstm"`` (:class:`RowLSTMLayer`) or ``"diagonal-bilstm"``
    (:class:`DiagonalBiLSTMLayer`); each layer has an LSTM state of ``hidden = h`` channels
    and keeps a residual stream of ``2h``::

        conv_in   MaskedConv2d(1, 2h, 7, "A")            sees only pixels before (i, j)
        layers    L x [Row LSTM | Diagonal BiLSTM], each x + conv1x1(state)
        head      ReLU, Conv2d(2h, 2h, 1), ReLU, Conv2d(2h, K, 1)

    The head's 1x1 convolutions are the paper's two "ReLU + 1x1 conv, mask B" layers; with one
    colour channel a 1x1 mask B is all ones, so they are plain. Works at any image size.

    Shape: ``(N, 1, H, W) -> (N, K, H, W)``, ``K = 1`` (bernoulli) or 256 (softmax256).
    """

    def __init__(self, arch="row-lstm", layers=2, hidden=16, output="bernoulli"):
        super().__init__()
        if arch not in ("row-lstm", "diagonal-bilstm"):
            raise ValueError(f"PixelRNN: arch is {arch!r}, expected 'row-lstm' or 'diagonal-bilstm'")
        self.arch, self.output = arch, _check_output("PixelRNN", output)
        self.hidden = check_count("PixelRNN", "hidden", hidden)
        self.num_layers = check_count("PixelRNN", "layers", layers)
        channels = 2 * self.hidden
        layer = RowLSTMLayer if arch == "row-lstm" else DiagonalBiLSTMLayer
        self.conv_in = MaskedConv2d(1, channels, 7, "A")
        self.layers = nn.ModuleList([layer(channels, self.hidden) for _ in range(self.num_layers)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, OUTPUTS[output], 1))

    def forward(self, x):
        _check_image("PixelRNN", x)
        features = self.conv_in(x)
        for layer in self.layers:
            features = layer(features)
        return self.head(features)

    def extra_repr(self):
        return f"arch={self.arch!r}, layers={self.num_layers}, hidden={self.hidden}, output={self.output!r}"


class RowBaseline(nn.Module):
    """The row-by-row LSTM baseline: ``nn.LSTM`` reads the image one row per time step.

    Step ``r`` reads row ``r - 1`` (zeros at ``r = 0``) and a ``Linear`` turns the state into
    the logits of all ``W`` pixels of row ``r``::

        states = LSTM(W, hidden, layers)(shift_down(rows))      (N, H, hidden)
        logits = Linear(hidden, W * K)(states)                  (N, H, W, K) -> (N, K, H, W)

    **What it models**: ``p(x) = prod_r prod_j p(x_rj | rows < r)``: the pixels of a row are
    independent given the rows above. That is a proper density, with an exact likelihood,
    but a weaker one than PixelRNN's ``p(x_rj | x_<rj)``: it cannot make the pixels of a row
    agree with each other (a stroke's edge within the row), only with the rows above.
    **Why it is fast**: H recurrent steps instead of H*W, each one matrix product of the
    fused ``nn.LSTM``; and it samples a whole row per step.

    Shape: ``(N, 1, H, width) -> (N, K, H, width)``.
    """

    def __init__(self, width, layers=1, hidden=64, output="bernoulli"):
        super().__init__()
        self.width = check_count("RowBaseline", "width", width)
        self.hidden = check_count("RowBaseline", "hidden", hidden)
        self.num_layers = check_count("RowBaseline", "layers", layers)
        self.output = _check_output("RowBaseline", output)
        self.lstm = nn.LSTM(self.width, self.hidden, self.num_layers, batch_first=True)
        self.out = nn.Linear(self.hidden, self.width * OUTPUTS[output])

    def forward(self, x):
        _check_image("RowBaseline", x, self.width)
        n, _, height, width = x.shape
        states, _ = self.lstm(shift_down(x)[:, 0])  # (N, H, hidden): step r has read rows 0 .. r - 1
        return self.out(states).reshape(n, height, width, -1).permute(0, 3, 1, 2)

    def extra_repr(self):
        return (f"width={self.width}, layers={self.num_layers}, hidden={self.hidden}, "
                f"output={self.output!r}")


def make_model(arch, image_shape, layers=2, hidden=16, output="bernoulli"):
    """The network ``arch`` (one of ``ARCHITECTURES``) for images of ``image_shape = (1, H, W)``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"pixelrnn: arch is {arch!r}, expected one of {', '.join(ARCHITECTURES)}")
    if len(image_shape) != 3 or image_shape[0] != 1:
        raise ShapeError(f"pixelrnn: images have shape {tuple(image_shape)}, expected (1, H, W): one channel "
                         "(binarized or grey; RGB's channel masks are not implemented)")
    if arch == "row-baseline":
        return RowBaseline(image_shape[2], layers, hidden, output)
    return PixelRNN(arch, layers, hidden, output)


def grey_levels(x):
    """The grey levels ``round(255 x)``, int64 ``(N, H, W)``, of images ``x`` holding ``level / 255``."""
    xp = backend.get_array_module(x.data)
    return xp.rint(x.data[:, 0] * 255).astype(xp.int64)


def negative_log_likelihood(logits, x, output):
    """``-log p(x)`` per image, ``(N,)`` nats: ``-sum_i log p(x_i | x_<i)``, summed over the pixels.

    ``bernoulli``: the BCE of the logits ``(N, 1, H, W)`` against the 0/1 image ``x``.
    ``softmax256``: the cross entropy of the logits ``(N, 256, H, W)`` against the grey
    levels of ``x`` (:func:`grey_levels`): the discrete likelihood of the 8-bit image.
    """
    if output == "bernoulli":
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        loss = F.cross_entropy(logits, grey_levels(x), reduction="none")
    return loss.reshape(loss.shape[0], -1).sum(1)


def nll(model, x):
    """``-log p(x)`` per image under ``model``, ``(N,)`` nats (:func:`negative_log_likelihood`)."""
    return negative_log_likelihood(model(x), x, model.output)


def bits_per_dim(nats, pixels):
    """Nats per image as bits per pixel: ``nats / (D ln 2)``."""
    return nats / (pixels * math.log(2))
