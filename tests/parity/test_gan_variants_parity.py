"""WGAN-GP's gradient penalty and the projection discriminator against PyTorch (skipped without torch).

The critic is written in torch below with the same layout; tinygen's float64 weights are
copied into it. The penalty, computed in torch with ``autograd.grad(create_graph=True)``,
and its gradient with respect to every critic weight (a second-order derivative) must
agree to float64 round-off.
"""

import numpy as np
import pytest

import tinygen
from tinygen.models import cgan, dcgan, wgan_gp

torch = pytest.importorskip("torch")
tnn = torch.nn


def torch_critic(ndf, channels, image_size):
    """dcgan.Discriminator(norm="layer") in torch: the same modules in the same order."""
    base, n = dcgan.image_layout(image_size)
    width, side = ndf, image_size // 2
    layers = [tnn.Conv2d(channels, width, 4, 2, 1), tnn.LeakyReLU(0.2)]
    for _ in range(n - 1):
        side //= 2
        layers += [tnn.Conv2d(width, width * 2, 4, 2, 1, bias=False), tnn.LayerNorm([width * 2, side, side]),
                   tnn.LeakyReLU(0.2)]  # fmt: skip
        width *= 2
    layers += [tnn.Flatten(), tnn.Linear(width * base * base, 1)]
    return tnn.Sequential(*layers).double()


def copy_into(torch_module, state_dict):
    torch_module.load_state_dict({key.removeprefix("main."): torch.from_numpy(value.numpy().copy())
                                  for key, value in state_dict.items()})


@pytest.mark.parametrize("image_size", [16, 28])
def test_gradient_penalty_and_its_weight_gradient_match_torch(image_size):
    tinygen.manual_seed(0)
    critic = dcgan.Discriminator(4, 1, image_size, norm="layer").double()
    critic.apply(dcgan.init_weights)
    reference = torch_critic(4, 1, image_size)
    copy_into(reference, critic.state_dict())
    rng = np.random.default_rng(0)
    real, fake = rng.uniform(-1, 1, (2, 5, 1, image_size, image_size))
    alpha = rng.uniform(0, 1, (5, 1, 1, 1))

    penalty, norms = wgan_gp.gradient_penalty(
        critic, tinygen.tensor(real), tinygen.tensor(fake), tinygen.tensor(alpha))
    penalty.backward()

    t_alpha = torch.from_numpy(alpha)
    x_hat = (t_alpha * torch.from_numpy(real) + (1 - t_alpha) * torch.from_numpy(fake)).requires_grad_()
    (grad,) = torch.autograd.grad(reference(x_hat).sum(), x_hat, create_graph=True)
    t_norms = grad.reshape(5, -1).norm(2, dim=1)
    t_penalty = ((t_norms - 1) ** 2).mean()
    t_penalty.backward()

    np.testing.assert_allclose(norms.numpy(), t_norms.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(penalty.item(), t_penalty.item(), rtol=1e-12)
    t_params = dict(reference.named_parameters())
    for key, param in critic.named_parameters():
        # A parameter the penalty never reaches (the last bias) has no .grad; a bias before a
        # leaky ReLU moves D's gradient only through the kinks, so its gradient is 0.
        t_grad = t_params[key.removeprefix("main.")].grad
        expected = np.zeros(param.shape) if t_grad is None else t_grad.numpy()
        actual = np.zeros(param.shape) if param.grad is None else param.grad.numpy()
        if key.endswith("weight"):
            assert np.abs(expected).max() > 0, key
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-13, err_msg=key)


def test_projection_discriminator_matches_torch():
    tinygen.manual_seed(1)
    D = cgan.ProjectionDiscriminator(4, 1, 16, classes=3).double()
    D.apply(cgan.init_weights)
    body = torch_critic(4, 1, 16)[:-2]
    body[3] = tnn.BatchNorm2d(8).double()  # the projection D has batch norm, as DCGAN's
    state = {key.removeprefix("body."): torch.from_numpy(v.numpy().copy())
             for key, v in D.state_dict().items() if key.startswith("body.")}
    body.load_state_dict(state)
    linear = torch.from_numpy(D.linear.weight.numpy()), torch.from_numpy(D.linear.bias.numpy())
    project = torch.from_numpy(D.project.weight.numpy())
    x = np.random.default_rng(1).uniform(-1, 1, (4, 1, 16, 16))
    y = np.array([0, 2, 1, 2])
    h = body(torch.from_numpy(x)).sum((2, 3))
    expected = (h @ linear[0].T + linear[1]).reshape(-1) + (project[torch.from_numpy(y)] * h).sum(1)
    np.testing.assert_allclose(D(tinygen.tensor(x), tinygen.tensor(y)).numpy(), expected.detach().numpy(),
                               rtol=1e-12)
