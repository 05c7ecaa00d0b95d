"""Losses: stable at extreme inputs, PyTorch's reductions, clear errors on bad targets."""

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tinygen.errors import DTypeError, ShapeError


def finite(*tensors):
    return all(np.isfinite(t.numpy()).all() for t in tensors)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logit_losses_are_finite_at_logit_100(dtype):
    logits = tinygen.tensor(np.array([-100.0, 100.0, 0.0], dtype=dtype), requires_grad=True)
    target = tinygen.tensor(np.array([1.0, 0.0, 1.0], dtype=dtype))
    loss = F.binary_cross_entropy_with_logits(logits, target)
    loss.backward()
    assert finite(loss, logits.grad)
    np.testing.assert_allclose(loss.item(), (100 + 100 + np.log(2)) / 3, rtol=1e-6)
    np.testing.assert_allclose(logits.grad.numpy(), np.array([-1, 1, -0.5]) / 3, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_is_finite_at_logit_100(dtype):
    x = tinygen.tensor(
        np.array([[100.0, -100.0, 0.0], [-100.0, -100.0, 100.0]], dtype=dtype), requires_grad=True
    )
    outputs = [
        F.cross_entropy(x, tinygen.tensor([1, 0])),
        F.log_softmax(x, 1).sum(),
        F.softmax(x, 1).sum(),
        x.logsumexp(1).sum(),
        F.softplus(x).sum(),
        x.sigmoid().sum(),
        x.tanh().sum(),
    ]
    for out in outputs:
        x.grad = None
        out.backward()
        assert finite(out, x.grad)
    np.testing.assert_allclose(F.cross_entropy(x, tinygen.tensor([1, 0])).item(), 200.0, rtol=1e-6)


def test_bce_on_saturated_probabilities_is_clamped_like_pytorch():
    p = tinygen.tensor(np.array([0.0, 1.0, 0.5]), requires_grad=True)
    t = tinygen.tensor(np.array([1.0, 0.0, 1.0]))
    loss = F.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, np.log(2)])
    loss.sum().backward()
    assert finite(p.grad)


def test_bce_rejects_values_outside_0_1():
    with pytest.raises(ValueError, match=r"input values must lie in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(tinygen.tensor([1.5]), tinygen.tensor([1.0]))


def test_cross_entropy_weighted_mean_and_ignore_index():
    logits = tinygen.tensor(np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])))
    target = tinygen.tensor([0, 1, -100])
    weight = tinygen.tensor(np.array([2.0, 1.0, 1.0]))
    loss = F.cross_entropy(logits, target, weight=weight)
    expected = (2 * -np.log(0.7) + 1 * -np.log(0.8)) / 3  # weighted mean over non-ignored targets
    np.testing.assert_allclose(loss.item(), expected)


def test_nll_loss_spatial_shape():
    logp = F.log_softmax(tinygen.randn(2, 4, 3, 5, dtype=tinygen.float64), 1)
    target = tinygen.randint(0, 4, (2, 3, 5))
    assert F.nll_loss(logp, target, reduction="none").shape == (2, 3, 5)


def test_class_target_errors_name_the_problem():
    scores = tinygen.randn(3, 4)
    with pytest.raises(ValueError, match=r"target holds 7, expected class indices in \[0, 4\)"):
        F.cross_entropy(scores, tinygen.tensor([0, 7, 1]))
    with pytest.raises(ShapeError, match=r"target has shape \(2,\), expected \(3,\)"):
        F.cross_entropy(scores, tinygen.tensor([0, 1]))
    with pytest.raises(DTypeError, match="integer class indices"):
        F.nll_loss(scores, tinygen.tensor(np.array([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match="reduction 'avg'"):
        F.mse_loss(scores, scores, reduction="avg")


def test_gaussian_kl_is_zero_for_the_prior():
    mu, logvar = tinygen.zeros(4, 3), tinygen.zeros(4, 3)
    assert F.gaussian_kl(mu, logvar).item() == 0.0
    mu = tinygen.tensor(np.full((2, 3), 2.0))
    np.testing.assert_allclose(F.gaussian_kl(mu, tinygen.zeros(2, 3), reduction="batchmean").item(), 6.0)


def test_dropout_scales_kept_values_and_is_identity_in_eval():
    tinygen.manual_seed(0)
    x = tinygen.ones(1000)
    y = F.dropout(x, 0.25)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75, rtol=1e-6)
    assert 0.65 < kept.mean() < 0.85
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(ValueError, match="dropout: p must be in"):
        F.dropout(x, 1.5)
