"""Module parity with torch.nn (optional: skipped without torch).

A torch model's state_dict is loaded into the tinygen twin; outputs, input gradients and
parameter gradients must agree to float64 round-off. Reprs, state_dict keys and their
order (buffers, sharing) must be the same too.
"""

import numpy as np
import pytest

import tinygen
from tinygen.nn.module import Module, Parameter
from tinygen.nn.modules import activation, container, dropout, flatten, linear

torch = pytest.importorskip("torch")


def build(nn):
    """The same MLP in either namespace (``nn`` has the layer classes as attributes)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(12, 8),
        nn.LeakyReLU(0.2),
        nn.Linear(8, 8),
        nn.ELU(alpha=0.7),
        nn.Dropout(0.3),
        nn.Linear(8, 6, bias=False),
        nn.Softplus(beta=2.0, threshold=3.0),
        nn.Unflatten(1, (2, 3)),
        nn.Tanh(),
        nn.Identity(),
        nn.Sigmoid(),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6, 5),
        nn.LogSoftmax(dim=-1),
    )


class OursNN:
    """tinygen's layers under torch.nn's names."""

    Sequential, ModuleList, ModuleDict = container.Sequential, container.ModuleList, container.ModuleDict
    Linear, Identity = linear.Linear, linear.Identity
    Flatten, Unflatten, Dropout = flatten.Flatten, flatten.Unflatten, dropout.Dropout
    LeakyReLU, ELU, Softplus, Tanh = (
        activation.LeakyReLU,
        activation.ELU,
        activation.Softplus,
        activation.Tanh,
    )
    Sigmoid, ReLU, LogSoftmax, Softmax = (
        activation.Sigmoid,
        activation.ReLU,
        activation.LogSoftmax,
        activation.Softmax,
    )


def twins():
    torch.manual_seed(0)
    theirs = build(torch.nn).double().eval()
    ours = build(OursNN).double().eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def test_outputs_and_gradients_match_torch():
    theirs, ours = twins()
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    weights = np.random.default_rng(1).standard_normal((4, 5))
    tx = torch.tensor(x, requires_grad=True)
    ox = tinygen.tensor(x, requires_grad=True)
    t_out, o_out = theirs(tx), ours(ox)
    np.testing.assert_allclose(o_out.numpy(), t_out.detach().numpy(), rtol=1e-12, atol=1e-14)
    (t_out * torch.tensor(weights)).sum().backward()
    (o_out * tinygen.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    for (name, t), (_, o) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


def test_repr_and_state_dict_keys_match_torch():
    theirs, ours = twins()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})


def test_default_init_bounds_match_torch():
    torch.manual_seed(0)
    theirs, ours = torch.nn.Linear(50, 40), linear.Linear(50, 40)
    for name, t in theirs.named_parameters():
        o = getattr(ours, name).numpy()
        t = t.detach().numpy()
        assert o.shape == t.shape and o.dtype == t.dtype
        assert np.abs(o).max() <= 1 / np.sqrt(50) and np.abs(t).max() <= 1 / np.sqrt(50)
        assert abs(o.std() - t.std()) < 0.25 * t.std()


def make_state_net(lib):
    """Buffers (persistent and not), a parameter registered after a child, a shared child."""
    Base, Param = (torch.nn.Module, torch.nn.Parameter) if lib is torch else (Module, Parameter)
    Lin = torch.nn.Linear if lib is torch else linear.Linear
    zeros = torch.zeros if lib is torch else tinygen.zeros

    class Net(Base):
        def __init__(self):
            super().__init__()
            self.enc = Lin(2, 3)
            self.register_buffer("steps", zeros(1))
            self.register_buffer("scratch", zeros(1), persistent=False)
            self.scale = Param(zeros(3))
            self.dec = Lin(3, 2)
            self.tied = self.enc
            self.register_parameter("unused", None)

    return Net()


def test_state_dict_order_buffers_and_sharing_match_torch():
    theirs, ours = make_state_net(torch), make_state_net(tinygen)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    names = [n for n, _ in theirs.named_modules(remove_duplicate=False)]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == names
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    del state["dec.bias"]
    state["extra"] = np.zeros(1)
    t_result = theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)
    assert ours.load_state_dict(state, strict=False) == tuple(t_result)
