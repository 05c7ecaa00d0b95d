"""The conditional GAN, WGAN-GP's second-order penalty, and the metrics that score GANs."""

import math

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tinygen.errors import IndexOutOfRangeError
from tinygen.metrics import class_coverage, frechet_distance, gaussian_stats, sample_quality, sqrtm_psd
from tinygen.models import cgan, dcgan, wgan_gp
from tinygen.models.classifier import ConvClassifier
from tinygen.testing import gradcheck, gradgradcheck


# ---------------------------------------------------------------------------------- WGAN-GP
def tiny_critic(norm="layer", seed=0):
    tinygen.manual_seed(seed)
    return dcgan.Discriminator(ndf=2, channels=1, image_size=8, norm=norm).double()


def functional_critic(x, conv, norm_weight, linear):
    """conv -> layer norm -> leaky ReLU -> linear, with the weights as arguments (so they can be checked)."""
    h = F.conv2d(x, conv, stride=2, padding=1)
    h = F.leaky_relu(F.layer_norm(h, h.shape[1:], norm_weight), 0.2)
    return F.linear(h.reshape(h.shape[0], -1), linear).reshape(-1)


def test_the_penalty_passes_gradgradcheck_through_a_conv_critic():
    rng = np.random.default_rng(0)
    real = tinygen.tensor(rng.uniform(-1, 1, (2, 1, 4, 4)))
    fake = tinygen.tensor(rng.uniform(-1, 1, (2, 1, 4, 4)))
    alpha = tinygen.tensor(rng.uniform(0, 1, (2, 1, 1, 1)))
    weights = [tinygen.tensor(rng.normal(size=shape), requires_grad=True)
               for shape in ((2, 1, 4, 4), (2, 2, 2), (1, 8))]

    def penalty_of(conv, norm_weight, linear):  # the penalty as a function of the critic's weights
        critic = lambda x: functional_critic(x, conv, norm_weight, linear)  # noqa: E731
        return wgan_gp.gradient_penalty(critic, real, fake, alpha)[0]

    gradcheck(penalty_of, weights)       # d penalty / d weights: second derivatives of the critic
    gradgradcheck(penalty_of, weights)   # and their derivatives: third order


def test_the_penalty_takes_one_norm_per_sample_over_all_its_values():
    critic = tiny_critic(norm="none")
    rng = np.random.default_rng(1)
    real = tinygen.tensor(rng.uniform(-1, 1, (3, 1, 8, 8)))
    fake = tinygen.tensor(rng.uniform(-1, 1, (3, 1, 8, 8)))
    alpha = tinygen.tensor(rng.uniform(0, 1, (3, 1, 1, 1)))
    penalty, norms = wgan_gp.gradient_penalty(critic, real, fake, alpha)
    for n in range(3):  # each sample alone: its gradient's norm over C*H*W
        x = (alpha.numpy()[n] * real.numpy()[n] + (1 - alpha.numpy()[n]) * fake.numpy()[n])[None]
        x = tinygen.tensor(x, requires_grad=True)
        (g,) = tinygen.grad(critic(x).sum(), x)
        assert norms.numpy()[n] == pytest.approx(np.linalg.norm(g.numpy().ravel()), rel=1e-12)
    assert penalty.item() == pytest.approx(((norms.numpy() - 1) ** 2).mean(), rel=1e-12)


def test_alpha_is_drawn_per_sample():
    critic = tiny_critic(norm="none")
    real = tinygen.ones(4, 1, 8, 8, dtype=tinygen.float64)
    fake = tinygen.zeros(4, 1, 8, 8, dtype=tinygen.float64)
    seen = []
    original = critic.forward
    critic.forward = lambda x: seen.append(x.numpy()) or original(x)
    wgan_gp.gradient_penalty(critic, real, fake)
    x_hat = seen[0]  # alpha * 1 + (1 - alpha) * 0 = alpha: constant within a sample, not across samples
    assert np.all(x_hat == x_hat[:, :1, :1, :1]) and len(np.unique(x_hat[:, 0, 0, 0])) == 4


def test_the_penalty_gradient_on_the_weights_is_non_zero_and_matches_finite_differences():
    critic = tiny_critic()
    rng = np.random.default_rng(2)
    real = tinygen.tensor(rng.uniform(-1, 1, (2, 1, 8, 8)))
    fake = tinygen.tensor(rng.uniform(-1, 1, (2, 1, 8, 8)))
    alpha = tinygen.tensor(rng.uniform(0, 1, (2, 1, 1, 1)))
    linear = critic.main[-1].weight
    penalty, _ = wgan_gp.gradient_penalty(critic, real, fake, alpha)
    (analytic,) = tinygen.grad(penalty, linear)
    assert np.abs(analytic.numpy()).max() > 1e-6
    numeric = np.zeros(linear.shape)
    for index in np.ndindex(*linear.shape):
        values = []
        for step in (1e-6, -1e-6):
            linear.data[index] += step
            values.append(wgan_gp.gradient_penalty(critic, real, fake, alpha)[0].item())
            linear.data[index] -= step
        numeric[index] = (values[0] - values[1]) / 2e-6
    np.testing.assert_allclose(analytic.numpy(), numeric, rtol=1e-5, atol=1e-8)


def test_a_critic_with_batch_norm_is_refused():
    with pytest.raises(ValueError, match="critic holds a batch norm .*gradient penalty depend on the rest"):
        wgan_gp.refuse_batch_norm(dcgan.Discriminator(4, 1, 16, norm="batch"))
    wgan_gp.refuse_batch_norm(dcgan.Discriminator(4, 1, 16, norm="layer"))  # fine


def test_the_critic_counter_schedules_one_generator_step_in_n_critic():
    config = {"nz": 4, "ngf": 2, "ndf": 2, "critic_norm": "layer", "n_critic": 3, "penalty": 10.0, "lr": 1e-4,
              "beta1": 0.5, "beta2": 0.9}
    tinygen.manual_seed(0)
    model = wgan_gp.WGANGP(config, (1, 8, 8))
    batch = (tinygen.rand(4, 1, 8, 8) * 2 - 1, tinygen.zeros(4, dtype=tinygen.int64))
    before = model.G.main[0].weight.numpy().copy()
    losses = [model.train_step(batch)["loss_g"] for _ in range(3)]
    assert math.isnan(losses[0]) and math.isnan(losses[1]) and not math.isnan(losses[2])
    assert not np.array_equal(before, model.G.main[0].weight.numpy())
    assert model.state_dict()["critic_steps"] == 3


# ---------------------------------------------------------------------------------- cGAN
def test_the_conditional_pair_shapes_and_label_errors():
    tinygen.manual_seed(0)
    G = cgan.ConditionalGenerator(nz=4, ngf=2, channels=1, image_size=8, classes=3, embed=2)
    D = cgan.ProjectionDiscriminator(ndf=2, channels=1, image_size=8, classes=3)
    z, y = tinygen.randn(5, 4), tinygen.tensor(np.array([0, 1, 2, 0, 1]))
    images = G(z, y)
    assert images.shape == (5, 1, 8, 8) and D(images, y).shape == (5,)
    message = r"labels hold values in \[0, 3\], expected 0 .. classes-1 = 0 .. 2"
    with pytest.raises(IndexOutOfRangeError, match=message):
        G(z, tinygen.tensor(np.array([0, 1, 3, 0, 1])))
    with pytest.raises(IndexOutOfRangeError, match="ProjectionDiscriminator: labels hold values in"):
        D(images, tinygen.tensor(np.array([-1, 0, 0, 0, 0])))
    with pytest.raises(TypeError, match="labels have dtype float"):
        D(images, tinygen.zeros(5))


def test_the_projection_is_linear_plus_an_inner_product_with_the_class_vector():
    tinygen.manual_seed(0)
    D = cgan.ProjectionDiscriminator(ndf=2, channels=1, image_size=8, classes=3).double()
    x = tinygen.tensor(np.random.default_rng(0).uniform(-1, 1, (2, 1, 8, 8)))
    y = tinygen.tensor(np.array([2, 0]))
    h = D.body(x).numpy().sum((2, 3))
    projection = (D.project.weight.numpy()[[2, 0]] * h).sum(1)
    expected = h @ D.linear.weight.numpy()[0] + D.linear.bias.numpy()[0] + projection
    np.testing.assert_allclose(D(x, y).numpy(), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------- metrics
def test_frechet_distance_of_gaussians_in_closed_form():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))  # shared eigenvectors, not the axes
    d1, d2 = np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.3, 2.0, 1.5, 0.1])
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    assert frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T) == pytest.approx(expected)
    # 2x2 with different eigenvectors: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for a 2x2 PSD M
    a, b = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([[1.0, -0.3], [-0.3, 0.5]])
    root = sqrtm_psd(a)
    middle = root @ b @ root
    trace_root = math.sqrt(np.trace(middle) + 2 * math.sqrt(np.linalg.det(middle)))
    assert frechet_distance(np.zeros(2), a, np.zeros(2), b) == pytest.approx(np.trace(a + b) - 2 * trace_root)


def test_frechet_distance_is_symmetric_non_negative_and_zero_on_itself():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(500, 6)), rng.normal(loc=0.5, size=(400, 6)) @ rng.normal(size=(6, 6))
    s1, s2 = gaussian_stats(f1), gaussian_stats(f2)
    assert frechet_distance(*s1, *s2) == pytest.approx(frechet_distance(*s2, *s1), rel=1e-9)
    assert frechet_distance(*s1, *s1) == pytest.approx(0.0, abs=1e-9)
    rank_deficient = gaussian_stats(np.repeat(f1[:, :1], 6, axis=1))  # singular covariance
    assert frechet_distance(*rank_deficient, *rank_deficient) >= 0.0


def test_class_coverage_counts_classes_and_their_entropy():
    assert class_coverage(np.arange(1000) % 10, 10) == {"classes_covered": 10.0,
                                                        "class_entropy": pytest.approx(math.log(10))}
    one_class = class_coverage(np.zeros(100, int), 10)
    assert one_class == {"classes_covered": 1.0, "class_entropy": 0.0}
    nearly_one = np.r_[np.zeros(990, int), np.ones(10, int)]
    assert class_coverage(nearly_one, 10)["classes_covered"] == 1.0  # 1% of the samples < a fifth of 10%


def test_fid_of_real_images_is_small_and_of_noise_large():
    """With one judge: real test images against other real images score far below random noise."""
    rng = np.random.default_rng(0)

    def squares(n):
        images = -np.ones((n, 1, 8, 8), np.float32)
        for i in range(n):
            top, left = rng.integers(0, 4, 2)
            images[i, :, top:top + 4, left:left + 4] = 1
        return images

    tinygen.manual_seed(0)
    judge = ConvClassifier(channels=1, image_size=8, classes=10, width=4, hidden=16)
    from tinygen.models.classifier import predict

    reference, _ = predict(judge, squares(400))
    real = sample_quality(lambda n, r: (squares(n), None), judge, reference, n=400, batch_size=200)
    noise = sample_quality(lambda n, r: (r.uniform(-1, 1, (n, 1, 8, 8)), None), judge, reference, n=400)
    assert 0 <= real["fid"] < noise["fid"] / 10
    assert "class_accuracy" not in real
    labelled = sample_quality(lambda n, r: (squares(n), np.zeros(n, int)), judge, reference, n=100)
    assert 0 <= labelled["class_accuracy"] <= 1


def test_a_zero_input_gradient_gives_a_zero_penalty_gradient_not_nan():
    """At x_hat = 0 the critic w * sum(x^2) has gradient 2 w x = 0: penalty 1, and the weight's
    gradient is 0 (a plain sqrt would give inf * 0 = NaN there and poison Adam)."""
    weight = tinygen.tensor(np.array(0.5), requires_grad=True)

    def critic(x):
        return weight * (x * x).reshape(x.shape[0], -1).sum(1)

    zeros = tinygen.zeros(3, 1, 2, 2, dtype=tinygen.float64)
    penalty, norms = wgan_gp.gradient_penalty(critic, zeros, zeros)
    assert penalty.item() == 1.0 and np.all(norms.numpy() == 0)
    (g,) = tinygen.grad(penalty, weight)
    assert g.item() == 0.0
