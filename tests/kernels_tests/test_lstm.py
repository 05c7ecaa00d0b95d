"""LSTM kernels: the fused pointwise cell, ``lstm_cell``, the sequence ``lstm`` (fused and per step), modules.

Forward against a plain NumPy LSTM, gradcheck of everything, gradgradcheck where second order
is supported (the cell, ``lstm_cell``, ``lstm(fused=False)``), long sequences, shape errors;
the tuned cell and layer (BPTT) against the reference versions written beside them.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen
from tinygen.errors import DTypeError, ShapeError
from tinygen.kernels import lstm_cell as cell_kernel
from tinygen.kernels import lstm_layer as layer_kernel
from tinygen.kernels.lstm import lstm, lstm_cell
from tinygen.kernels.lstm_cell import lstm_cell_pointwise
from tinygen.nn.modules.rnn import LSTM, LSTMCell
from tinygen.testing import gradcheck, gradgradcheck
from tinygen.testing import strategies as tst

from .lstm_problems import leaf, np_sigmoid

# ----------------------------------------------------------------------------- NumPy reference


def np_cell(gates, c_prev):
    i, f, g, o = np.split(gates, 4, axis=1)
    c = np_sigmoid(f) * c_prev + np_sigmoid(i) * np.tanh(g)
    return np_sigmoid(o) * np.tanh(c), c


def np_lstm(x, h0, c0, params, num_layers):
    """x (T, N, F), h0/c0 (L, N, H); params PyTorch's flat list. Returns output, h_n, c_n."""
    per_layer = len(params) // num_layers
    h_n, c_n = [], []
    for layer in range(num_layers):
        w_ih, w_hh, *biases = params[layer * per_layer : (layer + 1) * per_layer]
        bias = sum(biases) if biases else 0.0
        h, c, outputs = h0[layer], c0[layer], []
        for t in range(x.shape[0]):
            h, c = np_cell(x[t] @ w_ih.T + h @ w_hh.T + bias, c)
            outputs.append(h)
        x = np.stack(outputs)
        h_n.append(h)
        c_n.append(c)
    return x, np.stack(h_n), np.stack(c_n)


# ----------------------------------------------------------------------------- strategies


@st.composite
def cell_inputs(draw, max_spatial=2):
    """(gates (N, 4H, *spatial), c_prev (N, H, *spatial)) as float64 arrays."""
    n, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=max_spatial)))
    gates = draw(tst.arrays((n, 4 * hidden, *spatial), min_value=-3, max_value=3))
    return gates, draw(tst.arrays((n, hidden, *spatial)))


@st.composite
def sequence_problems(draw, max_steps=3, max_batch=2, max_size=3, max_layers=2):
    """A random LSTM problem: sizes, flags, input, initial state (or None) and flat params."""
    steps, batch = draw(st.integers(1, max_steps)), draw(st.integers(1, max_batch))
    features, hidden = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    layers, bias = draw(st.integers(1, max_layers)), draw(st.booleans())
    batch_first, with_state = draw(st.booleans()), draw(st.booleans())
    x = draw(tst.arrays((batch, steps, features) if batch_first else (steps, batch, features)))
    state = [draw(tst.arrays((layers, batch, hidden))) for _ in range(2)] if with_state else None

    def weight(*shape):
        return draw(tst.arrays(shape, min_value=-1, max_value=1))

    params = []
    for layer in range(layers):
        params += [weight(4 * hidden, features if layer == 0 else hidden), weight(4 * hidden, hidden)]
        if bias:
            params += [weight(4 * hidden), weight(4 * hidden)]
    return dict(x=x, state=state, params=params, layers=layers, batch_first=batch_first)


def sequence_function(problem, fused):
    """``f(x, [h0, c0,] *params) -> (output, h_n, c_n)`` and its float64 leaf inputs."""
    layers, batch_first = problem["layers"], problem["batch_first"]
    with_state = problem["state"] is not None
    inputs = (
        [leaf(problem["x"])]
        + [leaf(s) for s in problem["state"] or []]
        + [leaf(p) for p in problem["params"]]
    )

    def f(x, *rest):
        hx = tuple(rest[:2]) if with_state else None
        params = rest[2:] if with_state else rest
        output, (h_n, c_n) = lstm(x, hx, params, layers, batch_first, fused=fused)
        return output, h_n, c_n

    f.__name__ = f"lstm(fused={fused})"
    return f, inputs


# ----------------------------------------------------------------------------- pointwise cell


@given(cell_inputs())
def test_pointwise_forward_matches_numpy(arrays):
    gates, c_prev = arrays
    h, c = lstm_cell_pointwise(tinygen.tensor(gates), tinygen.tensor(c_prev))
    h_expected, c_expected = np_cell(gates, c_prev)
    np.testing.assert_allclose(h.numpy(), h_expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.numpy(), c_expected, rtol=1e-12, atol=1e-14)


@given(cell_inputs())
def test_pointwise_gradcheck(arrays):
    assert gradcheck(lstm_cell_pointwise, [leaf(a) for a in arrays])


@given(cell_inputs(max_spatial=1))
def test_pointwise_gradgradcheck(arrays):
    assert gradgradcheck(lstm_cell_pointwise, [leaf(a) for a in arrays])


def test_pointwise_one_output_used():
    """Only c (or only h) reaches the loss: the other gradient is materialized as zeros."""
    rng = np.random.default_rng(0)
    gates, c_prev = leaf(rng.standard_normal((2, 8))), leaf(rng.standard_normal((2, 2)))
    assert gradcheck(lambda g, c: lstm_cell_pointwise(g, c)[1], [gates, c_prev])
    assert gradcheck(lambda g, c: lstm_cell_pointwise(g, c)[0], [gates, c_prev])
    assert gradgradcheck(lambda g, c: lstm_cell_pointwise(g, c)[1], [gates, c_prev])


def test_pointwise_saturated_gates_are_finite():
    gates = leaf(np.array([[-800.0, 800.0, -800.0, 800.0]]))
    h, c = lstm_cell_pointwise(gates, leaf(np.array([[0.5]])))
    (h + c).sum().backward()
    assert np.isfinite(gates.grad.numpy()).all()
    np.testing.assert_allclose(c.numpy(), [[0.5]])


# ----------------------------------------------------------------------------- lstm_cell


@st.composite
def lstm_cell_inputs(draw):
    batched, bias, with_state = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    n, features, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lead = (n,) if batched else ()
    x = draw(tst.arrays((*lead, features)))
    state = [draw(tst.arrays((*lead, hidden))) for _ in range(2)] if with_state else None
    weights = [
        draw(tst.arrays((4 * hidden, features), min_value=-1, max_value=1)),
        draw(tst.arrays((4 * hidden, hidden), min_value=-1, max_value=1)),
    ]
    biases = [draw(tst.arrays((4 * hidden,), min_value=-1, max_value=1)) for _ in range(2)] if bias else []
    return x, state, weights, biases


def cell_function(x, state, weights, biases):
    inputs = [leaf(a) for a in [x, *(state or []), *weights, *biases]]

    def f(x, *rest):
        hx = tuple(rest[:2]) if state is not None else None
        rest = rest[2:] if state is not None else rest
        return lstm_cell(x, hx, *rest)

    f.__name__ = "lstm_cell"
    return f, inputs


@given(lstm_cell_inputs())
def test_lstm_cell_forward_matches_numpy(drawn):
    x, state, weights, biases = drawn
    f, inputs = cell_function(x, state, weights, biases)
    h, c = f(*inputs)
    hidden = weights[1].shape[1]
    h0, c0 = state if state is not None else (np.zeros(x.shape[:-1] + (hidden,)),) * 2
    bias = sum(biases) if biases else 0.0
    gates = np.atleast_2d(x) @ weights[0].T + np.atleast_2d(h0) @ weights[1].T + bias
    h_expected, c_expected = np_cell(gates, np.atleast_2d(c0))
    assert h.shape == c.shape == x.shape[:-1] + (hidden,)
    np.testing.assert_allclose(np.atleast_2d(h.numpy()), h_expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.atleast_2d(c.numpy()), c_expected, rtol=1e-12, atol=1e-14)


@given(lstm_cell_inputs())
def test_lstm_cell_gradcheck(drawn):
    f, inputs = cell_function(*drawn)
    assert gradcheck(f, inputs)


@settings(max_examples=8)
@given(lstm_cell_inputs())
def test_lstm_cell_gradgradcheck(drawn):
    f, inputs = cell_function(*drawn)
    assert gradgradcheck(f, inputs)


# ----------------------------------------------------------------------------- lstm over a sequence


@pytest.mark.parametrize("fused", [True, False])
@given(sequence_problems())
def test_lstm_forward_matches_numpy(fused, problem):
    f, inputs = sequence_function(problem, fused)
    output, h_n, c_n = f(*inputs)
    x = problem["x"].transpose(1, 0, 2) if problem["batch_first"] else problem["x"]
    hidden = problem["params"][1].shape[1]
    zeros = np.zeros((problem["layers"], x.shape[1], hidden))
    h0, c0 = problem["state"] or (zeros, zeros)
    expected = np_lstm(x, h0, c0, problem["params"], problem["layers"])
    if problem["batch_first"]:
        expected = (expected[0].transpose(1, 0, 2), *expected[1:])
    for ours, theirs in zip((output, h_n, c_n), expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fused", [True, False])
@given(sequence_problems())
def test_lstm_gradcheck(fused, problem):
    f, inputs = sequence_function(problem, fused)
    assert gradcheck(f, inputs)


@settings(max_examples=5)
@given(sequence_problems(max_steps=2, max_batch=1, max_size=2))
def test_lstm_per_step_gradgradcheck(problem):
    f, inputs = sequence_function(problem, fused=False)
    assert gradgradcheck(f, inputs)


def test_fused_and_per_step_agree_to_round_off():
    rng = np.random.default_rng(1)
    problem = dict(
        x=rng.standard_normal((6, 3, 4)),
        state=[rng.standard_normal((2, 3, 5)) for _ in range(2)],
        params=[
            rng.uniform(-0.5, 0.5, s)
            for s in [(20, 4), (20, 5), (20,), (20,), (20, 5), (20, 5), (20,), (20,)]
        ],
        layers=2,
        batch_first=False,
    )
    weight = tinygen.tensor(rng.standard_normal((6, 3, 5)))
    results = []
    for fused in (True, False):
        f, inputs = sequence_function(problem, fused)
        output, h_n, c_n = f(*inputs)
        ((output * weight).sum() + h_n.sum() + (c_n * c_n).sum()).backward()
        results.append([output.numpy(), h_n.numpy(), c_n.numpy()] + [t.grad.numpy() for t in inputs])
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("trainable", ["input", "state", "weights", "one_bias"])
def test_fused_gradients_of_a_subset(trainable):
    """Only some inputs require grad: the fused backward computes just those, and correctly."""
    rng = np.random.default_rng(3)
    x, h0, c0 = (rng.standard_normal(s) for s in [(4, 2, 3), (1, 2, 2), (1, 2, 2)])
    params = [rng.uniform(-1, 1, s) for s in [(8, 3), (8, 2), (8,), (8,)]]
    wanted = {"input": [0], "state": [1, 2], "weights": [3, 4], "one_bias": [6]}[trainable]
    inputs = [tinygen.tensor(a, requires_grad=k in wanted) for k, a in enumerate([x, h0, c0, *params])]

    def f(x, h0, c0, *params):
        output, (h_n, c_n) = lstm(x, (h0, c0), params, 1)
        return output, c_n

    assert gradcheck(f, inputs)


def test_fused_second_order_raises():
    rng = np.random.default_rng(0)
    x = leaf(rng.standard_normal((3, 2, 2)))
    params = [leaf(rng.standard_normal(s)) for s in [(8, 2), (8, 2), (8,), (8,)]]
    output, _ = lstm(x, None, params, 1)
    (grad_x,) = tinygen.grad(output.sum(), [x], create_graph=True)  # first order works
    with pytest.raises(NotImplementedError, match="fused=False"):
        grad_x.sum().backward()


@pytest.mark.parametrize("fused", [True, False])
def test_long_sequence_has_no_recursion_limit(fused):
    """784 steps (an MNIST image pixel by pixel): forward and backward need no recursion."""
    rng = np.random.default_rng(0)
    x = tinygen.tensor(rng.standard_normal((784, 2, 1)))
    params = [leaf(rng.uniform(-0.5, 0.5, s)) for s in [(8, 1), (8, 2), (8,), (8,)]]
    output, (h_n, c_n) = lstm(x, None, params, 1, fused=fused)
    (output.sum() + c_n.sum()).backward()
    assert output.shape == (784, 2, 2)
    assert all(np.isfinite(p.grad.numpy()).all() for p in params)


# ----------------------------------------------------------------------------- modules


def test_lstm_module_parameters_and_init():
    model = LSTM(3, 5, num_layers=2)
    assert [name for name, _ in model.named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
    ]  # fmt: skip
    shapes = [p.shape for p in model.parameters()]
    assert shapes == [(20, 3), (20, 5), (20,), (20,), (20, 5), (20, 5), (20,), (20,)]
    bound = 1 / np.sqrt(5)
    for p in model.parameters():
        assert p.dtype == np.float32 and p.requires_grad
        assert np.abs(p.numpy()).max() <= bound
    assert [n for n, _ in LSTM(3, 5, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert repr(LSTM(3, 5, num_layers=2, batch_first=True)) == "LSTM(3, 5, num_layers=2, batch_first=True)"
    assert repr(LSTM(3, 5, fused=False)) == "LSTM(3, 5, fused=False)"


def test_lstm_cell_module_parameters():
    cell = LSTMCell(3, 4)
    assert [(n, p.shape) for n, p in cell.named_parameters()] == [
        ("weight_ih", (16, 3)), ("weight_hh", (16, 4)), ("bias_ih", (16,)), ("bias_hh", (16,)),
    ]  # fmt: skip
    assert [n for n, _ in LSTMCell(3, 4, bias=False).named_parameters()] == ["weight_ih", "weight_hh"]
    h, c = LSTMCell(3, 4, bias=False)(tinygen.randn(3))
    assert h.shape == c.shape == (4,)
    assert repr(LSTMCell(3, 4, bias=False)) == "LSTMCell(3, 4, bias=False)"


@pytest.mark.parametrize("fused", [True, False])
def test_lstm_module_shapes(fused):
    model = LSTM(3, 4, num_layers=2, batch_first=True, fused=fused)
    output, (h_n, c_n) = model(tinygen.randn(5, 7, 3))
    assert output.shape == (5, 7, 4) and h_n.shape == c_n.shape == (2, 5, 4)
    output, (h_n, c_n) = model(tinygen.randn(7, 3))  # unbatched: (L, H_in)
    assert output.shape == (7, 4) and h_n.shape == c_n.shape == (2, 4)
    output, (h_n, c_n) = model(tinygen.randn(7, 3), (tinygen.zeros(2, 4), tinygen.zeros(2, 4)))
    assert output.shape == (7, 4)


# ----------------------------------------------------------------------------- errors


def test_shape_errors_name_the_argument():
    model = LSTM(3, 4, num_layers=2)
    with pytest.raises(ShapeError, match=r"input.shape is \(2, 3, 5\)"):
        model(tinygen.randn(2, 3, 5))
    with pytest.raises(ShapeError, match=r"input.shape is \(2, 3, 3, 1\)"):
        model(tinygen.randn(2, 3, 3, 1))
    with pytest.raises(ShapeError, match=r"hx\[0\] \(h_0\).shape is \(1, 3, 4\), expected \(2, 3, 4\)"):
        model(tinygen.randn(5, 3, 3), (tinygen.zeros(1, 3, 4), tinygen.zeros(2, 3, 4)))
    with pytest.raises(ShapeError, match=r"hx\[1\] \(c_0\).shape is \(2, 3, 5\)"):
        model(tinygen.randn(5, 3, 3), (tinygen.zeros(2, 3, 4), tinygen.zeros(2, 3, 5)))
    with pytest.raises(TypeError, match="hx must be a tuple"):
        model(tinygen.randn(5, 3, 3), tinygen.zeros(2, 3, 4))
    with pytest.raises(DTypeError, match="dtype"):
        model(tinygen.randn(5, 3, 3).double())
    with pytest.raises(ValueError, match="got 3 params for num_layers=1"):
        lstm(tinygen.randn(5, 3, 3), None, list(model.parameters())[:3], 1)
    with pytest.raises(ShapeError, match=r"input.shape is \(5, 3, 2\), expected last dim = params\[0\]"):
        lstm(tinygen.randn(5, 3, 2), None, list(model.parameters())[:4], 1)
    with pytest.raises(ShapeError, match=r"params\[4\].shape is \(16, 3\), expected \(16, 4\)"):
        lstm(tinygen.randn(5, 3, 3), None, list(model.parameters())[:4] * 2, 2)
    cell = LSTMCell(3, 4)
    with pytest.raises(ShapeError, match=r"input.shape is \(5, 2\), expected \(N, F\)"):
        cell(tinygen.randn(5, 2))
    with pytest.raises(ShapeError, match=r"hx\[0\].shape is \(4,\), expected \(5, 4\)"):
        cell(tinygen.randn(5, 3), (tinygen.zeros(4), tinygen.zeros(4)))
    with pytest.raises(ShapeError, match=r"gates.shape is \(2, 6\)"):
        lstm_cell_pointwise(tinygen.randn(2, 6), tinygen.randn(2, 1))
    with pytest.raises(ShapeError, match=r"c_prev.shape is \(2, 3\), expected \(2, 2\)"):
        lstm_cell_pointwise(tinygen.randn(2, 8), tinygen.randn(2, 3))


# ----------------------------------------------------------------------------- tuned against reference


@given(cell_inputs(), st.data())
def test_tuned_cell_equals_its_reference(inputs, data):
    gates, c_prev = inputs
    grad_h, grad_c = (data.draw(tst.arrays(c_prev.shape)) for _ in range(2))
    h, c, acts, tanh_c = cell_kernel.pointwise_forward(np, gates, c_prev)
    h_ref, c_ref, cell = cell_kernel.cell_forward_reference(np, gates, c_prev)
    grads = cell_kernel.pointwise_backward(np, acts, c_prev, tanh_c, h, grad_h, grad_c)
    grads_ref = cell_kernel.cell_backward_reference(np, cell, c_prev, grad_h, grad_c)
    for got, want in zip((h, c, *grads), (h_ref, c_ref, *grads_ref), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@st.composite
def layer_problems(draw):
    """One layer's arrays, float64: x, h0, c0, w_ih, w_hh, bias or None, w_hr or None, and upstream grads."""
    steps, batch = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    features, hidden = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    proj = draw(st.integers(0, hidden - 1))
    out = proj or hidden

    def array(*shape):
        return draw(tst.arrays(shape, min_value=-1, max_value=1))

    x, h0, c0 = array(steps, batch, features), array(batch, out), array(batch, hidden)
    w_ih, w_hh = array(4 * hidden, features), array(4 * hidden, out)
    bias = array(4 * hidden) if draw(st.booleans()) else None
    w_hr = array(proj, hidden) if proj else None
    upstream = array(steps, batch, out), array(batch, out), array(batch, hidden)
    return (x, h0, c0, w_ih, w_hh, bias, w_hr), upstream


@given(layer_problems())
def test_tuned_layer_forward_and_bptt_equal_their_reference(problem):
    (x, h0, c0, w_ih, w_hh, bias, w_hr), upstream = problem
    saved = layer_kernel.layer_forward(np, x, h0, c0, w_ih, w_hh, bias, w_hr)  # hs, cs, acts, tanh_cs, rs
    grads = layer_kernel.layer_backward(np, (True,) * 7, *upstream, x, *saved, w_ih, w_hh, w_hr)
    hs, cs = saved[:2]
    outputs_ref, grads_ref = layer_kernel.layer_reference(np, x, h0, c0, w_ih, w_hh, bias, w_hr, *upstream)
    for got, want in zip((hs[1:], hs[-1], cs[-1]), outputs_ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    names = ("x", "h0", "c0", "w_ih", "w_hh", "bias", "w_hr")
    for name, got, want in zip(names, grads, grads_ref, strict=True):
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11, err_msg=f"gradient of {name}")
