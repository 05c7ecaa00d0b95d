"""Chapter 12: GAN variants on the 2-D ring of Gaussians: WGAN-GP, a conditional GAN, and FID.

    python examples/learn/12_gan_variants.py                 # a few seconds
    python examples/learn/12_gan_variants.py --steps 1000    # train both GANs longer

1. A WGAN-GP critic alone, trained against a copy of the ring shifted by d: its estimate
   E[D(real)] - E[D(fake)] approaches the Wasserstein-1 distance, which is |d| exactly. The
   gradient penalty is a gradient of a gradient; gradcheck checks it.
2. WGAN-GP (tinygen.models.wgan_gp's critic and generator steps) against the vanilla GAN
   (tinygen.models.dcgan.train_step) with the same two small MLPs and the same budget:
   the Wasserstein estimate, the gradient norms on the interpolates, and mode coverage.
3. A conditional GAN, class = the mode's index: G(z, y) and a projection discriminator.
4. The Frechet distance of FID, checked on two Gaussians whose distance is known exactly.

The page is docs/learn/12-gan-variants.md.
"""

import argparse
from pathlib import Path

import numpy as np

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.data.toy import mode_coverage, ring_centres, ring_of_gaussians
from tinygen.metrics import frechet_distance, gaussian_stats
from tinygen.models import dcgan, wgan_gp
from tinygen.testing import gradcheck

MODES, STD = 8, 0.05  # the ring of chapter 08: 8 modes on a circle of radius 2, std 0.05


def mlp(inputs, outputs, activation=nn.ReLU, width=64):
    return nn.Sequential(nn.Linear(inputs, width), activation(), nn.Linear(width, width), activation(),
                         nn.Linear(width, outputs))


class Generator(nn.Module):
    """z (N, nz) -> points (N, 2); with ``classes``, (z, y) -> points, y embedded and joined to z."""

    def __init__(self, nz=2, classes=0, embed=8):
        super().__init__()
        self.nz, self.classes = nz, classes
        self.embed = nn.Embedding(classes, embed) if classes else None
        self.net = mlp(nz + (embed if classes else 0), 2, nn.Tanh)

    def forward(self, z, labels=None):
        if self.embed is not None:
            z = tinygen.cat([z, self.embed(labels)], dim=1)
        return self.net(z)


class Critic(nn.Module):
    """points (N, 2) -> one unbounded score each, (N,): no sigmoid, no batch norm."""

    def __init__(self):
        super().__init__()
        self.net = mlp(2, 1)

    def forward(self, x):
        return self.net(x).reshape(-1)


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = w . h(x) + b + <V[y], h(x)>, with h a small MLP (Miyato and Koyama, 2018)."""

    def __init__(self, classes, width=64):
        super().__init__()
        self.h = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.linear = nn.Linear(width, 1)
        self.project = nn.Embedding(classes, width)

    def forward(self, x, labels):
        h = self.h(x)
        return self.linear(h).reshape(-1) + (self.project(labels) * h).sum(1)


def ring(n, rng):
    """``n`` ring points (a Tensor) and the index of each one's mode (int64), the nearest centre."""
    points = ring_of_gaussians(n, rng, modes=MODES, std=STD)
    distance = ((points[:, None, :] - ring_centres(MODES)[None]) ** 2).sum(2)
    return tinygen.tensor(points), tinygen.tensor(distance.argmin(1))


def samples(G, n=2000, labels=None):
    with tinygen.no_grad():
        return G(tinygen.randn(n, G.nz), *(() if labels is None else (labels,))).numpy()


def adam(module, lr, betas=(0.5, 0.9)):
    return tinygen.optim.Adam(module.parameters(), lr=lr, betas=betas)


# ----------------------------------------------------------------------------- 1. the critic alone


def critic_against_a_shift(steps, rng, shift=(0.5, 0.0), penalty_weight=10.0):
    """Train a critic on ring vs ring + shift; W1 between a distribution and its translate is |shift|.

    Returns the estimate on 20,000 fresh points of each, and the gradient norms on the last
    batch's interpolates.
    """
    D = Critic()
    opt = adam(D, 3e-3)
    offset = tinygen.tensor(np.asarray(shift, dtype=np.float32))
    held_real, held_fake = ring(20000, rng)[0], ring(20000, rng)[0] + offset
    print(f"== 1. a critic alone, lambda = {penalty_weight:g}: real = the ring, fake = the ring shifted by "
          f"d = {shift}; W1 = |d| = {np.hypot(*shift):.3f}")
    for step in range(1, steps + 1):
        real, fake = ring(256, rng)[0], ring(256, rng)[0] + offset
        penalty, norms = wgan_gp.gradient_penalty(D, real, fake)
        loss = D(fake).mean() - D(real).mean() + penalty_weight * penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % (steps // 6) == 0:
            with tinygen.no_grad():
                estimate = (D(held_real).mean() - D(held_fake).mean()).item()
            print(f"  step {step:4d}  E[D(real)] - E[D(fake)] {estimate:6.3f}   "
                  f"|grad D(x_hat)|: mean {norms.numpy().mean():.3f}, std {norms.numpy().std():.3f}")
    return estimate, norms.numpy()


def check_penalty_gradient(seed=0):
    """gradcheck of the penalty with respect to a tanh critic's weights: a second derivative."""
    rng = np.random.default_rng(seed)
    x_hat = tinygen.tensor(rng.normal(size=(5, 2)))
    weights = [tinygen.tensor(rng.normal(size=shape), requires_grad=True) for shape in ((8, 2), (8,), (1, 8))]

    def penalty(w1, b1, w2):
        x = x_hat.detach().requires_grad_()
        score = F.linear(tinygen.tanh(F.linear(x, w1, b1)), w2)
        (grad,) = tinygen.grad(score.sum(), x, create_graph=True)  # records the backward pass itself
        norms = (grad * grad).sum(1).sqrt()
        return ((norms - 1) ** 2).mean()

    return gradcheck(penalty, weights)


# ----------------------------------------------------------------------------- 2. WGAN-GP vs vanilla


def train_vanilla(steps, batch):
    G, D = Generator(), Critic()  # the same two MLPs; D's score is now a logit
    opt_g, opt_d = adam(G, 2e-3, (0.5, 0.999)), adam(D, 2e-3, (0.5, 0.999))  # chapter 08's
    rng = np.random.default_rng(1)
    for _ in range(steps):
        dcgan.train_step(G, D, opt_g, opt_d, ring(batch, rng)[0])
    return G


def train_wgan_gp(steps, batch, n_critic=5, penalty_weight=1.0, lr=2e-3, log=True):
    G, D = Generator(), Critic()
    opt_g, opt_d = adam(G, lr), adam(D, lr)
    rng = np.random.default_rng(1)
    for step in range(1, steps + 1):
        for _ in range(n_critic):
            logs = wgan_gp.critic_step(G, D, opt_d, ring(batch, rng)[0], penalty_weight)
        wgan_gp.generator_step(G, D, opt_g, batch, "cpu", tinygen.float32)
        if log and step % max(1, steps // 5) == 0:
            print(f"  WGAN-GP step {step:4d}  Wasserstein estimate {logs['wasserstein']:.3f}   "
                  f"penalty {logs['penalty']:.4f}")
    real, _ = ring(1000, rng)
    with tinygen.no_grad():
        fake = G(tinygen.randn(1000, G.nz))
    _, norms = wgan_gp.gradient_penalty(D, real, fake)
    return G, norms.numpy()


def compare(steps, batch):
    print(f"\n== 2. WGAN-GP (5 critic steps per G step, lambda = 1) against the vanilla GAN, "
          f"{steps} generator steps each, batch {batch}")
    G_w, norms = train_wgan_gp(steps, batch)
    G_v = train_vanilla(steps, batch)
    print(f"  WGAN-GP critic on 1000 interpolates: |grad D(x_hat)| mean {norms.mean():.3f}, "
          f"10%-90% {np.quantile(norms, 0.1):.3f}-{np.quantile(norms, 0.9):.3f}")
    for name, G in (("vanilla GAN", G_v), ("WGAN-GP", G_w)):
        coverage = mode_coverage(samples(G), modes=MODES, std=STD)
        print(f"  {name:11s}  modes hit {coverage.modes_hit} of {MODES}, "
              f"high quality {coverage.high_quality:.1%} (of 2000 samples)")
    return G_v, G_w


# ----------------------------------------------------------------------------- 3. conditional GAN


def train_cgan(steps, batch):
    G, D = Generator(classes=MODES), ProjectionDiscriminator(MODES)
    opt_g, opt_d = adam(G, 2e-3, (0.5, 0.999)), adam(D, 2e-3, (0.5, 0.999))
    rng = np.random.default_rng(2)
    for _ in range(steps):
        real, labels = ring(batch, rng)
        dcgan.train_step(G, D, opt_g, opt_d, real, labels=labels)
    return G


def class_hits(G, per_class=250):
    """For each class k: the fraction of G(z, k) within 3 std of centre k."""
    labels = np.repeat(np.arange(MODES), per_class)
    points = samples(G, len(labels), tinygen.tensor(labels))
    distance = np.linalg.norm(points - ring_centres(MODES)[labels], axis=1)
    return (distance <= 3 * STD).reshape(MODES, per_class).mean(1), points, labels


def conditional(steps, batch):
    print(f"\n== 3. conditional GAN on the ring, class y = the mode's index: G(z, y), "
          f"D(x, y) = w.h(x) + b + <V[y], h(x)>; {steps} steps")
    G = train_cgan(steps, batch)
    hits, _, _ = class_hits(G)
    print("  fraction of G(z, k) on mode k: " + " ".join(f"{h:.2f}" for h in hits))
    print(f"  mean {hits.mean():.2f}")
    return G


# ----------------------------------------------------------------------------- 4. Frechet distance


def frechet_check(seed=0):
    print("\n== 4. the Frechet distance of FID, on Gaussians with a known distance")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # a rotation shared by both covariances
    mu1, mu2 = np.zeros(3), np.array([1.0, -2.0, 0.5])
    d1, d2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    cov1, cov2 = q @ np.diag(d1) @ q.T, q @ np.diag(d2) @ q.T
    exact = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    print(f"  closed form |mu1 - mu2|^2 + sum_k (sqrt(d1_k) - sqrt(d2_k))^2 = {exact:.6f}")
    computed = frechet_distance(mu1, cov1, mu2, cov2)
    print(f"  frechet_distance(mu1, cov1, mu2, cov2)                  = {computed:.6f}")
    for n in (50, 500, 5000):
        fitted = [gaussian_stats(rng.multivariate_normal(mu, cov, size=n))
                  for mu, cov in ((mu1, cov1), (mu2, cov2))]
        same = [gaussian_stats(rng.multivariate_normal(mu1, cov1, size=n)) for _ in range(2)]
        print(f"  fitted to {n:4d} samples each: {frechet_distance(*fitted[0], *fitted[1]):.3f}   "
              f"two samples of the SAME Gaussian: {frechet_distance(*same[0], *same[1]):.3f}")
    return exact


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=250, help="generator steps of each GAN")
    parser.add_argument("--critic-steps", type=int, default=300, help="steps of the lone critic (part 1)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/learn/12"), help="unused: nothing is written")
    args = parser.parse_args(argv)

    tinygen.manual_seed(args.seed)
    estimate, _ = critic_against_a_shift(args.critic_steps, np.random.default_rng(args.seed))
    print(f"  final estimate {estimate:.3f} against W1 = 0.500")
    print(f"  gradcheck of the penalty's gradient with respect to the critic's weights (a double backward): "
          f"{'passed' if check_penalty_gradient() else 'FAILED'}")
    compare(args.steps, args.batch_size)
    conditional(args.steps, args.batch_size)
    frechet_check(args.seed)


# ----------------------------------------------------------------------------- figures


def draw_figures(out, steps=250, batch=128):
    """``12-gan-variants.png``: vanilla GAN, WGAN-GP and conditional GAN samples on the ring."""
    import matplotlib.pyplot as plt

    tinygen.manual_seed(0)
    data = ring_of_gaussians(2000, np.random.default_rng(0), modes=MODES, std=STD)
    G_w, _ = train_wgan_gp(steps, batch, log=False)
    G_v = train_vanilla(steps, batch)
    G_c = train_cgan(steps, batch)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.7))
    for axis, G, title in ((axes[0], G_v, "vanilla GAN"), (axes[1], G_w, "WGAN-GP (lambda = 1)")):
        points = samples(G)
        coverage = mode_coverage(points, modes=MODES, std=STD)
        axis.scatter(data[:, 0], data[:, 1], s=2, color="0.75", label="data")
        axis.scatter(points[:, 0], points[:, 1], s=2, color="tab:blue", label="samples")
        axis.set_title(f"{title}: {coverage.modes_hit}/8 modes, {coverage.high_quality:.0%} on a mode",
                       fontsize=9)
    hits, points, labels = class_hits(G_c)
    axes[2].scatter(points[:, 0], points[:, 1], s=2, c=labels, cmap="tab10", vmin=0, vmax=9)
    axes[2].set_title(f"conditional GAN, colour = y: {hits.mean():.0%} on mode y", fontsize=9)
    for axis in axes:
        axis.set_xlim(-3, 3)
        axis.set_ylim(-3, 3)
        axis.set_aspect("equal")
        axis.grid(alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=7, markerscale=4)
    fig.suptitle(f"2-D ring of 8 Gaussians (std {STD}), {steps} generator steps, batch {batch}", fontsize=10)
    fig.tight_layout()
    path = Path(out) / "12-gan-variants.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    main()
