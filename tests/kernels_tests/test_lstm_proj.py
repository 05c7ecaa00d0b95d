"""The sequence ``lstm`` with ``proj_size`` (PyTorch's LSTMP): ``h_t = (o_t * tanh(c_t)) @ W_hr^T``.

Forward against a plain NumPy LSTMP, gradcheck (drawn), gradgradcheck per step and fused == per
step to round-off are test_lstm_sequence.py's ``test_sequence_*[projected]``, over
``lstm_problems``. Here: gradcheck of fixed problems (1 and 2 layers, one- and two-way), the
fused backward of a subset of the inputs, the fused second order raising, the projection
mattering, the module's parameters, shapes and repr, and the errors (``proj_size`` out of range
or not an int, ``h_0`` / ``c_0`` of the wrong size, wrong ``w_hr``).
"""

import numpy as np
import pytest

import tinygen
from tinygen.errors import ShapeError
from tinygen.kernels.lstm import lstm
from tinygen.nn.modules.rnn import LSTM
from tinygen.testing import gradcheck

from .lstm_problems import random_problem, sequence_function

# ----------------------------------------------------------------------------- gradients

# random_problem's sizes here (its defaults are the bidirectional tests'): H = 4, P = 2
SIZES = dict(hidden=4, proj=2)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one_way", "bidirectional"])
def test_projected_gradcheck_fixed(fused, layers, bidirectional):
    """The cases the brief names, independent of what hypothesis draws."""
    problem = random_problem(11, steps=3, batch=2, features=2, hidden=3, proj=2, layers=layers,
                             bidirectional=bidirectional)  # fmt: skip
    f, inputs = sequence_function(problem, fused)
    assert gradcheck(f, inputs)


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
    problem = random_problem(4, layers=1, bidirectional=False, **SIZES)
    f, inputs = sequence_function(problem, fused=True)
    output = f(*inputs)[0]
    (grad_w_hr,) = tinygen.grad(output.sum(), [inputs[-1]], create_graph=True)  # first order works
    with pytest.raises(NotImplementedError, match="fused=False"):
        grad_w_hr.sum().backward()


def test_projection_changes_the_result():
    """The projection is not a no-op: scaling W_hr changes output, h_n and c_n."""
    problem = random_problem(5, bidirectional=False, **SIZES)
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
