"""The strategies: values in range and away from kinks, shrinking to distinct values, joint draws, configs."""

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.testing import gradcheck
from tinygen.testing import strategies as tst

FIND = settings(database=None, derandomize=True, max_examples=200)


@given(tst.arrays(tst.shapes(min_dims=1), away_from=(0.0, 1.0), margin=0.1))
def test_arrays_keep_away_from_kinks(x):
    assert x.dtype == np.float64
    assert (np.abs(x) >= 0.1).all() and (np.abs(x - 1.0) >= 0.1).all()


@given(tst.arrays(tst.shapes(min_dims=1, max_side=6), distinct=True))
def test_distinct_arrays_have_no_near_ties(x):
    values = np.sort(x.ravel())
    assert (np.diff(values) > 1e-3).all()


@given(tst.broadcastable_shapes())
def test_broadcastable_shapes_broadcast(shapes):
    np.broadcast_shapes(*shapes)


@given(tst.tensors(tst.shapes(), min_value=0.2))
def test_tensors_are_float64_leaves_requiring_grad(x):
    assert x.requires_grad and x.is_leaf and x.dtype == np.float64
    assert (x.data >= 0.2).all()


@given(st.data())
def test_strategies_drive_a_user_gradcheck(data):
    x = data.draw(tst.tensors(tst.shapes(max_dims=2), min_value=0.2, max_value=3.0))
    assert gradcheck(lambda t: t.log() * t.sqrt(), [x])


@given(
    tst.arrays(tst.shapes(min_dims=1, max_dims=3, max_side=6), min_value=0.1, max_value=2.0, distinct=True)
)
def test_distinct_arrays_stay_in_range(x):
    assert x.min() >= 0.1 and x.max() <= 2.0


@given(tst.arrays(tst.shapes(min_dims=1), min_value=-1.0, max_value=1.0, away_from=(0.95,), margin=0.1))
def test_away_from_stays_in_range(x):
    assert x.min() >= -1.0 and x.max() <= 1.0 and (np.abs(x - 0.95) >= 0.1).all()


def test_a_shrunk_array_is_spread_and_its_values_shrink():
    """The smallest array with a value above 1.5 still holds distinct values, not one repeated number."""
    x = find(tst.arrays((6,)), lambda a: a.max() > 1.5, settings=FIND)
    assert len(np.unique(x)) == 6
    y = find(tst.arrays((6,)), lambda a: True, settings=FIND)  # the simplest array of all: u = 0
    np.testing.assert_allclose(y, -2.0 + 4.0 * ((np.arange(6) * tst.GOLDEN) % 1.0))


def test_arrays_drawn_together_stay_different_after_shrinking():
    a, b = find(tst.same_shape_arrays(2, (2, 2)), lambda pair: True, settings=FIND)
    assert a.shape == b.shape == (2, 2) and not np.isclose(a, b).any()
    a, b = find(tst.broadcast_arrays(2, min_dims=1, max_dims=2, max_side=2), lambda pair: True, settings=FIND)
    assert not np.isclose(a[..., :1], b[..., :1]).any()


@given(tst.broadcast_arrays(3, max_dims=3, distinct=True))
def test_broadcast_arrays_broadcast_and_are_distinct_across(arrays):
    np.broadcast_shapes(*(a.shape for a in arrays))
    values = np.sort(np.concatenate([a.ravel() for a in arrays]))
    assert (np.diff(values) > 1e-3).all()


@given(tst.to_tensors(tst.same_shape_arrays(2, tst.shapes(max_dims=2))))
def test_to_tensors_makes_leaves(pair):
    assert all(isinstance(t, tinygen.Tensor) and t.requires_grad for t in pair)


def test_value_arguments_are_checked():
    with pytest.raises(ValueError, match="arrays: min_value is 1.0, expected less than max_value = 0.0"):
        find(tst.arrays((2,), min_value=1.0, max_value=0.0), lambda a: True, settings=FIND)
    with pytest.raises(ValueError, match="distinct=True and away_from"):
        find(tst.same_shape_arrays(2, (2,), distinct=True, away_from=(0.0,)), lambda a: True, settings=FIND)


@given(tst.conv_inputs(tst.conv_transpose_configs(max_size=3), bias=True))
def test_conv_inputs_fit_their_config(drawn):
    config, x, w, b = drawn
    out = F.conv_transpose2d(tinygen.tensor(x), tinygen.tensor(w), tinygen.tensor(b), **config.kwargs)
    assert out.shape[:2] == (config.batch, config.out_channels)


@given(tst.masked_conv_configs())
def test_masked_convs_keep_the_size_and_only_see_earlier_pixels(config):
    mask = config.mask()
    assert mask.shape == config.weight_shape
    k_h, k_w = config.kernel_size
    centre = mask[0, 0, k_h // 2, k_w // 2]
    assert centre == (1.0 if config.mask_type == "B" else 0.0)
    assert not mask[:, :, k_h // 2 + 1 :].any() and not mask[:, :, k_h // 2, k_w // 2 + 1 :].any()
    x = np.zeros(config.input_shape)
    x[:, :, -1, -1] = 1.0  # the last pixel: no other output pixel may see it
    out = F.conv2d(tinygen.tensor(x), tinygen.tensor(np.ones(config.weight_shape) * mask), **config.kwargs)
    assert out.shape[2:] == config.input_size
    assert not out.numpy()[:, :, :-1].any() and not out.numpy()[:, :, -1, :-1].any()


@given(tst.lstm_configs())
def test_lstm_configs_match_nn_lstm(config):
    module = nn.LSTM(**config.kwargs)
    assert [tuple(p.shape) for p in module.flat_weights()] == config.weight_shapes
    h0, c0 = (tinygen.zeros(*shape) for shape in config.state_shapes)
    output, (h_n, c_n) = module(tinygen.zeros(*config.input_shape), (h0, c0))
    assert h_n.shape == config.state_shapes[0] and c_n.shape == config.state_shapes[1]


@settings(max_examples=5)
@given(tst.lstm_inputs(tst.lstm_configs(max_layers=1, bidirectional=False, proj=False)))
def test_lstm_inputs_feed_the_functional_lstm(drawn):
    config, x, state, weights = drawn
    tensors = [tinygen.tensor(w) for w in weights]
    hx = None if state is None else [tinygen.tensor(s) for s in state]
    F.lstm(tinygen.tensor(x), hx, tensors, config.num_layers, config.batch_first)


@given(tst.batch_norm_inputs())
def test_batch_norm_inputs_keep_every_channel_variance_away_from_0(drawn):
    x, weight, bias = drawn
    assert weight.shape == bias.shape == (x.shape[1],)
    per_channel = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    assert per_channel.shape[1] >= 2
    assert (per_channel.var(axis=1) >= 4.0**2 / 48 - 1e-12).all()
