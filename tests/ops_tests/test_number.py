"""A Python number beside a tensor (``a * 2``, ``1 - a``) stays a number: ops/number.py.

Its values and dtypes are those of the tensor form with the number as a 0-d tensor, bit
for bit; its gradients pass gradcheck to the second order; and a training step of each
model turns no Python number into an array (on a GPU that would be a host-to-device copy).
"""

import sys

import numpy as np
import pytest

import tinygen
import tinygen.autograd.tensor
from tinygen import trainer
from tinygen.models import registry
from tinygen.ops import elementwise as ew
from tinygen.testing import gradcheck, gradgradcheck

OPS = {"add": ew.Add, "sub": ew.Sub, "mul": ew.Mul, "div": ew.Div}
NUMBERS = [2, -3, 0.5, 1e-3, True, np.float64(0.25), np.int32(4)]
DTYPES = ["float32", "float64", "int64", "int32", "bool"]


def tensor_form(op, a, b):
    """The op with the number made a 0-d tensor first: what ``a * 2`` computed before."""
    if not isinstance(a, tinygen.Tensor):
        a, b = ew._promote_scalar(a, b)
    else:
        b, a = ew._promote_scalar(b, a)
    return OPS[op].apply(a, b)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("number", NUMBERS, ids=repr)
def test_the_number_form_gives_the_tensor_forms_values_and_dtype(op, dtype, number):
    rng = np.random.default_rng(0)
    a = tinygen.tensor((rng.normal(size=(3, 4)) * 5).astype(dtype) + (dtype != "bool"))
    if op == "sub" and dtype == "bool" and isinstance(number, bool):
        pytest.skip("NumPy refuses to subtract booleans, as PyTorch does")
    for left, right in ((a, number), (number, a)):
        ours = getattr(ew, op)(left, right)
        theirs = tensor_form(op, left, right)
        assert ours.dtype == theirs.dtype, (left, right)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("side", ["tensor-number", "number-tensor"])
def test_the_number_forms_pass_gradcheck_to_second_order(op, side):
    x = tinygen.tensor(np.random.default_rng(1).uniform(0.5, 2.0, (2, 3)), requires_grad=True)
    def fn(t):
        return getattr(ew, op)(t, 1.7) if side == "tensor-number" else getattr(ew, op)(1.7, t)

    gradcheck(fn, [x])
    gradgradcheck(fn, [x])


def test_where_and_comparisons_take_numbers_as_they_are():
    x = tinygen.tensor(np.array([-1.0, 0.0, 2.0], np.float32), requires_grad=True)
    y = tinygen.where(x > 0, x, 0.5)
    assert y.dtype == np.float32 and y.numpy().tolist() == [0.5, 0.5, 2.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0, 1.0]
    assert (tinygen.tensor(np.array([1, 2], np.uint8)) < 300).numpy().tolist() == [True, True]
    assert tinygen.where(tinygen.tensor(np.array([True, False])), 1.0, 0.0).numpy().tolist() == [1.0, 0.0]


SMALL = {"pixelrnn": {"layers": 1, "hidden": 4}, "vae": {}}  # the GANs: nz 8, ngf 4, ndf 4


def tiny_config(model):
    config = trainer.defaults(model)
    config.update(SMALL.get(model, {"nz": 8, "ngf": 4, "ndf": 4}))
    return config


def count_numbers_made_tensors(monkeypatch):
    """Wrap every module's ``as_tensor``: count the calls that turn a Python number into an array."""
    made = []
    original = tinygen.autograd.tensor.as_tensor

    def counting(value, like=None):
        if not isinstance(value, tinygen.Tensor):
            made.append(value)
        return original(value, like)

    for module in list(sys.modules.values()):
        if getattr(module, "as_tensor", None) is original:
            monkeypatch.setattr(module, "as_tensor", counting)
    return made


@pytest.mark.parametrize("model", ["dcgan", "cgan", "wgan-gp", "vae", "pixelrnn"])
def test_a_training_step_makes_no_array_from_a_python_number(model, monkeypatch):
    tinygen.manual_seed(0)
    recipe = registry.MODELS[model](tiny_config(model), (1, 8, 8))
    rng = np.random.default_rng(0)
    low = 0.0 if model in ("vae", "pixelrnn") else -1.0
    batch = (tinygen.tensor(rng.uniform(low, 1, (8, 1, 8, 8)).astype(np.float32)),
             tinygen.tensor(rng.integers(0, 10, 8)))
    recipe.train_step(batch)  # the first step may set things up
    made = count_numbers_made_tensors(monkeypatch)
    for _ in range(5):  # five, so a WGAN-GP generator step is among them
        recipe.train_step(batch)
    assert made == [], f"{model}: a training step made arrays of the numbers {made}"
