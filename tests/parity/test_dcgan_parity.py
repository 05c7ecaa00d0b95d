"""DCGAN parity with PyTorch (optional: skipped without torch).

The same architecture is written in torch below; tinygen's float64 weights are copied into
it. Outputs, the gradients of loss_d and loss_g for every parameter (training-mode batch
norm), and the parameters and batch-norm buffers after ``train_step`` with Adam must
agree to float64 round-off.
"""

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tinygen.models import dcgan

torch = pytest.importorskip("torch")
tnn = torch.nn

CASES = [(28, 1), (32, 3)]  # (image_size, channels)
NZ, NF, BATCH = 6, 4, 5


class TorchGenerator(tnn.Module):
    """The generator of the PyTorch DCGAN example, with a Linear first layer (as dcgan.Generator)."""

    def __init__(self, nz, ngf, channels, image_size):
        super().__init__()
        base, n = dcgan.image_layout(image_size)
        width = ngf * 2 ** (n - 1)
        layers = [tnn.Linear(nz, width * base * base, bias=False), tnn.BatchNorm1d(width * base * base),
                  tnn.ReLU(), tnn.Unflatten(1, (width, base, base))]  # fmt: skip
        for _ in range(n - 1):
            layers += [tnn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       tnn.BatchNorm2d(width // 2),
                       tnn.ReLU()]  # fmt: skip
            width //= 2
        layers += [tnn.ConvTranspose2d(ngf, channels, 4, 2, 1), tnn.Tanh()]
        self.main = tnn.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


class TorchDiscriminator(tnn.Module):
    def __init__(self, ndf, channels, image_size):
        super().__init__()
        base, n = dcgan.image_layout(image_size)
        width = ndf
        layers = [tnn.Conv2d(channels, width, 4, 2, 1), tnn.LeakyReLU(0.2)]
        for _ in range(n - 1):
            layers += [tnn.Conv2d(width, width * 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(width * 2),
                       tnn.LeakyReLU(0.2)]  # fmt: skip
            width *= 2
        layers += [tnn.Flatten(), tnn.Linear(width * base * base, 1)]
        self.main = tnn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).view(-1)


def twins(size, channels, seed=0):
    """tinygen's G and D in float64, DCGAN-initialised, and torch copies of them."""
    tinygen.manual_seed(seed)
    G = dcgan.Generator(NZ, NF, channels, size).apply(dcgan.init_weights).double()
    D = dcgan.Discriminator(NF, channels, size).apply(dcgan.init_weights).double()
    tG = TorchGenerator(NZ, NF, channels, size).double()
    tD = TorchDiscriminator(NF, channels, size).double()
    for ours, theirs in ((G, tG), (D, tD)):
        assert list(ours.state_dict()) == list(theirs.state_dict())
        theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return G, D, tG, tD


def batch(size, channels, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (BATCH, channels, size, size)), rng.standard_normal((BATCH, NZ))


def assert_states_match(ours, theirs, what, rtol=1e-10, atol=1e-12):
    theirs = theirs.state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(
            value.numpy(), theirs[key].numpy(), rtol=rtol, atol=atol, err_msg=f"{what} {key}"
        )


def assert_grads_match(ours, theirs, what):
    for (name, p), (_, t) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert p.grad is not None and t.grad is not None, f"{what}: {name} has no gradient"
        np.testing.assert_allclose(
            p.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=f"{what} {name}"
        )


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_forward_and_loss_gradients_match_torch(size, channels):
    G, D, tG, tD = twins(size, channels)
    real, z = batch(size, channels)
    ones, zeros = np.ones(BATCH), np.zeros(BATCH)
    bce, tbce = F.binary_cross_entropy_with_logits, tnn.functional.binary_cross_entropy_with_logits

    fake, tfake = G(tinygen.tensor(z)), tG(torch.tensor(z))
    np.testing.assert_allclose(fake.numpy(), tfake.detach().numpy(), rtol=1e-10, atol=1e-13)
    logits_real, t_logits_real = D(tinygen.tensor(real)), tD(torch.tensor(real))
    logits_fake, t_logits_fake = D(fake.detach()), tD(tfake.detach())
    np.testing.assert_allclose(logits_real.numpy(), t_logits_real.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(logits_fake.numpy(), t_logits_fake.detach().numpy(), rtol=1e-10, atol=1e-13)

    loss_d = bce(logits_real, tinygen.tensor(ones)) + bce(logits_fake, tinygen.tensor(zeros))
    t_loss_d = tbce(t_logits_real, torch.tensor(ones)) + tbce(t_logits_fake, torch.tensor(zeros))
    np.testing.assert_allclose(loss_d.item(), t_loss_d.item(), rtol=1e-12)
    loss_d.backward()
    t_loss_d.backward()
    assert_grads_match(D, tD, "loss_d")
    assert all(p.grad is None for p in G.parameters())  # the fakes were detached

    D.zero_grad()
    tD.zero_grad()
    loss_g = bce(D(fake), tinygen.tensor(ones))
    t_loss_g = tbce(tD(tfake), torch.tensor(ones))
    np.testing.assert_allclose(loss_g.item(), t_loss_g.item(), rtol=1e-12)
    loss_g.backward()
    t_loss_g.backward()
    assert_grads_match(G, tG, "loss_g")
    assert_grads_match(D, tD, "loss_g")
    assert_states_match(G, tG, "running statistics of G")
    assert_states_match(D, tD, "running statistics of D")


def torch_train_step(tG, tD, opt_g, opt_d, real, z):
    """dcgan.train_step's loop, in torch (the PyTorch DCGAN example with a logits loss)."""
    ones, zeros = torch.ones(real.shape[0], dtype=real.dtype), torch.zeros(real.shape[0], dtype=real.dtype)
    fake = tG(z)
    logits_real, logits_fake = tD(real), tD(fake.detach())
    bce = tnn.functional.binary_cross_entropy_with_logits
    loss_d = bce(logits_real, ones) + bce(logits_fake, zeros)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = bce(tD(fake), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(logits_real).mean().item(),
            "d_fake": torch.sigmoid(logits_fake).mean().item()}  # fmt: skip


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_train_steps_with_adam_match_torch(size, channels):
    G, D, tG, tD = twins(size, channels, seed=2)
    opt_g, opt_d = dcgan.make_optimizers(G, D, lr=1e-3, betas=(0.5, 0.999))
    t_opt_g = torch.optim.Adam(tG.parameters(), lr=1e-3, betas=(0.5, 0.999))
    t_opt_d = torch.optim.Adam(tD.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for step in range(2):
        real, _ = batch(size, channels, seed=10 + step)
        z = tinygen.randn(BATCH, NZ, dtype=tinygen.float64)  # drawn by tinygen, given to both
        stats = dcgan.train_step(G, D, opt_g, opt_d, tinygen.tensor(real), z=z)
        t_stats = torch_train_step(tG, tD, t_opt_g, t_opt_d, torch.tensor(real), torch.tensor(z.numpy()))
        for key, value in stats.items():
            np.testing.assert_allclose(value, t_stats[key], rtol=1e-10, err_msg=f"step {step} {key}")
        assert_states_match(G, tG, f"G after step {step}")
        assert_states_match(D, tD, f"D after step {step}")


def test_train_step_draws_z_in_the_dtype_and_device_of_real():
    G, D, tG, tD = twins(28, 1, seed=4)
    opt_g, opt_d = dcgan.make_optimizers(G, D)
    t_opt_g, t_opt_d = (torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (tG, tD))
    real, _ = batch(28, 1)
    tinygen.manual_seed(5)
    stats = dcgan.train_step(G, D, opt_g, opt_d, tinygen.tensor(real))
    tinygen.manual_seed(5)
    z = tinygen.randn(BATCH, NZ, dtype=tinygen.float64)
    t_stats = torch_train_step(tG, tD, t_opt_g, t_opt_d, torch.tensor(real), torch.tensor(z.numpy()))
    np.testing.assert_allclose(list(stats.values()), [t_stats[k] for k in stats], rtol=1e-10)
