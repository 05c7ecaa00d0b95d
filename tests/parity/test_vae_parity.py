"""VAE parity with PyTorch (optional: skipped without torch).

tinygen's MLP VAE (784-400-20, ReLU) in float64 and a torch copy holding the same weights:
for the same eps, the negative ELBO, its recon and KL terms and the gradient of every
parameter agree to float64 round-off; for the same k draws per image, the log importance
weights (computed in torch from ``torch.distributions``, not from vae.py's formula) and
``-L_k`` agree too, and so does ``vae.evaluate`` with its draws replayed in torch.
"""

import math

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tinygen.models import vae

torch = pytest.importorskip("torch")
tnn = torch.nn
Normal, Bernoulli = torch.distributions.Normal, torch.distributions.Bernoulli

LATENT, HIDDEN, BATCH, K = 20, 400, 6, 7
SHAPE = (1, 28, 28)


class TorchVAE(tnn.Module):
    """vae.VAE("mlp") in torch: the same nn.Sequential layout, so the same state_dict keys."""

    def __init__(self):
        super().__init__()
        pixels = math.prod(SHAPE)
        self.encoder = tnn.Sequential(tnn.Flatten(), tnn.Linear(pixels, HIDDEN), tnn.ReLU())
        self.mu = tnn.Linear(HIDDEN, LATENT)
        self.logvar = tnn.Linear(HIDDEN, LATENT)
        self.decoder = tnn.Sequential(tnn.Linear(LATENT, HIDDEN), tnn.ReLU(), tnn.Linear(HIDDEN, pixels),
                                      tnn.Unflatten(1, SHAPE))

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)


@pytest.fixture(scope="module")
def images():
    """A batch of 0/1 images binarized from random grey levels."""
    grey = np.random.default_rng(1).integers(0, 256, (BATCH, *SHAPE), dtype=np.uint8)
    return vae.binarize(grey, seed=2).astype(np.float64)


def twins(seed=0):
    tinygen.manual_seed(seed)
    ours = vae.VAE("mlp", LATENT, (HIDDEN,), "relu").double()
    theirs = TorchVAE().double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def torch_log_weights(model, x, eps):
    """``log p(x | z) + log p(z) - log q(z | x)``, (N, k), for ``z = mu + sigma * eps``, eps (N, k, L)."""
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    z = mu[:, None] + std[:, None] * eps
    n, k = eps.shape[:2]
    logits = model.decoder(z.reshape(n * k, LATENT)).reshape(n, k, -1)
    log_px = Bernoulli(logits=logits).log_prob(x.reshape(n, 1, -1)).sum(2)
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(2)
    log_qz = Normal(mu[:, None], std[:, None]).log_prob(z).sum(2)
    return log_px + log_pz - log_qz


def test_negative_elbo_and_every_gradient_match_torch(images):
    ours, theirs = twins()
    tinygen.manual_seed(3)
    eps = tinygen.randn(BATCH, LATENT, dtype=tinygen.float64)
    x = tinygen.tensor(images)

    # negative_elbo draws its eps as reparameterize does: the same seed gives the same eps
    tinygen.manual_seed(3)
    loss, recon, kl = vae.negative_elbo(ours, x)
    mu, logvar = ours.encode(x)
    by_hand = vae.bernoulli_nll(ours.decode(vae.reparameterize(mu, logvar, eps)), x).mean()
    by_hand = by_hand + F.gaussian_kl(mu, logvar) / BATCH
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-14)

    tx = torch.tensor(images)
    t_mu, t_logvar = theirs.encode(tx)
    t_std = torch.exp(0.5 * t_logvar)
    logits = theirs.decoder(t_mu + t_std * torch.tensor(eps.numpy()))
    t_recon = tnn.functional.binary_cross_entropy_with_logits(logits, tx, reduction="sum") / BATCH
    t_kl = torch.distributions.kl_divergence(Normal(t_mu, t_std), Normal(0.0, 1.0)).sum() / BATCH
    t_loss = t_recon + t_kl
    for a, b in ((loss, t_loss), (recon, t_recon), (kl, t_kl)):
        np.testing.assert_allclose(a.item(), b.item(), rtol=1e-12)

    loss.backward()
    t_loss.backward()
    for (name, p), (t_name, t) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert name == t_name
        assert p.grad is not None, f"{name} has no gradient"
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_log_weights_and_iwae_bound_match_torch(images):
    ours, theirs = twins()
    x, tx = tinygen.tensor(images), torch.tensor(images)
    tinygen.manual_seed(4)
    eps = tinygen.randn(BATCH, K, LATENT, dtype=tinygen.float64)  # the draws log_weights makes
    tinygen.manual_seed(4)
    with tinygen.no_grad():
        log_w = vae.log_weights(ours, x, K).numpy()
    with torch.no_grad():
        t_log_w = torch_log_weights(theirs, tx, torch.tensor(eps.numpy()))
    np.testing.assert_allclose(log_w, t_log_w.numpy(), rtol=1e-12, atol=1e-10)

    tinygen.manual_seed(4)
    with tinygen.no_grad():
        bound = vae.negative_iwae(ours, x, K).item()
    t_bound = -(torch.logsumexp(t_log_w, 1) - math.log(K)).mean().item()
    np.testing.assert_allclose(bound, t_bound, rtol=1e-12)


def test_evaluate_matches_torch_with_the_same_draws(images):
    """vae.evaluate with one batch of images and k within one chunk: its draws replayed in torch."""
    ours, theirs = twins()
    ours.float()  # evaluate scores float32 images; float32 weights, as vae_twin uses it
    theirs.float()
    tinygen.manual_seed(5)
    result = vae.evaluate(ours, images, k=K, batch_size=BATCH)
    tinygen.manual_seed(5)  # evaluate draws: reparameterize's (N, L), then log_weights' (N, K, L)
    eps_elbo = torch.tensor(tinygen.randn(BATCH, LATENT).numpy())
    eps_k = torch.tensor(tinygen.randn(BATCH, K, LATENT).numpy())
    tx = torch.tensor(images, dtype=torch.float32)
    with torch.no_grad():
        mu, logvar = theirs.encode(tx)
        std = torch.exp(0.5 * logvar)
        logits = theirs.decoder(mu + std * eps_elbo)
        nll = tnn.functional.binary_cross_entropy_with_logits(logits, tx, reduction="sum") / BATCH
        kl = torch.distributions.kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).sum() / BATCH
        log_w = torch_log_weights(theirs, tx, eps_k).double()
    bound = -(torch.logsumexp(log_w, 1) - math.log(K)).mean().item()
    np.testing.assert_allclose(result["neg_elbo"], (nll + kl).item(), rtol=1e-5)
    np.testing.assert_allclose(result["nll_iwae"], bound, rtol=1e-5)
    np.testing.assert_allclose(result["bpd_iwae"], bound / (784 * math.log(2)), rtol=1e-5)
