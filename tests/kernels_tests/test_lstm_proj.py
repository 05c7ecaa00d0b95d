"""The sequence ``lstm`` with ``proj_size`` (PyTorch's LSTMP): ``h_t = (o_t * tanh(c_t)) @ W_hr^T``.

Forward against a plain NumPy LSTMP (layers, both directions), gradcheck fused and per step,
gradgradcheck per step, fused == per step to round-off, the fused backward of a subset of the
inputs, the module's parameters, shapes and repr, and the errors (``proj_size`` out of range
or not an int, ``h_0`` / ``c_0`` of the wrong size, wrong ``w_hr``).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen
from tinygen.errors import ShapeError
from tinygen.kernels.lstm import lstm
from tinygen.nn.modules.rnn import LSTM
from tinygen.testing import gradcheck, gradgradcheck
from tinygen.testing import strategies as tst


def leaf(array):
    return tinygen.tensor(array, requires_grad=True)


# ----------------------------------------------------------------------------- NumPy reference


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_projected_lstm(x, h0, c0, params, num_layers, directions):
    """x (T, N, F), h0 (D L, N, P), c0 (D L, N, H); params PyTorch's flat list with w_hr last per group.

    Each direction walks its own steps (the reverse one t = T-1 .. 0), no flips.
    """
    per_group = len(params) // (directions * num_layers)
    steps = x.shape[0]
    h_n, c_n = [], []
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            group = directions * layer + direction
            w_ih, w_hh, *biases, w_hr = params[group * per_group : (group + 1) * per_group]
            bias = sum(biases) if biases else 0.0
            h, c, out = h0[group], c0[group], [None] * steps
            for t in range(steps) if direction == 0 else range(steps - 1, -1, -1):
                i, f, g, o = np.split(x[t] @ w_ih.T + h @ w_hh.T + bias, 4, axis=-1)
                c = np_sigmoid(f) * c + np_sigmoid(i) * np.tanh(g)
                h = (np_sigmoid(o) * np.tanh(c)) @ w_hr.T
                out[t] = h
            outputs.append(np.stack(out))
            h_n.append(h)
            c_n.append(c)
        x = np.concatenate(outputs, axis=-1)
    return x, np.stack(h_n), np.stack(c_n)


# ----------------------------------------------------------------------------- strategies


@st.composite
def projected_problems(draw, max_steps=3, max_batch=2, max_layers=2):
    """A random LSTMP problem; ``batch`` is None for an unbatched ``(T, F)`` input."""
    steps, batch = draw(st.integers(1, max_steps)), draw(st.one_of(st.none(), st.integers(1, max_batch)))
    features, hidden = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    proj = draw(st.integers(1, hidden - 1))
    layers, bias, bidirectional = draw(st.integers(1, max_layers)), draw(st.booleans()), draw(st.booleans())
    batch_first, with_state = draw(st.booleans()), draw(st.booleans())
    directions = 2 if bidirectional else 1
    if batch is None:
        x = draw(tst.arrays((steps, features)))
    else:
        x = draw(tst.arrays((batch, steps, features) if batch_first else (steps, batch, features)))
    lead = (directions * layers,) + (() if batch is None else (batch,))
    state = [draw(tst.arrays((*lead, proj))), draw(tst.arrays((*lead, hidden)))] if with_state else None

    def weight(*shape):
        return draw(tst.arrays(shape, min_value=-1, max_value=1))

    params = []
    for layer in range(layers):
        for _ in range(directions):
            params += [
                weight(4 * hidden, features if layer == 0 else directions * proj),
                weight(4 * hidden, proj),
            ]
            if bias:
                params += [weight(4 * hidden), weight(4 * hidden)]
            params.append(weight(proj, hidden))
    return dict(x=x, state=state, params=params, layers=layers, batch_first=batch_first, batch=batch,
                bidirectional=bidirectional, proj=proj, hidden=hidden)  # fmt: skip


def sequence_function(problem, fused):
    """``f(x, [h0, c0,] *params) -> (output, h_n, c_n)`` of a projected lstm, and its leaves."""
    with_state = problem["state"] is not None
    inputs = [leaf(problem["x"])] + [leaf(s) for s in problem["state"] or []]
    inputs += [leaf(p) for p in problem["params"]]

    def f(x, *rest):
        hx = tuple(rest[:2]) if with_state else None
        params = rest[2:] if with_state else rest
        layers, batch_first, bidirectional = (
            problem["layers"],
            problem["batch_first"],
            problem["bidirectional"],
        )
        output, (h_n, c_n) = lstm(
            x, hx, params, layers, batch_first, fused, bidirectional=bidirectional, proj_size=problem["proj"]
        )
        return output, h_n, c_n

    f.__name__ = f"lstm(fused={fused}, proj_size={problem['proj']}, bidirectional={problem['bidirectional']})"
    return f, inputs


def random_problem(seed, steps=5, batch=3, features=4, hidden=4, proj=2, layers=2, bidirectional=True):
    """Fixed-size float64 problem (batched, with state, with biases)."""
    rng = np.random.default_rng(seed)
    directions = 2 if bidirectional else 1
    params = []
    for layer in range(layers):
        for _ in range(directions):
            in_size = features if layer == 0 else directions * proj
            params += [rng.uniform(-0.5, 0.5, s) for s in [(4 * hidden, in_size), (4 * hidden, proj)]]
            params += [rng.uniform(-0.5, 0.5, 4 * hidden) for _ in range(2)]
            params.append(rng.uniform(-0.8, 0.8, (proj, hidden)))
    lead = (directions * layers, batch)
    return dict(
        x=rng.standard_normal((steps, batch, features)),
        state=[rng.standard_normal((*lead, proj)), rng.standard_normal((*lead, hidden))],
        params=params, layers=layers, batch_first=False, batch=batch, bidirectional=bidirectional,
        proj=proj, hidden=hidden,
    )  # fmt: skip


# ----------------------------------------------------------------------------- forward and gradients


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@given(projected_problems())
def test_projected_forward_matches_numpy(fused, problem):
    f, inputs = sequence_function(problem, fused)
    output, h_n, c_n = f(*inputs)
    x, batch = problem["x"], problem["batch"]
    if batch is None:
        x = x[:, None]
    elif problem["batch_first"]:
        x = x.transpose(1, 0, 2)
    directions = 2 if problem["bidirectional"] else 1
    groups, n = directions * problem["layers"], x.shape[1]
    if problem["state"]:
        h0, c0 = (s.reshape(groups, n, -1) for s in problem["state"])
    else:
        h0, c0 = np.zeros((groups, n, problem["proj"])), np.zeros((groups, n, problem["hidden"]))
    expected = list(np_projected_lstm(x, h0, c0, problem["params"], problem["layers"], directions))
    if batch is None:
        expected = [e[:, 0] for e in expected]
    elif problem["batch_first"]:
        expected[0] = expected[0].transpose(1, 0, 2)
    for name, ours, theirs in zip(("output", "h_n", "c_n"), (output, h_n, c_n), expected, strict=True):
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@given(projected_problems())
def test_projected_gradcheck(fused, problem):
    f, inputs = sequence_function(problem, fused)
    assert gradcheck(f, inputs)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one_way", "bidirectional"])
def test_projected_gradcheck_fixed(fused, layers, bidirectional):
    """The cases the brief names, independent of what hypothesis draws."""
    problem = random_problem(11, steps=3, batch=2, features=2, hidden=3, proj=2, layers=layers,
                             bidirectional=bidirectional)  # fmt: skip
    f, inputs = sequence_function(problem, fused)
    assert gradcheck(f, inputs)


@settings(max_examples=4)
@given(projected_problems(max_steps=2, max_batch=1))
def test_projected_per_step_gradgradcheck(problem):
    f, inputs = sequence_function(problem, fused=False)
    assert gradgradcheck(f, inputs)


def test_projected_fused_and_per_step_agree_to_round_off():
    problem = random_problem(1)
    rng = np.random.default_rng(2)
    weight = tinygen.tensor(rng.standard_normal((5, 3, 4)))
    results = []
    for fused in (True, False):
        f, inputs = sequence_function(problem, fused)
        output, h_n, c_n = f(*inputs)
        ((output * weight).sum() + (h_n * h_n).sum() + (c_n * c_n).sum()).backward()
        results.append([output.numpy(), h_n.numpy(), c_n.numpy()] + [t.grad.numpy() for t in inputs])
    for k, (ours, theirs) in enumerate(zip(*results, strict=True)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14, err_msg=f"result {k}")


@pytest.mark.parametrize("trainable", ["input", "state", "w_hr", "w_hh_and_w_hr", "one_bias"])
def test_projected_fused_gradients_of_a_subset(trainable):
    """Only some inputs require grad: the fused backward computes just those, and correctly."""
    rng = np.random.default_rng(3)
    x, h0, c0 = (rng.standard_normal(s) for s in [(4, 2, 3), (1, 2, 2), (1, 2, 3)])
    params = [rng.uniform(-1, 1, s) for s in [(12, 3), (12, 2), (12,), (12,), (2, 3)]]
    wanted = {"input": [0], "state": [1, 2], "w_hr": [7], "w_hh_and_w_hr": [4, 7], "one_bias": [5]}[trainable]
    inputs = [tinygen.tensor(a, requires_grad=k in wanted) for k, a in enumerate([x, h0, c0, *params])]

    def f(x, h0, c0, *params):
        output, (h_n, c_n) = lstm(x, (h0, c0), params, 1, proj_size=2)
        return output, c_n

    assert gradcheck(f, inputs)


def test_projected_fused_second_order_raises():
    problem = random_problem(4, layers=1, bidirectional=False)
    f, inputs = sequence_function(problem, fused=True)
    output = f(*inputs)[0]
    (grad_w_hr,) = tinygen.grad(output.sum(), [inputs[-1]], create_graph=True)  # first order works
    with pytest.raises(NotImplementedError, match="fused=False"):
        grad_w_hr.sum().backward()


def test_projection_changes_the_result():
    """The projection is not a no-op: scaling W_hr changes output, h_n and c_n."""
    problem = random_problem(5, bidirectional=False)
    f, inputs = sequence_function(problem, fused=True)
    first = [t.numpy() for t in f(*inputs)]
    problem["params"][4] = 2 * problem["params"][4]
    f, inputs = sequence_function(problem, fused=True)
    second = [t.numpy() for t in f(*inputs)]
    for a, b in zip(first, second, strict=True):
        assert np.abs(a - b).max() > 1e-3


# ----------------------------------------------------------------------------- the module


def test_projected_module_parameters():
    model = LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    expected = []
    for layer in range(2):
        for suffix in ("", "_reverse"):
            kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
            expected += [f"{kind}_l{layer}{suffix}" for kind in kinds]
    assert [name for name, _ in model.named_parameters()] == expected
    assert [p.shape for p in model.flat_weights()] == [(20, 3), (20, 2), (20,), (20,), (2, 5)] * 2 + [
        (20, 4), (20, 2), (20,), (20,), (2, 5)
    ] * 2  # fmt: skip
    assert [n for n, _ in LSTM(3, 5, bias=False, proj_size=4).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0", "weight_hr_l0",
    ]  # fmt: skip
    bound = 1 / np.sqrt(5)
    for p in model.parameters():
        assert np.abs(p.numpy()).max() <= bound


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
def test_projected_module_shapes(fused):
    model = LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True, proj_size=3, fused=fused)
    output, (h_n, c_n) = model(tinygen.randn(5, 7, 3))
    assert output.shape == (5, 7, 6) and h_n.shape == (4, 5, 3) and c_n.shape == (4, 5, 4)
    output, (h_n, c_n) = model(tinygen.randn(7, 3))  # unbatched: (L, H_in)
    assert output.shape == (7, 6) and h_n.shape == (4, 3) and c_n.shape == (4, 4)
    output, (h_n, c_n) = model(tinygen.randn(7, 3), (tinygen.zeros(4, 3), tinygen.zeros(4, 4)))
    assert output.shape == (7, 6) and h_n.shape == (4, 3)
    one_way = LSTM(3, 4, proj_size=1, fused=fused)
    output, (h_n, c_n) = one_way(tinygen.randn(6, 2, 3))
    assert output.shape == (6, 2, 1) and h_n.shape == (1, 2, 1) and c_n.shape == (1, 2, 4)


def test_projected_module_repr():
    assert repr(LSTM(3, 4, proj_size=2)) == "LSTM(3, 4, proj_size=2)"
    assert repr(LSTM(3, 4, 2, False, True, 0.5, True, 1)) == (
        "LSTM(3, 4, proj_size=1, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"
    )
    assert repr(LSTM(3, 4, proj_size=0)) == "LSTM(3, 4)"


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [-1, -3])
def test_negative_proj_size(bad):
    with pytest.raises(
        ValueError, match=rf"LSTM: proj_size is {bad}, expected 0 \(no projection\) or a positive"
    ):
        LSTM(3, 4, proj_size=bad)
    params = LSTM(3, 4).flat_weights()
    with pytest.raises(ValueError, match=rf"lstm: proj_size is {bad}, expected 0 \(no projection\)"):
        lstm(tinygen.randn(5, 2, 3), None, params, 1, proj_size=bad)


@pytest.mark.parametrize("bad", [4, 5])
def test_proj_size_not_below_hidden_size(bad):
    with pytest.raises(ValueError, match=rf"LSTM: proj_size is {bad}, expected less than hidden_size = 4"):
        LSTM(3, 4, proj_size=bad)
    rng = np.random.default_rng(0)
    params = [tinygen.tensor(rng.standard_normal(s)) for s in [(16, 3), (16, bad), (bad, 4)]]
    with pytest.raises(ValueError, match=rf"lstm: proj_size is {bad}, expected less than hidden_size = 4"):
        lstm(tinygen.randn(5, 2, 3, dtype=tinygen.float64), None, params, 1, proj_size=bad)


@pytest.mark.parametrize("bad", [1.5, 2.0, True, "2", None])
def test_proj_size_must_be_an_int(bad):
    with pytest.raises(TypeError, match=rf"LSTM: proj_size is {bad!r}, expected an int"):
        LSTM(3, 4, proj_size=bad)
    with pytest.raises(TypeError, match=rf"lstm: proj_size is {bad!r}, expected an int"):
        lstm(tinygen.randn(5, 2, 3), None, LSTM(3, 4).flat_weights(), 1, proj_size=bad)


def test_projected_state_shape_errors_name_the_expected_sizes():
    model = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    x = tinygen.randn(5, 2, 3)
    h_ok, c_ok = tinygen.zeros(4, 2, 2), tinygen.zeros(4, 2, 4)
    message = r"hx\[0\] \(h_0\).shape is \(4, 2, 4\), expected \(4, 2, 2\) = \(D\*num_layers, N, proj_size\)"
    with pytest.raises(ShapeError, match=message):
        model(x, (c_ok, c_ok))
    message = (
        r"hx\[1\] \(c_0\).shape is \(4, 2, 2\), expected \(4, 2, 4\) = \(D\*num_layers, N, hidden_size\)"
    )
    with pytest.raises(ShapeError, match=message):
        model(x, (h_ok, h_ok))
    message = r"hx\[0\] \(h_0\).shape is \(4, 4\), expected \(4, 2\) = \(D\*num_layers, proj_size\)"
    with pytest.raises(ShapeError, match=message):
        model(tinygen.randn(5, 3), (tinygen.zeros(4, 4), tinygen.zeros(4, 4)))
    model(x, (h_ok, c_ok))  # the right shapes pass


def test_projected_params_errors_name_the_argument():
    model = LSTM(3, 4, num_layers=2, proj_size=2)
    params, x = model.flat_weights(), tinygen.randn(5, 2, 3)
    message = r"got 8 params for num_layers=2, bidirectional=False, proj_size=2, expected 10 .* or 6"
    with pytest.raises(ValueError, match=message):
        lstm(x, None, params[:8], 2, proj_size=2)
    with pytest.raises(ValueError, match=r"got 10 params .* expected 8 .* or 4"):
        lstm(x, None, params, 2)  # forgot proj_size
    with pytest.raises(
        ShapeError, match=r"params\[9\].shape is \(1, 4\), expected \(proj_size, hidden_size\)"
    ):
        lstm(x, None, params[:9] + [tinygen.zeros(1, 4)], 2, proj_size=2)
    with pytest.raises(ShapeError, match=r"params\[4\].shape is \(8,\), expected \(proj_size, hidden_size\)"):
        lstm(x, None, params[:4] + [tinygen.zeros(8)] + params[5:], 2, proj_size=2)
    wrong_hh = params[:6] + [tinygen.zeros(16, 3)] + params[7:]
    with pytest.raises(
        ShapeError, match=r"params\[6\].shape is \(16, 3\), expected \(4\*hidden_size, proj_size\)"
    ):
        lstm(x, None, wrong_hh, 2, proj_size=2)
    wide = LSTM(3, 4, num_layers=2).flat_weights()  # layer 1 reads H = 4 features, not P = 2
    with pytest.raises(ShapeError, match=r"params\[5\].shape is \(16, 4\), expected \(16, 2\)"):
        lstm(x, None, params[:5] + [wide[4]] + params[6:], 2, proj_size=2)
