"""Layers and containers: shapes, PyTorch's default init, state_dict keys, modes, reprs, errors."""

import collections
import math

import numpy as np
import pytest

import tinygen
from tinygen.errors import ShapeError
from tinygen.nn.modules.activation import ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from tinygen.nn.modules.container import ModuleDict, ModuleList, Sequential
from tinygen.nn.modules.dropout import Dropout
from tinygen.nn.modules.flatten import Flatten, Unflatten
from tinygen.nn.modules.linear import Identity, Linear
from tinygen.testing import gradcheck

RNG = np.random.default_rng(0)


def randn(*shape):
    return tinygen.tensor(RNG.standard_normal(shape), requires_grad=True)


# ----------------------------------------------------------------------------- Linear, Identity


def test_linear_forward_and_parameters():
    layer = Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    x = tinygen.tensor(RNG.standard_normal((2, 5, 4)).astype(np.float32))
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_linear_default_init_is_pytorchs():
    layer = Linear(400, 300, dtype=tinygen.float64)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) and the bias rule agree
    for p, n in ((layer.weight, 120_000), (layer.bias, 300)):
        values = p.numpy()
        assert values.min() >= -bound and values.max() <= bound and values.dtype == np.float64
        assert abs(values.std() - bound / math.sqrt(3)) < 5 * bound / math.sqrt(6 * n)
    tinygen.manual_seed(5)
    a = Linear(3, 2)
    tinygen.manual_seed(5)
    np.testing.assert_array_equal(a.weight.numpy(), Linear(3, 2).weight.numpy())


def test_linear_without_bias_and_gradients():
    layer = Linear(3, 2, bias=False, dtype=tinygen.float64)
    assert layer.bias is None and list(layer.state_dict()) == ["weight"]
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False)"
    assert repr(Linear(3, 4)) == "Linear(in_features=3, out_features=4, bias=True)"
    biased = Linear(3, 2, dtype=tinygen.float64)
    gradcheck(
        lambda x, w, b: tinygen.nn.functional.linear(x, w, b), (randn(4, 3), biased.weight, biased.bias)
    )


def test_linear_errors():
    with pytest.raises(ValueError, match="in_features must be a non-negative int, got 2.5"):
        Linear(2.5, 3)
    with pytest.raises(ShapeError, match="input.shape\\[-1\\] is 5"):
        Linear(4, 3)(tinygen.ones(2, 5))


def test_identity_ignores_arguments():
    x = tinygen.ones(2)
    assert Identity(3, unused=True)(x) is x
    assert repr(Identity()) == "Identity()"


# ----------------------------------------------------------------------------- containers


def test_sequential_chains_indexes_and_names_keys():
    net = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
    assert len(net) == 3 and isinstance(net[-1], Linear) and net[1] is list(net)[1]
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = tinygen.randn(5, 2)
    np.testing.assert_allclose(net(x).numpy(), net[2](net[1](net[0](x))).numpy())
    head = net[1:]
    assert isinstance(head, Sequential) and list(head._modules) == ["1", "2"] and head[0] is net[1]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        net[3]  # noqa: B018


def test_sequential_from_ordered_dict_and_editing():
    net = Sequential(collections.OrderedDict([("fc", Linear(2, 3)), ("act", Tanh())]))
    assert list(net.state_dict()) == ["fc.weight", "fc.bias"] and net.fc is net[0]
    net.append(Linear(3, 1))
    assert list(net._modules) == ["fc", "act", "2"]
    net[1] = Sigmoid()
    assert isinstance(net.act, Sigmoid)
    del net[0]  # renumbered, as in PyTorch
    assert list(net._modules) == ["0", "1"] and isinstance(net[0], Sigmoid)
    net.insert(0, Identity())
    net.insert(-1, ReLU())
    assert [type(m).__name__ for m in net] == ["Identity", "Sigmoid", "ReLU", "Linear"]
    assert repr(Sequential(ReLU(), Tanh())) == "Sequential(\n  (0): ReLU()\n  (1): Tanh()\n)"


def test_module_list():
    layers = ModuleList([Linear(2, 2) for _ in range(2)])
    layers.append(Linear(2, 1))
    layers += [ReLU()]
    assert len(layers) == 4 and isinstance(layers[-1], ReLU)
    assert list(layers.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert isinstance(layers[:2], ModuleList) and len(layers[:2]) == 2
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2"]
    with pytest.raises(NotImplementedError):
        layers(tinygen.ones(2))


def test_module_dict():
    heads = ModuleDict({"mu": Linear(3, 2), "logvar": Linear(3, 2)})
    heads["extra"] = Tanh()
    assert list(heads) == ["mu", "logvar", "extra"] and "mu" in heads and len(heads) == 3
    assert list(heads.state_dict()) == ["mu.weight", "mu.bias", "logvar.weight", "logvar.bias"]
    assert isinstance(heads.pop("extra"), Tanh) and list(heads.keys()) == ["mu", "logvar"]
    heads.update([("act", ReLU())])
    assert [k for k, _ in heads.items()] == ["mu", "logvar", "act"]
    with pytest.raises(TypeError, match="must be a Module"):
        heads["bad"] = 3


# ----------------------------------------------------------------------------- activations


X = np.linspace(-30, 30, 13)


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (ReLU(), np.maximum(X, 0)),
        (LeakyReLU(), np.where(X > 0, X, 0.01 * X)),
        (LeakyReLU(0.2), np.where(X > 0, X, 0.2 * X)),
        (ELU(alpha=0.5), np.where(X > 0, X, 0.5 * np.expm1(X))),
        (Softplus(), np.where(X > 20, X, np.log1p(np.exp(X)))),
        (Softplus(beta=2, threshold=5), np.where(2 * X > 5, X, np.log1p(np.exp(2 * X)) / 2)),
        (Sigmoid(), 1 / (1 + np.exp(-X))),
        (Tanh(), np.tanh(X)),
    ],
    ids=repr,
)
def test_activation_values(module, expected):
    np.testing.assert_allclose(module(tinygen.tensor(X)).numpy(), expected, rtol=1e-12, atol=1e-300)


def test_softmax_modules():
    x = tinygen.tensor(RNG.standard_normal((3, 4)))
    np.testing.assert_allclose(Softmax(dim=0)(x).numpy().sum(0), 1.0)
    np.testing.assert_allclose(np.exp(LogSoftmax(dim=1)(x).numpy()).sum(1), 1.0)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = Softmax()(x)  # PyTorch's legacy choice: dim 1 for 2-d input
    np.testing.assert_allclose(y.numpy().sum(1), 1.0)


@pytest.mark.parametrize(
    ("module", "text"),
    [
        (ReLU(), "ReLU()"),
        (ReLU(True), "ReLU(inplace=True)"),
        (LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
        (LeakyReLU(0.2, inplace=True), "LeakyReLU(negative_slope=0.2, inplace=True)"),
        (ELU(), "ELU(alpha=1.0)"),
        (Softplus(), "Softplus(beta=1.0, threshold=20.0)"),
        (Sigmoid(), "Sigmoid()"),
        (Softmax(dim=1), "Softmax(dim=1)"),
        (LogSoftmax(dim=-1), "LogSoftmax(dim=-1)"),
        (Dropout(), "Dropout(p=0.5, inplace=False)"),
        (Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
        (Unflatten(1, (2, 5)), "Unflatten(dim=1, unflattened_size=(2, 5))"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_reprs(module, text):
    assert repr(module) == text


# ----------------------------------------------------------------------------- dropout, flatten


def test_dropout_follows_the_training_flag():
    drop = Dropout(p=0.25)
    x = tinygen.ones(200, 200)
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01
    drop.eval()
    assert drop(x) is x
    net = Sequential(Linear(2, 2), Dropout(1.0))
    assert np.all(net(tinygen.ones(3, 2)).numpy() == 0)
    net.eval()
    assert np.any(net(tinygen.ones(3, 2)).numpy() != 0)
    with pytest.raises(ValueError, match="p must be a probability in \\[0, 1\\], got 1.5"):
        Dropout(1.5)


def test_flatten_and_unflatten_round_trip():
    x = randn(2, 3, 4, 5)
    flat = Flatten()(x)
    assert (
        flat.shape == (2, 60) and Flatten(0, 1)(x).shape == (6, 4, 5) and Flatten(-2)(x).shape == (2, 3, 20)
    )
    back = Unflatten(1, (3, -1, 5))(flat)
    assert back.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    back.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 1.0)
    assert Unflatten(-1, (2, 30))(flat).shape == (2, 2, 30)


def test_unflatten_errors():
    with pytest.raises(ShapeError, match="has 8 elements, expected input.shape\\[1\\] = 60"):
        Unflatten(1, (2, 4))(tinygen.ones(2, 60))
    with pytest.raises(TypeError, match="tuple of ints"):
        Unflatten(1, 6)
