"""tinygen.norm: the vector p-norm, its gradient to any order, and 0 (not NaN) at a zero vector."""

import math

import numpy as np
import pytest

import tinygen
from tinygen.testing import gradcheck, gradgradcheck

PS = [1, 2, 3, 1.5, math.inf]


def numpy_norm(x, p, axes, keepdim):
    if p == math.inf:
        return np.abs(x).max(axis=axes, keepdims=keepdim)
    return (np.abs(x) ** p).sum(axis=axes, keepdims=keepdim) ** (1 / p)


@pytest.mark.parametrize("p", PS + ["fro"])
@pytest.mark.parametrize("dim, axes", [(None, None), (1, 1), (-1, 2), ((0, 2), (0, 2))])
@pytest.mark.parametrize("keepdim", [False, True])
def test_norm_matches_its_formula(p, dim, axes, keepdim):
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    got = tinygen.norm(tinygen.tensor(x), p, dim, keepdim)
    expected = numpy_norm(x, 2 if p == "fro" else p, axes, keepdim)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    assert tinygen.tensor(x).norm(p, dim, keepdim).shape == got.shape  # the method is the function


@pytest.mark.parametrize("p", PS)
def test_norm_passes_gradcheck_and_gradgradcheck(p):
    signs = np.array([1, -1, 1, -1])
    x = tinygen.tensor(np.random.default_rng(1).uniform(0.2, 1.5, (3, 4)) * signs, requires_grad=True)
    gradcheck(lambda t: tinygen.norm(t, p, dim=1), [x])
    gradgradcheck(lambda t: tinygen.norm(t, p, dim=1), [x])


@pytest.mark.parametrize("p", [2, 3, 1.5])
def test_a_zero_vector_gets_gradient_zero(p):
    x = tinygen.tensor(np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1.0]]), requires_grad=True)
    (grad,) = tinygen.grad(tinygen.norm(x, p, dim=1).sum(), x, create_graph=True)
    assert np.all(grad.numpy()[0] == 0) and np.all(np.isfinite(grad.numpy()))
    if p >= 2:  # |x|**p has a finite second derivative at x = 0 only for p >= 2
        (second,) = tinygen.grad((grad * grad).sum(), x)
        assert np.all(np.isfinite(second.numpy()))


def test_norm_refuses_what_it_cannot_compute():
    x = tinygen.tensor(np.ones((2, 2)))
    for p in (0.5, 0, "nuc", -1):
        with pytest.raises(ValueError, match="norm: p is"):
            tinygen.norm(x, p)
    with pytest.raises(TypeError, match="floating-point"):
        tinygen.norm(tinygen.tensor(np.ones(3, np.int64)))


@pytest.mark.parametrize("p", PS)
def test_norm_and_its_gradient_match_torch(p):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).normal(size=(4, 5))
    x[0] = 0.0  # a zero row: gradient 0 in both
    x[1, :2] = 2.5, -2.5  # a tie for the largest |x|
    ours = tinygen.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y, y_torch = tinygen.norm(ours, p, dim=1), torch.linalg.vector_norm(theirs, p, dim=1)
    np.testing.assert_allclose(y.numpy(), y_torch.detach().numpy(), rtol=1e-12)
    weights = np.arange(1.0, 5.0)
    (y * tinygen.tensor(weights)).sum().backward()
    (y_torch * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-15)
