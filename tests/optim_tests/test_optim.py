"""Optimizers: argument checks, parameter groups, hand-computed steps, state_dict, in-place updates."""

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen import backend
from tinygen.nn.module import Parameter
from tinygen.optim import adam
from tinygen.optim.adam import Adam
from tinygen.optim.optimizer import Optimizer
from tinygen.optim.sgd import SGD
from tinygen.testing import strategies as tst


def param(*values, dtype=np.float64):
    return Parameter(np.array(values, dtype=dtype))


def with_grad(p, *grad):
    p.grad = tinygen.tensor(np.array(grad, dtype=p.dtype))
    return p


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ps: SGD(ps, lr=-0.1), "SGD: lr must be >= 0, got -0.1"),
        (lambda ps: SGD(ps, momentum=-1), "SGD: momentum must be >= 0, got -1"),
        (lambda ps: SGD(ps, weight_decay=-0.5), "SGD: weight_decay must be >= 0, got -0.5"),
        (
            lambda ps: SGD(ps, nesterov=True),
            "nesterov=True needs momentum > 0 and dampening = 0, got momentum=0",
        ),
        (lambda ps: SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
        (lambda ps: Adam(ps, lr=-1e-3), "Adam: lr must be >= 0, got -0.001"),
        (lambda ps: Adam(ps, eps=-1.0), "Adam: eps must be >= 0, got -1.0"),
        (lambda ps: Adam(ps, betas=(1.0, 0.999)), "Adam: betas\\[0\\] must be in \\[0, 1\\), got 1.0"),
        (lambda ps: Adam(ps, betas=(0.9, -0.1)), "Adam: betas\\[1\\] must be in \\[0, 1\\), got -0.1"),
        (lambda ps: Adam(ps, weight_decay=-1), "Adam: weight_decay must be >= 0, got -1"),
        (lambda ps: SGD([]), "empty parameter list"),
        (lambda ps: SGD([ps[0] * 2]), "non-leaf"),
        (lambda ps: SGD([{"params": ps}, {"params": ps[:1]}]), "more than one parameter group"),
    ],
)
def test_invalid_arguments_name_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make([param(1.0), param(2.0)])


def test_params_must_be_an_ordered_iterable_of_tensors():
    p = param(1.0)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p)
    with pytest.raises(TypeError, match="ordered collection"):
        SGD([{"params": {p}}])
    with pytest.raises(TypeError, match="params\\[1\\] is int"):
        SGD([p, 3])


def test_groups_take_defaults_and_overrides():
    a, b = param(1.0), param(2.0)
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["params"] == [b]
    assert opt.defaults["lr"] == 0.1
    assert "Parameter Group 1\n    dampening: 0\n    lr: 0.5" in repr(opt)


def test_sgd_steps_by_hand():
    p = with_grad(param(1.0, -2.0), 0.5, 1.0)
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1)
    opt.step()  # g = grad + 0.1 p = [0.6, 0.8]; buffer starts at g
    np.testing.assert_allclose(p.numpy(), [1.0 - 0.06, -2.0 - 0.08])
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"].numpy(), [0.6, 0.8])
    opt.step()  # g = [0.5 + 0.094, 1.0 - 0.208]; b = 0.9 b + g
    g = np.array([0.5 + 0.094, 1.0 - 0.208])
    buf = 0.9 * np.array([0.6, 0.8]) + g
    np.testing.assert_allclose(p.numpy(), np.array([0.94, -2.08]) - 0.1 * buf)


def test_sgd_nesterov_and_maximize_by_hand():
    p = with_grad(param(0.0), 2.0)
    opt = SGD([p], lr=0.1, momentum=0.5, nesterov=True, maximize=True)
    opt.step()  # g = -2; b = -2; step direction g + 0.5 b = -3
    np.testing.assert_allclose(p.numpy(), [0.3])


def test_adam_first_step_moves_by_lr():
    p = with_grad(param(1.0, 1.0, 1.0), 3.0, -0.01, 0.0)
    opt = Adam([p], lr=0.01, eps=1e-12)
    opt.step()  # m_hat = g, v_hat = g^2: the first step is lr * sign(g), eps added to |g|
    np.testing.assert_allclose(p.numpy(), [0.99, 1.01, 1.0], rtol=1e-9)
    state = opt.state[p]
    assert list(state) == ["step", "exp_avg", "exp_avg_sq"] and state["step"] == 1
    np.testing.assert_allclose(state["exp_avg"].numpy(), [0.3, -0.001, 0.0])


@given(
    shape=tst.shapes(min_dims=1, max_dims=3),
    amsgrad=st.booleans(),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_adam_steps_are_the_reference_formula_to_the_bit(shape, amsgrad, dtype, seed):
    # the update runs in place through scratch arrays; its numbers are the reference's, written
    # as the docstring's formula beside it in adam.py
    rng = np.random.default_rng(seed)
    expected = rng.standard_normal(shape).astype(dtype)
    p = Parameter(expected.copy())
    opt = Adam([p], lr=1e-3, betas=(0.5, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=amsgrad)
    m, v, v_max = (np.zeros_like(expected) for _ in range(3))
    for step in range(1, 4):
        g = rng.standard_normal(shape).astype(dtype)
        p.grad = tinygen.tensor(g)
        opt.step()
        grad = g + 0.01 * expected  # weight_decay, added to the gradient
        options = dict(lr=1e-3, betas=(0.5, 0.999), eps=1e-8, step=step)
        adam._adam_step_reference(np, expected, grad, m, v, v_max if amsgrad else None, **options)
        np.testing.assert_array_equal(p.numpy(), expected)


def test_amsgrad_keeps_the_largest_second_moment():
    p = with_grad(param(0.0), 10.0)
    opt = Adam([p], amsgrad=True)
    opt.step()
    with_grad(p, 0.0)
    opt.step()
    state = opt.state[p]
    assert state["max_exp_avg_sq"].numpy()[0] > state["exp_avg_sq"].numpy()[0]
    np.testing.assert_allclose(state["max_exp_avg_sq"].numpy(), [0.001 * 100])


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps)])
def test_updates_are_in_place_and_skip_missing_grads(make):
    used, unused = with_grad(param(1.0, 2.0, dtype=np.float32), 1.0, 1.0), param(5.0, dtype=np.float32)
    array = used.data
    opt = make([used, unused])
    opt.step()
    assert used.data is array and used.dtype == np.float32 and used.requires_grad and used.grad_fn is None
    assert np.all(used.numpy() < [1.0, 2.0])
    assert unused.numpy()[0] == 5.0 and unused not in opt.state
    assert list(opt.state_dict()["state"]) == [0]


def test_sgd_without_momentum_keeps_no_state():
    p = with_grad(param(1.0), 1.0)
    opt = SGD([p], lr=0.5)
    opt.step()
    assert opt.state == {} and p.numpy()[0] == 0.5


def test_zero_grad():
    p = with_grad(param(1.0), 1.0)
    opt = SGD([p])
    opt.zero_grad(set_to_none=False)
    assert p.grad.numpy()[0] == 0.0
    opt.zero_grad()
    assert p.grad is None


def test_step_with_closure_records_even_under_no_grad():
    p = param(3.0)
    opt = SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tinygen.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(p.numpy(), [3.0 - 0.6])


def test_state_dict_structure_and_round_trip():
    a, b = with_grad(param(1.0), 1.0), with_grad(param(2.0, 3.0), 1.0, -1.0)
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}])
    opt.step()
    state = opt.state_dict()
    assert list(state["state"]) == [0, 1]
    assert [g["params"] for g in state["param_groups"]] == [[0], [1]]
    assert state["param_groups"][1]["lr"] == 0.5 and state["param_groups"][0]["betas"] == (0.9, 0.999)
    snapshot = copy.deepcopy(state)
    fresh = Adam([{"params": [param(1.0)]}, {"params": [param(0.0, 0.0)]}], lr=9.0)
    fresh.load_state_dict(snapshot)
    assert [g["lr"] for g in fresh.param_groups] == [1e-3, 0.5]
    loaded = fresh.state[fresh.param_groups[1]["params"][0]]
    assert loaded["step"] == 1
    np.testing.assert_array_equal(loaded["exp_avg"].numpy(), opt.state[b]["exp_avg"].numpy())
    snapshot["state"][1]["exp_avg"].data[...] = 99  # the optimizer holds copies
    assert loaded["exp_avg"].numpy()[0] != 99


def test_load_state_dict_casts_state_to_the_parameters_dtype():
    p = with_grad(param(1.0), 1.0)
    opt = SGD([p], momentum=0.9)
    opt.step()
    low = param(1.0, dtype=np.float32)
    other = SGD([low], momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert other.state[low]["momentum_buffer"].dtype == np.float32


def test_load_state_dict_checks_the_group_layout():
    opt = SGD([param(1.0), param(2.0)])
    groups = opt.state_dict()["param_groups"]
    with pytest.raises(ValueError, match="the state dict has 2 parameter groups, this optimizer has 1"):
        opt.load_state_dict({"state": {}, "param_groups": groups * 2})
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict, 1 in this optimizer"):
        SGD([param(1.0)]).load_state_dict(opt.state_dict())


def test_base_class_needs_an_update_rule():
    p = with_grad(param(1.0), 1.0)
    with pytest.raises(NotImplementedError, match="Optimizer has no _update"):
        Optimizer([p], {}).step()


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize(
    "make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), lambda ps: Adam(ps, amsgrad=True)]
)
def test_cuda_updates_match_numpy(make):
    values, grads = np.array([1.0, -2.0, 0.5]), np.array([0.3, -0.1, 2.0])
    results = []
    for device in ("cpu", "cuda"):
        p = Parameter(tinygen.tensor(values, device=device))
        array = p.data
        opt = make([p])
        for _ in range(3):
            p.grad = tinygen.tensor(grads, device=device)
            opt.step()
        assert p.data is array and p.device == device
        fresh = make([Parameter(tinygen.tensor(values, device=device))])
        fresh.load_state_dict(opt.state_dict())  # state moves to the parameter's device
        assert all(
            v.device == device
            for v in fresh.state_dict()["state"][0].values()
            if isinstance(v, tinygen.Tensor)
        )
        results.append(p.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)
