"""The VAE: its bounds against closed forms, quadrature and Monte Carlo, and its failure modes."""

import math

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tinygen.errors import ShapeError
from tinygen.models import vae
from tinygen.nn import init


def tiny_vae(latent=1, pixels=4, hidden=(6,), seed=0):
    """A float64 MLP VAE on 2x2 (or 1 x pixels) images, small enough for quadrature over z."""
    tinygen.manual_seed(seed)
    side = int(math.isqrt(pixels))
    model = vae.VAE("mlp", latent=latent, hidden=hidden, activation="tanh", channels=1, image_size=side)
    return model.double()


def binary_images(n, pixels=4, seed=0):
    side = int(math.isqrt(pixels))
    return (np.random.default_rng(seed).random((n, 1, side, side)) < 0.5).astype(np.float64)


def test_analytic_kl_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(3, 4)), rng.normal(scale=0.5, size=(3, 4))
    kl = F.gaussian_kl(tinygen.tensor(mu), tinygen.tensor(logvar), reduction="none").numpy().sum(1)
    eps = rng.standard_normal((200_000, 3, 4))
    z = mu + np.exp(logvar / 2) * eps
    log_q = -0.5 * (eps**2 + logvar + math.log(2 * math.pi)).sum(2)
    log_p = -0.5 * (z**2 + math.log(2 * math.pi)).sum(2)
    samples = log_q - log_p
    stderr = samples.std(0) / math.sqrt(len(samples))
    np.testing.assert_array_less(np.abs(samples.mean(0) - kl), 5 * stderr)


def test_log_weights_average_to_the_elbo():
    """E_q[log w] = E_q[log p(x|z)] - KL: L_1 is the ELBO in expectation (analytic KL on the right)."""
    model = tiny_vae(latent=2)
    x = tinygen.tensor(binary_images(3))
    tinygen.manual_seed(1)
    with tinygen.no_grad():
        log_w = vae.log_weights(model, x, 100_000).numpy()                         # (3, k)
        mu, logvar = model.encode(x)
        eps = tinygen.randn(100_000, 3, 2, dtype=tinygen.float64)
        z = mu.unsqueeze(0) + tinygen.exp(0.5 * logvar).unsqueeze(0) * eps
        targets = x.expand(100_000, 3, 1, 2, 2).reshape(-1, 1, 2, 2)
        recon = vae.bernoulli_nll(model.decode(z.reshape(-1, 2)), targets)
        kl = F.gaussian_kl(mu, logvar, reduction="none").sum(1).numpy()
    elbo = -recon.numpy().reshape(100_000, 3).mean(0) - kl
    stderr = log_w.std(1) / math.sqrt(log_w.shape[1])
    np.testing.assert_array_less(np.abs(log_w.mean(1) - elbo), 5 * stderr + 1e-3)


trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed it


def exact_log_likelihood(model, x):
    """log p(x) = log integral p(x|z) N(z; 0, 1) dz for a 1-D latent, by the trapezoid rule on [-12, 12]."""
    z = np.linspace(-12, 12, 48_001)
    with tinygen.no_grad():
        logits = model.decode(tinygen.tensor(z[:, None]))                          # (Z, 1, 2, 2)
    out = []
    for image in x:
        target = tinygen.tensor(np.broadcast_to(image, logits.shape).copy())
        log_px_z = -vae.bernoulli_nll(logits, target).numpy()
        log_joint = log_px_z - 0.5 * (z**2 + math.log(2 * math.pi))
        peak = log_joint.max()
        out.append(peak + math.log(trapezoid(np.exp(log_joint - peak), z)))
    return np.array(out)


def test_importance_weighted_bound_approaches_the_exact_likelihood_from_below():
    model = tiny_vae(latent=1)
    x = binary_images(16, seed=3)
    exact_nll = -exact_log_likelihood(model, x).mean()
    copies = np.repeat(x, 25, axis=0)  # 25 independent estimates of each image's bound
    nll = {}
    for k in (1, 10, 100, 5000):
        tinygen.manual_seed(0)
        nll[k] = vae.evaluate(model, copies, k=k, batch_size=100)["nll_iwae"]
    # -L_k >= -log p(x), and it tightens as k grows (averaged over 400 estimates)
    assert nll[1] > nll[10] > nll[100] > nll[5000] >= exact_nll - 1e-3
    assert nll[5000] - exact_nll < 0.01


def test_bound_does_not_decrease_with_k_on_average():
    model = tiny_vae(latent=3, pixels=9, hidden=(8,))
    x = np.repeat(binary_images(8, pixels=9, seed=1), 100, axis=0)
    bounds = []
    for k in (1, 2, 8, 32):
        tinygen.manual_seed(k)
        bounds.append(-vae.evaluate(model, x, k=k, batch_size=200)["nll_iwae"])
    assert bounds == sorted(bounds)


def test_logits_of_zero_give_exactly_d_ln_2_nats_per_image():
    model = vae.VAE(latent=5, hidden=(7,)).double()
    last = model.decoder[-2]  # the Linear before Unflatten
    init.zeros_(last.weight)
    init.zeros_(last.bias)
    x = tinygen.tensor(binary_images(4, pixels=784))
    logits, mu, logvar = model(x)
    assert np.all(logits.numpy() == 0)
    np.testing.assert_allclose(vae.bernoulli_nll(logits, x).numpy(), 784 * math.log(2), rtol=1e-14)
    loss, recon, kl = vae.negative_elbo(model, x)
    np.testing.assert_allclose(recon.item(), 784 * math.log(2), rtol=1e-14)  # summed per image, not a mean
    np.testing.assert_allclose(loss.item(), recon.item() + kl.item(), rtol=1e-14)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_log_sum_exp_at_large_magnitudes(scale):
    log_w = np.array([[scale, scale, scale - 1.0]])
    expected = scale + math.log(2 + math.exp(-1.0))
    total = vae._streaming_logsumexp(None, log_w[:, :1])
    total = vae._streaming_logsumexp(total, log_w[:, 1:])
    running_max, running_sum = total
    np.testing.assert_allclose(running_max + np.log(running_sum), expected, rtol=1e-15)
    np.testing.assert_allclose(tinygen.logsumexp(tinygen.tensor(log_w), dim=1).numpy(), expected, rtol=1e-15)


def test_streaming_log_sum_exp_equals_the_whole_one():
    log_w = np.random.default_rng(0).normal(scale=30, size=(5, 37))
    total = None
    for start in range(0, 37, 8):
        total = vae._streaming_logsumexp(total, log_w[:, start:start + 8])
    peak = log_w.max(1, keepdims=True)
    expected = (peak + np.log(np.exp(log_w - peak).sum(1, keepdims=True)))[:, 0]
    np.testing.assert_allclose(total[0] + np.log(total[1]), expected, rtol=1e-14)


def test_evaluate_chunks_the_draws_and_is_repeatable():
    model = tiny_vae(latent=2)
    x = binary_images(10)
    tinygen.manual_seed(5)
    whole = vae.evaluate(model, x, k=64, batch_size=10)
    tinygen.manual_seed(5)
    again = vae.evaluate(model, x, k=64, batch_size=10)
    tinygen.manual_seed(5)
    chunked = vae.evaluate(model, x, k=64, batch_size=3, max_rows=20)  # 6 draws per chunk
    assert whole == again
    assert abs(whole["nll_iwae"] - chunked["nll_iwae"]) < 0.05  # other draws, same bound
    assert whole["bpd_iwae"] == pytest.approx(whole["nll_iwae"] / (4 * math.log(2)))


def test_iwae_objective_with_one_draw_is_the_elbo_with_a_sampled_kl():
    model = tiny_vae(latent=2)
    x = tinygen.tensor(binary_images(6))
    tinygen.manual_seed(2)
    iwae_1 = vae.negative_iwae(model, x, 1).item()
    tinygen.manual_seed(2)
    log_w = vae.log_weights(model, x, 1).numpy()
    assert iwae_1 == pytest.approx(-log_w.mean(), rel=1e-14)


def test_binarize_is_fixed_by_its_seed_and_follows_the_grey_level():
    images = np.full((200, 1, 10, 10), 64, np.uint8)
    a, b, c = vae.binarize(images, 0), vae.binarize(images, 0), vae.binarize(images, 1)
    assert a.dtype == np.float32 and set(np.unique(a)) <= {0.0, 1.0}
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean() - 64 / 255) < 0.01
    assert vae.binarize(np.zeros((2, 1, 3, 3), np.uint8)).sum() == 0
    assert vae.binarize(np.full((2, 1, 3, 3), 255, np.uint8)).min() == 1
    with pytest.raises(TypeError, match="binarize: images is float64"):
        vae.binarize(np.zeros((1, 1, 2, 2)))


def test_conv_vae_shapes_and_gradients():
    model = vae.VAE("conv", latent=3, width=4, image_size=8)
    x = tinygen.tensor(binary_images(5, pixels=64).astype(np.float32))
    logits, mu, logvar = model(x)
    assert logits.shape == (5, 1, 8, 8) and mu.shape == logvar.shape == (5, 3)
    loss, _, _ = vae.negative_elbo(model, x)
    loss.backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"arch": "rnn"}, ValueError, "arch is 'rnn', expected one of mlp, conv"),
        ({"activation": "gelu"}, ValueError, "activation is 'gelu'"),
        ({"latent": 0}, ValueError, "latent is 0"),
        ({"hidden": ()}, ValueError, "hidden is ()"),
        ({"arch": "conv", "image_size": 30}, ShapeError, "image_size is 30, expected a multiple of 4"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        vae.VAE(**kwargs)


def test_bad_input_shapes_are_named():
    model = vae.VAE(latent=4, hidden=(5,), image_size=8)
    with pytest.raises(ShapeError, match=r"input has shape \(2, 1, 7, 7\), expected \(N, 1, 8, 8\)"):
        model.encode(tinygen.zeros(2, 1, 7, 7))
    with pytest.raises(ShapeError, match=r"z has shape \(2, 3\), expected \(N, latent\) = \(N, 4\)"):
        model.decode(tinygen.zeros(2, 3))


def test_latent_grid_covers_equal_prior_mass():
    grid = vae.latent_grid(5, span=2.0)
    assert grid.shape == (25, 2)
    mass = 0.5 * (1 + np.vectorize(math.erf)(grid[:5, 0] / math.sqrt(2)))  # the normal CDF
    np.testing.assert_allclose(np.diff(mass), np.diff(mass)[0], rtol=1e-9)    # evenly spaced
    np.testing.assert_allclose(grid[[0, 2, 4], 0], [-2, 0, 2], atol=1e-12)
    assert grid[0, 1] == pytest.approx(2.0) and grid[-1, 1] == pytest.approx(-2.0)  # top row first


def test_log_sum_exp_of_all_zero_weights_is_minus_infinity_not_nan():
    total = vae._streaming_logsumexp(None, np.full((1, 3), -np.inf))
    total = vae._streaming_logsumexp(total, np.array([[-np.inf, 0.0]]))
    assert total[0] + np.log(total[1]) == pytest.approx(0.0)
    total = vae._streaming_logsumexp(None, np.full((1, 3), -np.inf))
    with np.errstate(divide="ignore"):
        assert total[0] + np.log(total[1]) == -np.inf


def test_a_one_cell_manifold_is_the_prior_mode():
    assert vae.latent_grid(1).tolist() == [[0.0, 0.0]]
