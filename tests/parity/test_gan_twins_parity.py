"""The torch twins of ``benchmarks/gan_twins.py`` against tinygen's recipes (skipped without torch).

``gan_twins.py`` trains the cGAN and WGAN-GP in tinygen and in PyTorch and compares the two;
that comparison means something only if its torch modules, steps and optimizers are the
recipes'. Here the recipes are built as the training run builds them (small widths, float64),
their weights are copied into ``TorchTwin``, and one training step of each, from the same
batch and the same draws (z, the fake labels, alpha: drawn by tinygen, replayed in torch),
must give the same losses and the same parameters and buffers after the Adam steps, to
float64 round-off. The initialisation cannot be copied, so it is compared in distribution.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import tinygen
from tinygen import trainer
from tinygen.models import cgan, dcgan, wgan_gp

torch = pytest.importorskip("torch")

TWINS_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "gan_twins.py"
SHAPE = (1, 16, 16)
BATCH, CLASSES = 5, 3
SMALL = {"nz": 6, "ngf": 4, "ndf": 4}


def load_twins():
    spec = importlib.util.spec_from_file_location("gan_twins", TWINS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


twins = load_twins()


def recipe_and_twin(model, seed=0, **changes):
    """The tinygen recipe in float64 and a torch twin holding its weights."""
    config = {**trainer.defaults(model), **SMALL, **changes}
    tinygen.manual_seed(seed)
    recipe = {"cgan": cgan.CGAN, "wgan-gp": wgan_gp.WGANGP}[model](config, SHAPE)
    for module in recipe.modules.values():
        module.double()  # in place: the optimizers keep their parameters
    twin = twins.TorchTwin(config, SHAPE, dtype=torch.float64)
    for ours, theirs in ((recipe.G, twin.G), (recipe.D, twin.D)):
        assert list(ours.state_dict()) == list(theirs.state_dict())
        theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return recipe, twin


def batch(seed):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (BATCH, *SHAPE))
    labels = rng.integers(0, CLASSES, BATCH)
    return (tinygen.tensor(images), tinygen.tensor(labels)), (torch.tensor(images), torch.tensor(labels))


def assert_states_match(ours, theirs, what):
    theirs = theirs.state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value.numpy(), theirs[key].numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{what} {key}")


def assert_stats_match(ours, theirs, what):
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        np.testing.assert_allclose(value, theirs[key], rtol=1e-10, err_msg=f"{what} {key}")


def test_cgan_train_step_matches_torch():
    recipe, twin = recipe_and_twin("cgan", classes=CLASSES, embed=4)
    for step in range(2):
        ours, theirs = batch(10 + step)
        tinygen.manual_seed(20 + step)  # the draws of dcgan.train_step, in its order
        z = tinygen.randn(BATCH, SMALL["nz"], dtype=tinygen.float64)
        fake_labels = tinygen.randint(0, CLASSES, (BATCH,))
        tinygen.manual_seed(20 + step)
        stats = recipe.train_step(ours)
        t_stats = twin.train_step(theirs, z=torch.tensor(z.numpy()),
                                  fake_labels=torch.tensor(fake_labels.numpy()))
        assert_stats_match(stats, t_stats, f"step {step}")
        assert_states_match(recipe.G, twin.G, f"G after step {step}")
        assert_states_match(recipe.D, twin.D, f"D after step {step}")


def test_wgan_gp_critic_and_generator_steps_match_torch():
    # n_critic 2: the first batch is a critic step alone, the second a critic step and G's step
    recipe, twin = recipe_and_twin("wgan-gp", n_critic=2)
    for step in range(2):
        ours, theirs = batch(30 + step)
        tinygen.manual_seed(40 + step)  # the draws of critic_step, gradient_penalty, generator_step
        z = tinygen.randn(BATCH, SMALL["nz"], dtype=tinygen.float64)
        alpha = tinygen.rand(BATCH, 1, 1, 1, dtype=tinygen.float64)
        z_g = tinygen.randn(BATCH, SMALL["nz"], dtype=tinygen.float64)
        tinygen.manual_seed(40 + step)
        stats = recipe.train_step(ours)
        t_stats = twin.train_step(theirs, z=torch.tensor(z.numpy()), alpha=torch.tensor(alpha.numpy()),
                                  z_g=torch.tensor(z_g.numpy()))
        assert math.isnan(stats["loss_g"]) == (step == 0)
        assert_stats_match(stats, t_stats, f"step {step}")
        assert stats["penalty"] > 0
        assert_states_match(recipe.G, twin.G, f"G after step {step}")
        assert_states_match(recipe.D, twin.D, f"D after step {step}")


def test_gradient_penalty_with_alpha_matches_torch():
    recipe, twin = recipe_and_twin("wgan-gp")
    (real, _), (t_real, _) = batch(50)
    fake = np.random.default_rng(51).uniform(-1, 1, real.shape)
    alpha = np.random.default_rng(52).uniform(0, 1, (BATCH, 1, 1, 1))
    penalty, norms = wgan_gp.gradient_penalty(recipe.D, real, tinygen.tensor(fake),
                                              alpha=tinygen.tensor(alpha))
    t_penalty, t_norms = twins.torch_gradient_penalty(twin.D, t_real, torch.tensor(fake), torch.tensor(alpha))
    np.testing.assert_allclose(norms.numpy(), t_norms.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(penalty.item(), t_penalty.item(), rtol=1e-10)


@pytest.mark.parametrize("model", ["dcgan", "cgan", "wgan-gp"])
def test_torch_init_follows_the_recipe(model):
    """At full size, each parameter of the twin has the mean and spread of the recipe's (init is drawn)."""
    config = trainer.defaults(model)
    tinygen.manual_seed(0)
    recipe = {"dcgan": dcgan.DCGAN, "cgan": cgan.CGAN, "wgan-gp": wgan_gp.WGANGP}[model](config, (1, 28, 28))
    torch.manual_seed(0)
    twin = twins.TorchTwin(config, (1, 28, 28))
    for ours, theirs in ((recipe.G, twin.G), (recipe.D, twin.D)):
        t_params = dict(theirs.named_parameters())
        assert list(t_params) == [name for name, _ in ours.named_parameters()]
        for name, p in ours.named_parameters():
            a = p.numpy().astype(np.float64).ravel()
            b = t_params[name].detach().numpy().astype(np.float64).ravel()
            if a.std() == 0:  # biases 0, layer-norm scales 1
                np.testing.assert_array_equal(b, a, err_msg=f"{model} {name}")
                continue
            n = a.size
            assert abs(b.std() / a.std() - 1) < 6 / math.sqrt(n), f"{model} {name}: std {b.std()}, {a.std()}"
            assert abs(b.mean() - a.mean()) < 6 * a.std() * math.sqrt(2 / n), f"{model} {name}: mean"
        for name, buffer in ours.named_buffers():
            np.testing.assert_array_equal(dict(theirs.named_buffers())[name].numpy(), buffer.numpy())
