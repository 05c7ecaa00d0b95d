"""The sequence ``lstm`` beyond one direction: ``bidirectional`` and dropout between layers.

Forward against the plain NumPy LSTM of ``lstm_problems`` (its reverse direction walks
t = T-1 .. 0 itself, no flips), gradcheck fused and per step, gradgradcheck per step and
fused == per step to round-off, each for both kinds: ``bidirectional`` and ``projected``
(``proj_size``, the rest of whose tests are in test_lstm_proj.py); dropout's semantics (eval,
p = 0, p = 1, seeds, the mask being ``F.dropout``'s), the module's parameters, warning and repr,
and the errors.
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

from .lstm_problems import leaf, np_sequence_lstm, random_problem, sequence_function, sequence_problems

# ----------------------------------------------------------------------------- forward and gradients

# kind -> (random_problem's sizes, sequence_problems' arguments, gradgradcheck's smaller ones)
KINDS = {
    "bidirectional": (dict(), dict(), dict(max_steps=2, max_batch=1, max_size=2)),
    "projected": (  # LSTMP, one- or two-way (drawn)
        dict(hidden=4, proj=2),
        dict(bidirectional=None, proj=True),
        dict(max_steps=2, max_batch=1, bidirectional=None, proj=True),
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@given(data=st.data())
def test_sequence_forward_matches_numpy(kind, fused, data):
    problem = data.draw(sequence_problems(**KINDS[kind][1]), label="problem")
    f, inputs = sequence_function(problem, fused)
    output, h_n, c_n = f(*inputs)
    x, batch = problem["x"], problem["batch"]
    if batch is None:
        x = x[:, None]
    elif problem["batch_first"]:
        x = x.transpose(1, 0, 2)
    directions, proj = (2 if problem["bidirectional"] else 1), problem["proj"]
    groups, n = directions * problem["layers"], x.shape[1]
    if problem["state"]:
        h0, c0 = (s.reshape(groups, n, -1) for s in problem["state"])
    else:
        h0, c0 = np.zeros((groups, n, proj or problem["hidden"])), np.zeros((groups, n, problem["hidden"]))
    expected = list(np_sequence_lstm(x, h0, c0, problem["params"], problem["layers"], directions, proj))
    if batch is None:
        expected = [e[:, 0] for e in expected]
    elif problem["batch_first"]:
        expected[0] = expected[0].transpose(1, 0, 2)
    for name, ours, theirs in zip(("output", "h_n", "c_n"), (output, h_n, c_n), expected, strict=True):
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@given(data=st.data())
def test_sequence_gradcheck(kind, fused, data):
    f, inputs = sequence_function(data.draw(sequence_problems(**KINDS[kind][1]), label="problem"), fused)
    assert gradcheck(f, inputs)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=4)
@given(data=st.data())
def test_sequence_per_step_gradgradcheck(kind, data):
    problem = data.draw(sequence_problems(**KINDS[kind][2]), label="problem")
    f, inputs = sequence_function(problem, fused=False)
    assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_fused_and_per_step_agree_to_round_off(kind):
    problem = random_problem(1, **KINDS[kind][0])
    rng = np.random.default_rng(2)
    directions = 2 if problem["bidirectional"] else 1
    weight = tinygen.tensor(rng.standard_normal((5, 3, directions * (problem["proj"] or problem["hidden"]))))
    results = []
    for fused in (True, False):
        f, inputs = sequence_function(problem, fused)
        output, h_n, c_n = f(*inputs)
        ((output * weight).sum() + h_n.sum() + (h_n * h_n).sum() + (c_n * c_n).sum()).backward()
        results.append([output.numpy(), h_n.numpy(), c_n.numpy()] + [t.grad.numpy() for t in inputs])
    for k, (ours, theirs) in enumerate(zip(*results, strict=True)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14, err_msg=f"result {k}")


# ----------------------------------------------------------------------------- bidirectional


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
