"""The sequence ``lstm`` beyond one direction: ``bidirectional`` and dropout between layers.

Forward against a plain NumPy bidirectional LSTM (its reverse direction walks t = T-1 .. 0
itself, no flips), gradcheck of both directions fused and per step, fused == per step,
dropout's semantics (eval, p = 0, p = 1, seeds, the mask being ``F.dropout``'s), the module's
parameters, warning and repr, and the errors.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen
import tinygen.nn.functional as F
from tinygen.errors import ShapeError
from tinygen.kernels.lstm import lstm
from tinygen.nn.modules.rnn import LSTM
from tinygen.random import Generator, default_generator
from tinygen.testing import gradcheck, gradgradcheck
from tinygen.testing import strategies as tst


def leaf(array):
    return tinygen.tensor(array, requires_grad=True)


# ----------------------------------------------------------------------------- NumPy reference


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_direction(x, h, c, w_ih, w_hh, bias, steps):
    """One direction of one layer, visiting the steps in the order given; outputs in time order."""
    outputs = [None] * x.shape[0]
    for t in steps:
        i, f, g, o = np.split(x[t] @ w_ih.T + h @ w_hh.T + bias, 4, axis=-1)
        c = np_sigmoid(f) * c + np_sigmoid(i) * np.tanh(g)
        h = np_sigmoid(o) * np.tanh(c)
        outputs[t] = h
    return np.stack(outputs), h, c


def np_bidirectional_lstm(x, h0, c0, params, num_layers):
    """x (T, N, F), h0/c0 (2 L, N, H), params PyTorch's flat list; output (T, N, 2H), h_n, c_n."""
    per_group = len(params) // (2 * num_layers)
    steps = x.shape[0]
    h_n, c_n = [], []
    for layer in range(num_layers):
        outputs = []
        for direction, order in enumerate([range(steps), range(steps - 1, -1, -1)]):
            group = 2 * layer + direction
            w_ih, w_hh, *biases = params[group * per_group : (group + 1) * per_group]
            bias = sum(biases) if biases else 0.0
            output, h, c = np_direction(x, h0[group], c0[group], w_ih, w_hh, bias, order)
            outputs.append(output)
            h_n.append(h)
            c_n.append(c)
        x = np.concatenate(outputs, axis=-1)
    return x, np.stack(h_n), np.stack(c_n)


# ----------------------------------------------------------------------------- strategies


@st.composite
def bidirectional_problems(draw, max_steps=3, max_batch=2, max_size=3, max_layers=2):
    """A random bidirectional LSTM problem; ``batch`` is None for an unbatched ``(T, F)`` input."""
    steps, batch = draw(st.integers(1, max_steps)), draw(st.one_of(st.none(), st.integers(1, max_batch)))
    features, hidden = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    layers, bias = draw(st.integers(1, max_layers)), draw(st.booleans())
    batch_first, with_state = draw(st.booleans()), draw(st.booleans())
    if batch is None:
        x = draw(tst.arrays((steps, features)))
    else:
        x = draw(tst.arrays((batch, steps, features) if batch_first else (steps, batch, features)))
    lead = () if batch is None else (batch,)
    state = [draw(tst.arrays((2 * layers, *lead, hidden))) for _ in range(2)] if with_state else None

    def weight(*shape):
        return draw(tst.arrays(shape, min_value=-1, max_value=1))

    params = []
    for layer in range(layers):
        for _ in range(2):
            params += [weight(4 * hidden, features if layer == 0 else 2 * hidden), weight(4 * hidden, hidden)]
            if bias:
                params += [weight(4 * hidden), weight(4 * hidden)]
    return dict(x=x, state=state, params=params, layers=layers, batch_first=batch_first, batch=batch)


def sequence_function(problem, fused, **kwargs):
    """``f(x, [h0, c0,] *params) -> (output, h_n, c_n)`` of a bidirectional lstm, and its leaves."""
    with_state = problem["state"] is not None
    inputs = (
        [leaf(problem["x"])]
        + [leaf(s) for s in problem["state"] or []]
        + [leaf(p) for p in problem["params"]]
    )

    def f(x, *rest):
        hx = tuple(rest[:2]) if with_state else None
        params = rest[2:] if with_state else rest
        output, (h_n, c_n) = lstm(
            x, hx, params, problem["layers"], problem["batch_first"], fused, bidirectional=True, **kwargs
        )
        return output, h_n, c_n

    f.__name__ = f"lstm(fused={fused}, bidirectional=True)"
    return f, inputs


def random_problem(seed, steps=5, batch=3, features=4, hidden=3, layers=2, bidirectional=True):
    """Fixed-size float64 problem (batched, with state, with biases)."""
    rng = np.random.default_rng(seed)
    directions = 2 if bidirectional else 1
    params = []
    for layer in range(layers):
        for _ in range(directions):
            in_size = features if layer == 0 else directions * hidden
            params += [rng.uniform(-0.5, 0.5, s) for s in [(4 * hidden, in_size), (4 * hidden, hidden)]]
            params += [rng.uniform(-0.5, 0.5, 4 * hidden) for _ in range(2)]
    return dict(
        x=rng.standard_normal((steps, batch, features)),
        state=[rng.standard_normal((directions * layers, batch, hidden)) for _ in range(2)],
        params=params,
        layers=layers,
        batch_first=False,
        batch=batch,
    )


# ----------------------------------------------------------------------------- bidirectional


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@given(bidirectional_problems())
def test_bidirectional_forward_matches_numpy(fused, problem):
    f, inputs = sequence_function(problem, fused)
    output, h_n, c_n = f(*inputs)
    x, batch = problem["x"], problem["batch"]
    if batch is None:
        x = x[:, None]
    elif problem["batch_first"]:
        x = x.transpose(1, 0, 2)
    hidden = problem["params"][1].shape[1]
    zeros = np.zeros((2 * problem["layers"], x.shape[1], hidden))
    h0, c0 = (s.reshape(zeros.shape) for s in problem["state"]) if problem["state"] else (zeros, zeros)
    expected_output, expected_h, expected_c = np_bidirectional_lstm(
        x, h0, c0, problem["params"], problem["layers"]
    )
    if batch is None:
        expected_output, expected_h, expected_c = expected_output[:, 0], expected_h[:, 0], expected_c[:, 0]
    elif problem["batch_first"]:
        expected_output = expected_output.transpose(1, 0, 2)
    for ours, theirs in zip((output, h_n, c_n), (expected_output, expected_h, expected_c), strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@given(bidirectional_problems())
def test_bidirectional_gradcheck(fused, problem):
    f, inputs = sequence_function(problem, fused)
    assert gradcheck(f, inputs)


@settings(max_examples=4)
@given(bidirectional_problems(max_steps=2, max_batch=1, max_size=2))
def test_bidirectional_per_step_gradgradcheck(problem):
    f, inputs = sequence_function(problem, fused=False)
    assert gradgradcheck(f, inputs)


def test_bidirectional_fused_and_per_step_agree_to_round_off():
    problem = random_problem(1)
    rng = np.random.default_rng(2)
    weight = tinygen.tensor(rng.standard_normal((5, 3, 6)))
    results = []
    for fused in (True, False):
        f, inputs = sequence_function(problem, fused)
        output, h_n, c_n = f(*inputs)
        ((output * weight).sum() + h_n.sum() + (c_n * c_n).sum()).backward()
        results.append([output.numpy(), h_n.numpy(), c_n.numpy()] + [t.grad.numpy() for t in inputs])
    for k, (ours, theirs) in enumerate(zip(*results, strict=True)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14, err_msg=f"result {k}")


def test_reverse_direction_is_the_forward_one_on_the_reversed_sequence():
    """One layer: the reverse half of a bidirectional run = a forward run on x[::-1], reversed back."""
    problem = random_problem(3, layers=1)
    x, (h0, c0), params = problem["x"], problem["state"], problem["params"]
    output, (h_n, c_n) = lstm(tinygen.tensor(x), (tinygen.tensor(h0), tinygen.tensor(c0)),
                              [tinygen.tensor(p) for p in params], 1, bidirectional=True)  # fmt: skip
    reverse, (h_r, c_r) = lstm(
        tinygen.tensor(x[::-1].copy()), (tinygen.tensor(h0[1:]), tinygen.tensor(c0[1:])),
        [tinygen.tensor(p) for p in params[4:]], 1,
    )  # fmt: skip
    np.testing.assert_array_equal(output.numpy()[..., 3:], reverse.numpy()[::-1])
    np.testing.assert_array_equal(h_n.numpy()[1], h_r.numpy()[0])
    np.testing.assert_array_equal(c_n.numpy()[1], c_r.numpy()[0])


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
def test_final_states_sit_at_both_ends_of_the_output(fused):
    """As in PyTorch: the last layer's forward h_n is output[T-1, :, :H], its reverse h_n output[0, :, H:]."""
    problem = random_problem(10, layers=2)
    output, h_n, _ = run_lstm(problem, fused)[:3]
    np.testing.assert_array_equal(output[-1, :, :3], h_n[-2])
    np.testing.assert_array_equal(output[0, :, 3:], h_n[-1])


# ----------------------------------------------------------------------------- dropout between layers


def run_lstm(problem, fused=True, bidirectional=True, **kwargs):
    """Output, h_n, c_n and every gradient (of a loss touching all three) as NumPy arrays."""
    inputs = [leaf(problem["x"])] + [leaf(s) for s in problem["state"]] + [leaf(p) for p in problem["params"]]
    x, h0, c0, *params = inputs
    output, (h_n, c_n) = lstm(
        x, (h0, c0), params, problem["layers"], fused=fused, bidirectional=bidirectional, **kwargs
    )
    (output.sum() + (h_n * h_n).sum() + c_n.sum()).backward()
    return [output.numpy(), h_n.numpy(), c_n.numpy()] + [t.grad.numpy() for t in inputs]


def assert_all_equal(results, others):
    for k, (a, b) in enumerate(zip(results, others, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"result {k}")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_dropout_is_off_outside_training(bidirectional):
    problem = random_problem(4, layers=3, bidirectional=bidirectional)
    plain = run_lstm(problem, bidirectional=bidirectional)
    state = default_generator.get_state()
    for p in (0.5, 1.0):
        assert_all_equal(run_lstm(problem, bidirectional=bidirectional, dropout=p, training=False), plain)
    assert default_generator.get_state() == state  # and nothing was drawn


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
def test_dropout_zero_in_training_is_no_dropout(fused):
    problem = random_problem(5, layers=3)
    state = default_generator.get_state()
    assert_all_equal(run_lstm(problem, fused, dropout=0.0, training=True), run_lstm(problem, fused))
    assert default_generator.get_state() == state


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_dropout_one_cuts_the_layers_apart(fused, bidirectional):
    """p = 1 zeroes the input of the last layer: its output is that of the last layer run on zeros,
    and no gradient of ``output`` reaches the input or the lower layers' weights."""
    directions = 2 if bidirectional else 1
    problem = random_problem(6, layers=2, bidirectional=bidirectional)
    x, h0, c0, *params = [leaf(problem["x"]), *map(leaf, problem["state"]), *map(leaf, problem["params"])]
    output, (h_n, c_n) = lstm(x, (h0, c0), params, 2, fused=fused, bidirectional=bidirectional,
                              dropout=1.0, training=True)  # fmt: skip
    output.sum().backward()
    top = 4 * directions  # the last layer's params start here
    zeros = tinygen.zeros(5, 3, 3 * directions, dtype=tinygen.float64)
    expected, _ = lstm(
        zeros, (h0[directions:], c0[directions:]), params[top:], 1, bidirectional=bidirectional
    )
    np.testing.assert_allclose(output.numpy(), expected.numpy(), rtol=1e-14, atol=0)
    for tensor in [x, *params[:top]]:
        np.testing.assert_array_equal(tensor.grad.numpy(), 0.0)
    np.testing.assert_array_equal(params[top].grad.numpy(), 0.0)  # w_ih_l1 only ever multiplies zeros
    assert np.abs(params[top + 1].grad.numpy()).max() > 0  # w_hh_l1 still matters


def test_dropout_masks_are_f_dropouts_and_between_layers_only():
    """The same seeded generator: lstm(dropout=p) == layers run one by one with F.dropout between."""
    problem = random_problem(7, layers=3)
    x, (h0, c0), params = tinygen.tensor(problem["x"]), problem["state"], problem["params"]
    output, (h_n, c_n) = lstm(x, (tinygen.tensor(h0), tinygen.tensor(c0)), map(tinygen.tensor, params), 3,
                              bidirectional=True, dropout=0.3, generator=Generator(11))  # fmt: skip
    generator, layer_input, h_all = Generator(11), x, []
    for layer in range(3):
        if layer > 0:
            layer_input = F.dropout(layer_input, 0.3, True, generator)
        state = (tinygen.tensor(h0[2 * layer : 2 * layer + 2]), tinygen.tensor(c0[2 * layer : 2 * layer + 2]))
        layer_params = map(tinygen.tensor, params[8 * layer : 8 * layer + 8])
        layer_input, (h, _) = lstm(layer_input, state, layer_params, 1, bidirectional=True)
        h_all.append(h.numpy())
    np.testing.assert_array_equal(output.numpy(), layer_input.numpy())
    np.testing.assert_array_equal(h_n.numpy(), np.concatenate(h_all))
    no_dropout, _ = lstm(x, (tinygen.tensor(h0), tinygen.tensor(c0)), map(tinygen.tensor, params), 3,
                         bidirectional=True)  # fmt: skip
    assert np.abs(output.numpy() - no_dropout.numpy()).max() > 1e-3  # the masks did something


def test_dropout_seeded_runs_reproduce():
    problem = random_problem(8, layers=2)
    runs = []
    for seed in (3, 3, 4):
        tinygen.manual_seed(seed)
        runs.append(run_lstm(problem, dropout=0.5))
    assert_all_equal(runs[0], runs[1])
    assert np.abs(runs[0][0] - runs[2][0]).max() > 1e-3
    assert_all_equal(run_lstm(problem, dropout=0.5, generator=Generator(9)),
                     run_lstm(problem, dropout=0.5, generator=Generator(9)))  # fmt: skip


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
def test_dropout_gradcheck(fused):
    """A fresh generator with the same seed per call fixes the masks, so the gradient is checkable."""
    problem = random_problem(9, steps=3, batch=2, features=2, hidden=2, layers=2)
    inputs = [leaf(problem["x"])] + [leaf(s) for s in problem["state"]] + [leaf(p) for p in problem["params"]]

    def f(x, h0, c0, *params):
        output, (h_n, c_n) = lstm(x, (h0, c0), params, 2, fused=fused, bidirectional=True,
                                  dropout=0.4, generator=Generator(5))  # fmt: skip
        return output, h_n, c_n

    assert gradcheck(f, inputs)


# ----------------------------------------------------------------------------- the module


def test_bidirectional_module_parameters():
    model = LSTM(3, 5, num_layers=2, bidirectional=True)
    names = [name for name, _ in model.named_parameters()]
    expected = []
    for layer in range(2):
        for suffix in ("", "_reverse"):
            expected += [
                f"{kind}_l{layer}{suffix}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
    assert names == expected
    assert [p.shape for p in model.flat_weights()] == [(20, 3), (20, 5), (20,), (20,)] * 2 + [
        (20, 10), (20, 5), (20,), (20,)
    ] * 2  # fmt: skip
    assert [n for n, _ in LSTM(3, 5, bias=False, bidirectional=True).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
    ]  # fmt: skip


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
def test_bidirectional_module_shapes(fused):
    model = LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True, fused=fused)
    output, (h_n, c_n) = model(tinygen.randn(5, 7, 3))
    assert output.shape == (5, 7, 8) and h_n.shape == c_n.shape == (4, 5, 4)
    output, (h_n, c_n) = model(tinygen.randn(7, 3))  # unbatched: (L, H_in)
    assert output.shape == (7, 8) and h_n.shape == c_n.shape == (4, 4)
    output, (h_n, c_n) = model(tinygen.randn(7, 3), (tinygen.zeros(4, 4), tinygen.zeros(4, 4)))
    assert output.shape == (7, 8)


def test_module_dropout_follows_train_and_eval():
    tinygen.manual_seed(0)
    model = LSTM(3, 4, num_layers=2, dropout=0.5, bidirectional=True).to(np.float64)
    x = tinygen.randn(6, 2, 3, dtype=tinygen.float64)
    first, second = model(x)[0].numpy(), model(x)[0].numpy()
    assert np.abs(first - second).max() > 1e-3  # training: a fresh mask each call
    model.eval()
    evaluated = model(x)[0].numpy()
    model.dropout = 0.0
    np.testing.assert_array_equal(evaluated, model(x)[0].numpy())
    model.train()
    np.testing.assert_array_equal(evaluated, model(x)[0].numpy())


def test_module_dropout_warning_and_repr():
    with pytest.warns(UserWarning, match=r"num_layers greater than 1, but got dropout=0.5 and num_layers=1"):
        LSTM(3, 4, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LSTM(3, 4, num_layers=2, dropout=0.5)
        LSTM(3, 4, dropout=0.0)
    assert (
        repr(LSTM(3, 4, 2, True, False, 0.5, True))
        == "LSTM(3, 4, num_layers=2, dropout=0.5, bidirectional=True)"
    )
    assert repr(LSTM(3, 4, bidirectional=True)) == "LSTM(3, 4, bidirectional=True)"
    assert repr(LSTM(3, 4, 2, dropout=1)) == "LSTM(3, 4, num_layers=2, dropout=1.0)"
    assert LSTM(3, 4, 2, dropout=1).dropout == 1.0


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "0.5", None, float("nan")])
def test_bad_dropout_names_the_argument(bad):
    with pytest.raises(ValueError, match=rf"LSTM: dropout is {bad!r}, expected a number in \[0, 1\]"):
        LSTM(3, 4, num_layers=2, dropout=bad)
    model = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=rf"lstm: dropout is {bad!r}, expected a number in \[0, 1\]"):
        lstm(tinygen.randn(5, 2, 3), None, model.flat_weights(), 2, dropout=bad)


def test_bidirectional_shape_errors_name_the_argument():
    model = LSTM(3, 4, num_layers=2, bidirectional=True)
    x = tinygen.randn(5, 2, 3)
    with pytest.raises(ShapeError, match=r"hx\[0\] \(h_0\).shape is \(2, 2, 4\), expected \(4, 2, 4\)"):
        model(x, (tinygen.zeros(2, 2, 4), tinygen.zeros(4, 2, 4)))
    with pytest.raises(ShapeError, match=r"hx\[1\] \(c_0\).shape is \(4, 2, 8\), expected \(4, 2, 4\)"):
        model(x, (tinygen.zeros(4, 2, 4), tinygen.zeros(4, 2, 8)))
    with pytest.raises(ShapeError, match=r"hx\[0\] \(h_0\).shape is \(4, 2, 4\), expected \(4, 4\)"):
        model(tinygen.randn(5, 3), (tinygen.zeros(4, 2, 4), tinygen.zeros(4, 4)))
    params = model.flat_weights()
    message = r"got 6 params for num_layers=2, bidirectional=True, expected 16 .* or 8"
    with pytest.raises(ValueError, match=message):
        lstm(x, None, params[:6], 2, bidirectional=True)
    one_way = LSTM(3, 4, num_layers=2).flat_weights()  # layer 1 reads H = 4 features, not 2H = 8
    with pytest.raises(ShapeError, match=r"params\[8\].shape is \(16, 4\), expected \(16, 8\)"):
        lstm(x, None, params[:8] + one_way[4:] * 2, 2, bidirectional=True)
