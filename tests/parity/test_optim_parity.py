"""Optimizer parity with torch.optim (optional: skipped without torch).

The same float64 model, data and hyperparameters in both libraries; after every step the
parameters must agree to round-off. A state_dict taken mid-training, saved and loaded into
a fresh optimizer, must continue exactly as the uninterrupted run.
"""

import numpy as np
import pytest

import tinygen
from tinygen.nn.modules.activation import Tanh
from tinygen.nn.modules.container import Sequential
from tinygen.nn.modules.linear import Linear
from tinygen.optim.adam import Adam
from tinygen.optim.sgd import SGD
from tinygen.serialization import load, save

torch = pytest.importorskip("torch")

STEPS = 25
RTOL, ATOL = 1e-10, 1e-12  # float64 round-off, accumulated over STEPS updates


def make_models(seed=0):
    """A torch MLP and a tinygen copy of it (float64, identical weights)."""
    torch.manual_seed(seed)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    ours = Sequential(Linear(3, 5), Tanh(), Linear(5, 2)).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def data(step):
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((8, 3)), rng.standard_normal((8, 2))


def torch_step(model, opt, step):
    x, y = (torch.tensor(a) for a in data(step))
    opt.zero_grad()
    ((model(x) - y) ** 2).mean().backward()
    opt.step()


def our_step(model, opt, step):
    x, y = (tinygen.tensor(a) for a in data(step))
    opt.zero_grad()
    ((model(x) - y) ** 2).mean().backward()
    opt.step()


def assert_same_params(theirs, ours, context):
    for (name, t), (our_name, o) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        assert name == our_name
        np.testing.assert_allclose(
            o.numpy(), t.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{context}: {name}"
        )


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
    dict(lr=0.05, momentum=0.5, maximize=True, weight_decay=0.1),
]
ADAM_CONFIGS = [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.05),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.01),
]
CASES = [(SGD, torch.optim.SGD, c) for c in SGD_CONFIGS] + [(Adam, torch.optim.Adam, c) for c in ADAM_CONFIGS]
CASE_IDS = [f"{ours.__name__}-{config}" for ours, _, config in CASES]


@pytest.mark.parametrize(("ours_cls", "torch_cls", "config"), CASES, ids=CASE_IDS)
def test_steps_match_torch(ours_cls, torch_cls, config):
    theirs, ours = make_models()
    torch_opt = torch_cls(theirs.parameters(), foreach=False, **config)
    our_opt = ours_cls(ours.parameters(), **config)
    for step in range(STEPS):
        torch_step(theirs, torch_opt, step)
        our_step(ours, our_opt, step)
        assert_same_params(theirs, ours, f"{ours_cls.__name__}({config}) step {step}")


@pytest.mark.parametrize(("ours_cls", "torch_cls", "config"), [CASES[3], CASES[-1]], ids=["sgd", "adam"])
def test_param_groups_match_torch(ours_cls, torch_cls, config):
    theirs, ours = make_models()
    t0, t1 = list(theirs.children())[0], list(theirs.children())[2]
    torch_opt = torch_cls(
        [{"params": t0.parameters()}, {"params": t1.parameters(), "lr": 0.003}], foreach=False, **config
    )
    our_opt = ours_cls(
        [{"params": ours[0].parameters()}, {"params": ours[2].parameters(), "lr": 0.003}], **config
    )
    for step in range(10):
        torch_step(theirs, torch_opt, step)
        our_step(ours, our_opt, step)
    assert_same_params(theirs, ours, f"{ours_cls.__name__} with two groups")


@pytest.mark.parametrize(
    ("ours_cls", "config"), [(SGD, SGD_CONFIGS[3]), (Adam, ADAM_CONFIGS[4])], ids=["sgd", "adam"]
)
def test_state_dict_round_trip_continues_identically(tmp_path, ours_cls, config):
    _, straight = make_models()
    _, resumed = make_models()
    straight_opt = ours_cls(straight.parameters(), **config)
    resumed_opt = ours_cls(resumed.parameters(), **config)
    for step in range(5):
        our_step(straight, straight_opt, step)
        our_step(resumed, resumed_opt, step)
    save({"model": resumed.state_dict(), "optimizer": resumed_opt.state_dict()}, tmp_path / "ckpt.npz")
    _, fresh = make_models(seed=1)  # different weights, overwritten by the checkpoint
    fresh_opt = ours_cls(fresh.parameters(), lr=123.0)  # hyperparameters come from the checkpoint
    checkpoint = load(tmp_path / "ckpt.npz")
    fresh.load_state_dict(checkpoint["model"])
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    assert fresh_opt.param_groups[0]["lr"] == config["lr"]
    for step in range(5, 15):
        our_step(straight, straight_opt, step)
        our_step(fresh, fresh_opt, step)
    for (name, a), (_, b) in zip(straight.named_parameters(), fresh.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_state_dict_layout_matches_torch():
    theirs, ours = make_models()
    torch_opt = torch.optim.Adam(theirs.parameters(), lr=0.01, amsgrad=True, foreach=False)
    our_opt = Adam(ours.parameters(), lr=0.01, amsgrad=True)
    for step in range(3):
        torch_step(theirs, torch_opt, step)
        our_step(ours, our_opt, step)
    t_sd, o_sd = torch_opt.state_dict(), our_opt.state_dict()
    assert list(o_sd) == list(t_sd) == ["state", "param_groups"]
    assert list(o_sd["state"]) == list(t_sd["state"])
    for index, t_state in t_sd["state"].items():
        o_state = o_sd["state"][index]
        assert list(o_state) == list(t_state)
        assert o_state["step"] == t_state["step"].item()
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            np.testing.assert_allclose(o_state[key].numpy(), t_state[key].numpy(), rtol=RTOL, atol=ATOL)
    t_group, o_group = t_sd["param_groups"][0], o_sd["param_groups"][0]
    assert o_group["params"] == t_group["params"]
    for key, value in o_group.items():
        assert t_group[key] == value, key
