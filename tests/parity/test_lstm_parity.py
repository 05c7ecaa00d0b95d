"""Parity of ``LSTM`` and ``LSTMCell`` with PyTorch's (optional: skipped without torch).

The same weights (a torch ``state_dict`` loaded into ours), the same inputs and the same loss:
outputs, ``h_n``, ``c_n`` and the gradients of every parameter, of the input and of the
initial state must agree to round-off in float64 and within float32 tolerance in float32.
Covered: one and several layers, both directions, ``batch_first``, unbatched input, no bias,
inter-layer dropout in eval mode (in training the two libraries draw different masks), and
``proj_size`` (LSTMP: h projected to P < H by ``weight_hr_l{k}``) in all of those layouts.
"""

import numpy as np
import pytest

import tinygen
from tinygen.nn.modules.rnn import LSTM, LSTMCell

torch = pytest.importorskip("torch")

TOLERANCES = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5)}


def make_pair(torch_class, our_class, dtype, *args, **kwargs):
    """A torch module and ours with the torch module's weights, both in ``dtype``."""
    torch.manual_seed(0)
    theirs = torch_class(*args, **{k: v for k, v in kwargs.items() if k != "fused"})
    theirs = theirs.double() if dtype == np.float64 else theirs
    ours = our_class(*args, **kwargs).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def run(lib, module, x, hx):
    """Forward, a loss touching every output, backward; values and gradients as NumPy arrays."""
    to = torch.tensor if lib is torch else tinygen.tensor
    dtype = x.dtype
    x = to(x, requires_grad=True)
    hx = None if hx is None else tuple(to(s, requires_grad=True) for s in hx)
    result = module(x) if hx is None else module(x, hx)
    outputs = [result[0], *result[1]] if isinstance(result[1], tuple) else list(result)  # LSTM or LSTMCell
    rng = np.random.default_rng(1)
    weights = [to(rng.standard_normal(tuple(out.shape)).astype(dtype)) for out in outputs]
    loss = sum((out * weight).sum() for out, weight in zip(outputs, weights, strict=True))
    loss.backward()
    values = [out.detach().numpy() if lib is torch else out.numpy() for out in outputs]
    grads = [x.grad.numpy()] + ([] if hx is None else [s.grad.numpy() for s in hx])
    grads += [p.grad.numpy() for p in module.parameters()]
    return values, grads


def assert_match(ours, theirs, dtype):
    (values, grads), (their_values, their_grads) = ours, theirs
    for k, (a, b) in enumerate(zip(values, their_values, strict=True)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **TOLERANCES[dtype], err_msg=f"output {k}")
    for k, (a, b) in enumerate(zip(grads, their_grads, strict=True)):
        np.testing.assert_allclose(a, b, **TOLERANCES[dtype], err_msg=f"gradient {k}")


LSTM_CASES = {
    # name: (constructor kwargs, input shape, with initial state)
    "one_layer": (dict(input_size=3, hidden_size=5), (7, 4, 3), False),
    "two_layers_state": (dict(input_size=3, hidden_size=5, num_layers=2), (6, 2, 3), True),
    "batch_first_state": (dict(input_size=2, hidden_size=4, num_layers=2, batch_first=True), (3, 5, 2), True),
    "no_bias": (dict(input_size=3, hidden_size=4, bias=False), (5, 2, 3), True),
    "unbatched": (dict(input_size=3, hidden_size=4, num_layers=3), (6, 3), True),
    "unbatched_no_state": (dict(input_size=3, hidden_size=4), (6, 3), False),
    "bidirectional": (dict(input_size=3, hidden_size=5, bidirectional=True), (7, 4, 3), False),
    "bidirectional_two_layers_state": (
        dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True),
        (6, 2, 3),
        True,
    ),
    "bidirectional_batch_first_state": (
        dict(input_size=2, hidden_size=4, num_layers=2, batch_first=True, bidirectional=True),
        (3, 5, 2),
        True,
    ),
    "bidirectional_no_bias": (
        dict(input_size=3, hidden_size=4, bias=False, bidirectional=True),
        (5, 2, 3),
        True,
    ),
    "bidirectional_unbatched": (
        dict(input_size=3, hidden_size=4, num_layers=3, bidirectional=True),
        (6, 3),
        True,
    ),
    "bidirectional_unbatched_no_state": (
        dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True),
        (6, 3),
        False,
    ),
    # dropout is random in training, with different generators: parity only in eval mode or at p = 0
    "dropout_eval": (dict(input_size=3, hidden_size=4, num_layers=3, dropout=0.5), (5, 2, 3), True),
    "dropout_eval_bidirectional": (
        dict(input_size=3, hidden_size=4, num_layers=2, dropout=0.5, bidirectional=True),
        (5, 2, 3),
        True,
    ),
    "dropout_zero_training_bidirectional": (
        dict(input_size=3, hidden_size=4, num_layers=2, dropout=0.0, bidirectional=True),
        (5, 2, 3),
        True,
    ),
    # proj_size: h (and output, h_0, h_n) has size P, c keeps size H
    "proj_one_layer": (dict(input_size=3, hidden_size=5, proj_size=2), (7, 4, 3), False),
    "proj_one_layer_state": (dict(input_size=3, hidden_size=5, proj_size=3), (7, 4, 3), True),
    "proj_two_layers_state": (dict(input_size=3, hidden_size=5, num_layers=2, proj_size=2), (6, 2, 3), True),
    "proj_bidirectional": (
        dict(input_size=3, hidden_size=5, bidirectional=True, proj_size=4),
        (7, 4, 3),
        False,
    ),
    "proj_bidirectional_two_layers_state": (
        dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True, proj_size=2),
        (6, 2, 3),
        True,
    ),
    "proj_batch_first_state": (
        dict(input_size=2, hidden_size=4, num_layers=2, batch_first=True, bidirectional=True, proj_size=1),
        (3, 5, 2),
        True,
    ),
    "proj_unbatched": (dict(input_size=3, hidden_size=4, num_layers=2, proj_size=2), (6, 3), True),
    "proj_unbatched_bidirectional_no_state": (
        dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, proj_size=3),
        (6, 3),
        False,
    ),
    "proj_no_bias": (dict(input_size=3, hidden_size=4, bias=False, proj_size=2), (5, 2, 3), True),
    "proj_no_bias_bidirectional_two_layers": (
        dict(input_size=3, hidden_size=4, num_layers=2, bias=False, bidirectional=True, proj_size=2),
        (5, 2, 3),
        True,
    ),
    "proj_dropout_eval": (
        dict(input_size=3, hidden_size=4, num_layers=3, dropout=0.5, proj_size=2),
        (5, 2, 3),
        True,
    ),
}


def initial_state(rng, kwargs, shape, dtype):
    """``(h_0, c_0)`` for ``LSTM(**kwargs)``: ``(D*num_layers, [N,] P or H)``, ``(D*num_layers, [N,] H)``."""
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    batch = () if len(shape) == 2 else (shape[0] if kwargs.get("batch_first") else shape[1],)
    sizes = (kwargs.get("proj_size") or kwargs["hidden_size"], kwargs["hidden_size"])
    return tuple(rng.standard_normal((layers, *batch, size)).astype(dtype) for size in sizes)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_step"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(LSTM_CASES))
def test_lstm_matches_torch(case, dtype, fused):
    kwargs, shape, with_state = LSTM_CASES[case]
    theirs, ours = make_pair(torch.nn.LSTM, LSTM, dtype, fused=fused, **kwargs)
    if "dropout_eval" in case:
        theirs.eval()
        ours.eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    hx = initial_state(rng, kwargs, shape, dtype) if with_state else None
    assert_match(run(tinygen, ours, x, hx), run(torch, theirs, x, hx), dtype)


def test_lstm_dropout_in_training_differs_from_eval_in_both():
    """The eval-mode parity above is not vacuous: in training both libraries do drop something."""
    kwargs = dict(input_size=3, hidden_size=4, num_layers=2, dropout=0.5, bidirectional=True)
    theirs, ours = make_pair(torch.nn.LSTM, LSTM, np.float64, **kwargs)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    for lib, module in [(torch, theirs), (tinygen, ours)]:
        trained = run(lib, module, x, None)[0][0]
        module.eval()
        evaluated = run(lib, module, x, None)[0][0]
        assert np.abs(trained - evaluated).max() > 1e-3, lib.__name__


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_matches_torch(dtype, batched, with_state, bias):
    theirs, ours = make_pair(torch.nn.LSTMCell, LSTMCell, dtype, 3, 5, bias=bias)
    rng = np.random.default_rng(0)
    lead = (4,) if batched else ()
    x = rng.standard_normal((*lead, 3)).astype(dtype)
    hx = tuple(rng.standard_normal((*lead, 5)).astype(dtype) for _ in range(2)) if with_state else None
    assert_match(run(tinygen, ours, x, hx), run(torch, theirs, x, hx), dtype)


def test_state_dict_keys_and_shapes_match_torch():
    for theirs, ours in [
        (torch.nn.LSTM(3, 5, num_layers=3), LSTM(3, 5, num_layers=3)),
        (torch.nn.LSTM(3, 5, num_layers=2, bias=False), LSTM(3, 5, num_layers=2, bias=False)),
        (torch.nn.LSTM(3, 5, num_layers=3, bidirectional=True), LSTM(3, 5, num_layers=3, bidirectional=True)),
        (
            torch.nn.LSTM(3, 5, num_layers=2, bias=False, bidirectional=True),
            LSTM(3, 5, num_layers=2, bias=False, bidirectional=True),
        ),
        (torch.nn.LSTM(3, 5, num_layers=2, proj_size=2), LSTM(3, 5, num_layers=2, proj_size=2)),
        (
            torch.nn.LSTM(3, 5, num_layers=2, bias=False, bidirectional=True, proj_size=4),
            LSTM(3, 5, num_layers=2, bias=False, bidirectional=True, proj_size=4),
        ),
        (torch.nn.LSTMCell(3, 5), LSTMCell(3, 5)),
        (torch.nn.LSTMCell(3, 5, bias=False), LSTMCell(3, 5, bias=False)),
    ]:
        their_state, our_state = theirs.state_dict(), ours.state_dict()
        assert list(our_state) == list(their_state)
        assert [tuple(v.shape) for v in our_state.values()] == [tuple(v.shape) for v in their_state.values()]
        # and ours loads back into torch
        theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in our_state.items()})


def test_init_range_matches_torch():
    """PyTorch draws every LSTM parameter from U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    ours = np.concatenate([p.numpy().ravel() for p in LSTM(8, 16, num_layers=2).parameters()])
    theirs = np.concatenate(
        [p.detach().numpy().ravel() for p in torch.nn.LSTM(8, 16, num_layers=2).parameters()]
    )
    assert abs(ours).max() <= 0.25 and abs(theirs).max() <= 0.25
    assert abs(ours.std() - theirs.std()) < 0.01  # uniform on [-0.25, 0.25]: std 0.144


@pytest.mark.parametrize("proj_size", [0, 2])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_flat_weights_order_matches_torch(bias, bidirectional, proj_size):
    theirs, ours = make_pair(
        torch.nn.LSTM, LSTM, np.float64, 3, 4, 3, bias, bidirectional=bidirectional, proj_size=proj_size
    )
    their_flat = [w.detach().numpy() for w in theirs._flat_weights]
    our_flat = [w.numpy() for w in ours.flat_weights()]
    assert len(our_flat) == len(their_flat) == len(theirs._flat_weights_names)
    assert [name for name, _ in ours.named_parameters()] == theirs._flat_weights_names
    for name, a, b in zip(theirs._flat_weights_names, our_flat, their_flat, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_positional_arguments_repr_and_warning_match_torch():
    args = (3, 4, 2, False, True, 0.25, True)  # input, hidden, num_layers, bias, batch_first, dropout, bidir.
    assert repr(LSTM(*args)) == repr(torch.nn.LSTM(*args))
    for kwargs in [dict(bidirectional=True), dict(num_layers=2, dropout=1), dict(dropout=0.0)]:
        assert repr(LSTM(3, 4, **kwargs)) == repr(torch.nn.LSTM(3, 4, **kwargs))
    proj_cases = [
        ((3, 4), dict(proj_size=2)),
        ((3, 4, 2, False, True, 0.25, True, 3), {}),  # proj_size is the last positional argument
        ((3, 4), dict(proj_size=0, num_layers=2)),
        ((3, 4, 1), dict(proj_size=1, bias=False)),
    ]
    for args, kwargs in proj_cases:
        assert repr(LSTM(*args, **kwargs)) == repr(torch.nn.LSTM(*args, **kwargs))
    for lib_lstm in (LSTM, torch.nn.LSTM):
        with pytest.warns(UserWarning, match="num_layers greater than 1"):
            lib_lstm(3, 4, dropout=0.5)
        for bad in (-0.5, 2, True):
            with pytest.raises(ValueError, match="dropout"):
                lib_lstm(3, 4, num_layers=2, dropout=bad)


@pytest.mark.parametrize("bad", [-1, 4, 5])
def test_proj_size_out_of_range_raises_value_error_in_both(bad):
    """PyTorch: ``0 <= proj_size < hidden_size`` or ValueError; ours names the value and the bound."""
    with pytest.raises(ValueError, match="proj_size"):
        torch.nn.LSTM(3, 4, proj_size=bad)
    with pytest.raises(ValueError, match=rf"LSTM: proj_size is {bad}, expected"):
        LSTM(3, 4, proj_size=bad)
