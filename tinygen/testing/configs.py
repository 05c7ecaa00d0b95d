"""Hypothesis strategies for the configurations of tinygen's larger ops (re-exported by ``strategies``).

- ``conv_configs`` / ``conv_transpose_configs``: valid conv2d / conv_transpose2d settings
  (groups, strides, paddings, dilations, output_padding, odd sizes), and ``conv_inputs``
  for an input, kernel and bias that fit one.
- ``masked_conv_configs``: PixelCNN's masked convolutions (mask A or B, "same" padding).
- ``lstm_configs`` / ``lstm_inputs``: LSTM sizes (layers, directions, projection,
  unbatched or batch-first input, with or without an initial state) and arrays that fit.
- ``batch_norm_inputs``: ``(x, weight, bias)`` whose every channel has a variance well
  away from 0, where batch norm's ``1/sqrt(var + eps)`` and its derivatives blow up.
"""

import dataclasses

import numpy

try:
    from hypothesis import strategies as st
except ImportError as err:
    from tinygen.testing import hypothesis_missing

    raise hypothesis_missing("tinygen.testing.strategies") from err


def _arrays(draw, shape, **kwargs):
    from tinygen.testing.strategies import arrays  # strategies imports this module

    return draw(arrays(shape, **kwargs))


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """One convolution to test: sizes and the keyword arguments of conv2d or conv_transpose2d.

    ``transposed`` says which: the weight is ``(in_channels, out_channels/groups, kH, kW)``
    for conv_transpose2d and ``(out_channels, in_channels/groups, kH, kW)`` for conv2d.
    Pairs are ``(height, width)``; ``output_padding`` is used by conv_transpose2d only.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    input_size: tuple
    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    output_padding: tuple = (0, 0)
    transposed: bool = False

    @property
    def input_shape(self):
        return (self.batch, self.in_channels, *self.input_size)

    @property
    def weight_shape(self):
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def kwargs(self):
        """``stride``, ``padding``, ``dilation``, ``groups`` (and ``output_padding`` if transposed)."""
        kwargs = dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)
        if self.transposed:
            kwargs["output_padding"] = self.output_padding
        return kwargs


def _channels_and_geometry(
    draw, max_batch, max_group_channels, max_groups, max_kernel, max_stride, max_padding, max_dilation
):
    groups = draw(st.integers(1, max_groups))
    side = st.integers(1, max_kernel)
    return dict(
        batch=draw(st.integers(1, max_batch)),
        in_channels=groups * draw(st.integers(1, max_group_channels)),
        out_channels=groups * draw(st.integers(1, max_group_channels)),
        groups=groups,
        kernel_size=(draw(side), draw(side)),
        stride=(draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))),
        padding=(draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding))),
        dilation=(draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation))),
    )


@st.composite
def conv_configs(
    draw,
    max_batch=2,
    max_group_channels=2,
    max_groups=2,
    max_kernel=3,
    max_stride=2,
    max_padding=2,
    max_dilation=2,
    max_size=6,
):
    """Valid conv2d configurations (:class:`ConvConfig`): every output size is at least 1.

    Input sides are drawn from what the padded, dilated kernel allows up to ``max_size``, so
    odd sizes, sizes a stride does not divide, and kernels larger than the unpadded input
    (made valid by padding) all come up.
    """
    c = _channels_and_geometry(
        draw, max_batch, max_group_channels, max_groups, max_kernel, max_stride, max_padding, max_dilation
    )
    size = []
    for k, p, d in zip(c["kernel_size"], c["padding"], c["dilation"], strict=True):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the dilated kernel must fit the padded input
        size.append(draw(st.integers(smallest, max(smallest, max_size))))
    return ConvConfig(input_size=tuple(size), **c)


@st.composite
def conv_transpose_configs(
    draw,
    max_batch=2,
    max_group_channels=2,
    max_groups=2,
    max_kernel=3,
    max_stride=2,
    max_padding=2,
    max_dilation=2,
    max_size=4,
):
    """Valid conv_transpose2d configurations (:class:`ConvConfig` with ``transposed=True``).

    ``output_padding`` is below stride or dilation (PyTorch's rule), and the padding never
    crops the whole output: ``(H - 1)*s - 2*p + d*(k - 1) + output_padding + 1 >= 1``.
    """
    c = _channels_and_geometry(
        draw, max_batch, max_group_channels, max_groups, max_kernel, max_stride, 0, max_dilation
    )
    size, padding, output_padding = [], [], []
    for k, s, d in zip(c["kernel_size"], c["stride"], c["dilation"], strict=True):
        size.append(draw(st.integers(1, max_size)))
        output_padding.append(draw(st.integers(0, max(s, d) - 1)))
        full = (size[-1] - 1) * s + d * (k - 1) + output_padding[-1] + 1  # the output size before cropping
        padding.append(draw(st.integers(0, min(max_padding, (full - 1) // 2))))
    c["padding"] = tuple(padding)
    return ConvConfig(input_size=tuple(size), output_padding=tuple(output_padding), transposed=True, **c)


@st.composite
def conv_inputs(draw, configs=None, bias=None, **array_kwargs):
    """``(config, input, weight, bias)`` for one drawn configuration (``conv_configs()`` if None).

    ``bias`` is an ``(out_channels,)`` array, or None: always with ``bias=True``, never
    with ``False``, drawn with ``None``. Call the op as ``F.conv2d(x, w, b, **config.kwargs)``
    (``conv_transpose2d`` for a transposed config); the arrays come from ``arrays``.
    """
    config = draw(conv_configs() if configs is None else configs)
    with_bias = draw(st.booleans()) if bias is None else bias
    x = _arrays(draw, config.input_shape, **array_kwargs)
    weight = _arrays(draw, config.weight_shape, **array_kwargs)
    b = _arrays(draw, (config.out_channels,), **array_kwargs) if with_bias else None
    return config, x, weight, b


@dataclasses.dataclass(frozen=True)
class MaskedConvConfig:
    """A PixelCNN masked convolution: a stride-1 conv2d whose kernel only sees pixels before the centre.

    Pixels are ordered row by row. Mask ``"A"`` (first layer) hides the centre too, so output
    pixel ``(i, j)`` depends only on input pixels strictly before it; mask ``"B"`` (later
    layers) lets it see ``(i, j)`` itself. The padding keeps the size: ``dilation*(k - 1)/2``.
    """

    batch: int
    in_channels: int
    out_channels: int
    input_size: tuple
    kernel_size: tuple  # odd sides
    dilation: tuple
    mask_type: str  # "A" or "B"

    @property
    def input_shape(self):
        return (self.batch, self.in_channels, *self.input_size)

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels, *self.kernel_size)

    @property
    def kwargs(self):
        """conv2d's ``stride``, ``padding`` and ``dilation``: the output has the input's size."""
        padding = tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation, strict=True))
        return dict(stride=1, padding=padding, dilation=self.dilation)

    def mask(self):
        """A float64 array of ``weight_shape``: 1 where the kernel may look, 0 elsewhere."""
        k_h, k_w = self.kernel_size
        rows, cols = numpy.meshgrid(numpy.arange(k_h), numpy.arange(k_w), indexing="ij")
        centre_row, centre_col = k_h // 2, k_w // 2
        before = (rows < centre_row) | ((rows == centre_row) & (cols < centre_col))
        if self.mask_type == "B":
            before |= (rows == centre_row) & (cols == centre_col)
        return numpy.broadcast_to(before.astype(numpy.float64), self.weight_shape).copy()


@st.composite
def masked_conv_configs(
    draw, max_batch=2, max_channels=3, max_kernel=5, max_dilation=2, max_size=6, mask_types="AB"
):
    """:class:`MaskedConvConfig`: odd kernel sides up to ``max_kernel``, a mask type from ``mask_types``."""
    side = st.integers(0, (max_kernel - 1) // 2).map(lambda half: 2 * half + 1)
    return MaskedConvConfig(
        batch=draw(st.integers(1, max_batch)),
        in_channels=draw(st.integers(1, max_channels)),
        out_channels=draw(st.integers(1, max_channels)),
        input_size=(draw(st.integers(1, max_size)), draw(st.integers(1, max_size))),
        kernel_size=(draw(side), draw(side)),
        dilation=(draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation))),
        mask_type=draw(st.sampled_from(tuple(mask_types))),
    )


@dataclasses.dataclass(frozen=True)
class LSTMConfig:
    """The sizes of one ``nn.LSTM`` / ``kernels.lstm.lstm`` call, and the shapes that follow from them.

    ``batch`` is None for an unbatched ``(steps, input_size)`` input. ``R = proj_size or
    hidden_size`` is the size of h; ``D`` = 2 if bidirectional else 1.
    """

    steps: int
    batch: int | None
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    bidirectional: bool
    proj_size: int = 0

    @property
    def directions(self):
        return 2 if self.bidirectional else 1

    @property
    def input_shape(self):
        if self.batch is None:
            return (self.steps, self.input_size)
        if self.batch_first:
            return (self.batch, self.steps, self.input_size)
        return (self.steps, self.batch, self.input_size)

    @property
    def state_shapes(self):
        """``(h_0.shape, c_0.shape)``: ``(D*num_layers, [N,] R)`` and ``(D*num_layers, [N,] H)``."""
        lead = (self.directions * self.num_layers,) + (() if self.batch is None else (self.batch,))
        return (*lead, self.proj_size or self.hidden_size), (*lead, self.hidden_size)

    @property
    def weight_shapes(self):
        """Parameter shapes in PyTorch's ``_flat_weights`` order.

        Per layer and direction: ``w_ih (4H, in)``, ``w_hh (4H, R)``, then ``b_ih, b_hh (4H,)``
        with bias, and ``w_hr (P, H)`` when ``proj_size = P > 0``.
        """
        gates, out_size = 4 * self.hidden_size, self.proj_size or self.hidden_size
        shapes = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.directions * out_size
            for _ in range(self.directions):
                shapes += [(gates, layer_input), (gates, out_size)]
                shapes += [(gates,), (gates,)] if self.bias else []
                shapes += [(self.proj_size, self.hidden_size)] if self.proj_size else []
        return shapes

    @property
    def kwargs(self):
        """``nn.LSTM``'s arguments: ``nn.LSTM(**config.kwargs)``."""
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                    bias=self.bias, batch_first=self.batch_first, bidirectional=self.bidirectional,
                    proj_size=self.proj_size)  # fmt: skip


@st.composite
def lstm_configs(draw, max_steps=3, max_batch=2, max_size=3, max_layers=2, bidirectional=None, proj=None):
    """:class:`LSTMConfig`; the batch is None (an unbatched input) a part of the time.

    ``bidirectional`` and ``proj`` (a ``proj_size`` in ``[1, hidden)``) are True, False, or
    None to draw them.
    """
    with_proj = draw(st.booleans()) if proj is None else proj
    hidden = draw(st.integers(2 if with_proj else 1, max(max_size, 2)))
    return LSTMConfig(
        steps=draw(st.integers(1, max_steps)),
        batch=draw(st.one_of(st.none(), st.integers(1, max_batch))),
        input_size=draw(st.integers(1, max_size)),
        hidden_size=hidden,
        num_layers=draw(st.integers(1, max_layers)),
        bias=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bidirectional=draw(st.booleans()) if bidirectional is None else bidirectional,
        proj_size=draw(st.integers(1, hidden - 1)) if with_proj else 0,
    )


@st.composite
def lstm_inputs(draw, configs=None, with_state=None):
    """``(config, x, state, weights)``: ``state`` ``[h_0, c_0]`` or None, ``weights`` PyTorch's flat list.

    Weights are drawn in [-1, 1], inputs and states in [-2, 2]; call the op as
    ``F.lstm(x, state, weights, config.num_layers, config.batch_first,
    bidirectional=config.bidirectional, proj_size=config.proj_size)``.
    """
    config = draw(lstm_configs() if configs is None else configs)
    x = _arrays(draw, config.input_shape)
    use_state = draw(st.booleans()) if with_state is None else with_state
    state = [_arrays(draw, shape) for shape in config.state_shapes] if use_state else None
    weights = [_arrays(draw, shape, min_value=-1.0, max_value=1.0) for shape in config.weight_shapes]
    return config, x, state, weights


@st.composite
def batch_norm_inputs(
    draw, max_batch=3, max_channels=3, max_side=3, ndim=None, min_value=-2.0, max_value=2.0
):
    """``(x, weight, bias)`` for batch norm: x ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` (``ndim``).

    Each channel's ``m = N*L`` (or ``N*H*W``) values, at least 2, are distinct, at least
    ``g = (max_value - min_value) / (2 (m - 1))`` apart, so its (biased) variance is at least
    that of an even grid of step g: ``g**2 (m**2 - 1) / 12 >= (max_value - min_value)**2 / 48``
    (1/3 for the default range), far from where ``1/sqrt(var + eps)`` blows up.
    """
    ndim = draw(st.sampled_from((2, 3, 4))) if ndim is None else ndim
    channels = draw(st.integers(1, max_channels))
    spatial = tuple(draw(st.integers(1, max_side)) for _ in range(ndim - 2))
    batch = draw(st.integers(1, max_batch))
    if batch * int(numpy.prod(spatial, dtype=numpy.int64)) < 2:
        batch = 2
    per_channel = [
        _arrays(draw, (batch, *spatial), min_value=min_value, max_value=max_value, distinct=True)
        for _ in range(channels)
    ]
    x = numpy.stack(per_channel, axis=1)
    weight = _arrays(draw, (channels,), min_value=0.5, max_value=2.0)
    bias = _arrays(draw, (channels,))
    return x, weight, bias
