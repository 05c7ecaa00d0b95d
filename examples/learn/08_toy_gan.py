"""Chapter 8: a GAN on a ring of 8 Gaussians, in seconds, and a run that collapses.

    python examples/learn/08_toy_gan.py

G maps 2-D noise to a point in the plane; D maps a point to a logit. Both are small MLPs,
trained with DCGAN's recipe: BCE on logits, detached fakes in D's step, the non-saturating
G loss, Adam with betas (0.5, 0.999). ``mode_coverage`` counts the modes G's samples land on.
A second configuration, which differs in one setting, covers only a few. First, in 1-D,
D trained against a fixed p_g is compared with the optimal D*(x) = p_data/(p_data + p_g).
The page is docs/learn/08-toy-gan.md.
"""

import argparse
import math
from pathlib import Path

import numpy as np

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.data import mode_coverage, ring_of_gaussians
from tinygen.data.toy import ring_centres
from tinygen.optim import Adam

CONFIGS = {  # name -> settings; "collapse" differs from "good" in one setting: 5 G steps per D step
    "good": dict(seed=0, lr_g=2e-3, lr_d=2e-3, betas=(0.5, 0.999), g_steps=1),
    "collapse": dict(seed=0, lr_g=2e-3, lr_d=2e-3, betas=(0.5, 0.999), g_steps=5),
}
HIDDEN, NZ, BATCH = 64, 2, 256


def mlp(sizes, activation):
    """Linear layers of the given sizes with ``activation()`` between them (none after the last)."""
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def train_gan(steps, seed, lr_g, lr_d, betas, g_steps=1, log_every=100):
    """Train G and D on the ring; returns (G, history, samples), logging every ``log_every`` steps.

    ``history`` has one dict per logged step (loss_d and loss_g averaged since the last log,
    modes_hit, high_quality, and top_share: the largest fraction of the points whose nearest
    centre is one mode; 1/8 if spread evenly, 1 if collapsed onto one); ``samples`` maps a
    step to G's 500 points for a fixed noise.
    """
    tinygen.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G = mlp([NZ, HIDDEN, HIDDEN, 2], nn.Tanh)
    D = mlp([2, HIDDEN, HIDDEN, 1], nn.ReLU)
    opt_g = Adam(G.parameters(), lr=lr_g, betas=betas)
    opt_d = Adam(D.parameters(), lr=lr_d, betas=betas)
    ones, zeros = tinygen.ones(BATCH, 1), tinygen.zeros(BATCH, 1)
    z_fixed = tinygen.randn(500, NZ)
    history, samples, sums = [], {}, np.zeros(2)
    for step in range(steps + 1):
        if step % log_every == 0:
            with tinygen.no_grad():
                points = G(z_fixed).numpy()
            hit, quality = mode_coverage(points)
            nearest = np.linalg.norm(points[:, None] - ring_centres()[None], axis=2).argmin(axis=1)
            top_share = np.bincount(nearest, minlength=8).max() / len(points)
            losses = sums / log_every if step else (math.nan, math.nan)
            history.append(
                dict(
                    step=step,
                    loss_d=losses[0],
                    loss_g=losses[1],
                    modes_hit=hit,
                    high_quality=quality,
                    top_share=top_share,
                )
            )
            samples[step], sums = points, np.zeros(2)
        if step == steps:
            break
        real = tinygen.tensor(ring_of_gaussians(BATCH, rng))
        fake = G(tinygen.randn(BATCH, NZ))
        # D step: real -> 1, fake -> 0; fake.detach() keeps this loss out of G
        loss_real = F.binary_cross_entropy_with_logits(D(real), ones)
        loss_fake = F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        loss_d = loss_real + loss_fake
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # G step(s), non-saturating: make the updated D call the fakes real
        for k in range(g_steps):
            if k:
                fake = G(tinygen.randn(BATCH, NZ))
            loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
        sums += (loss_d.item(), loss_g.item())
    return G, history, samples


bce = F.binary_cross_entropy_with_logits


def normal_pdf(x, mean, std):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def optimal_d_check(steps=600, seed=0):
    """Train a 1-D D on p_data = N(0, 1) against a fixed p_g = N(0, 2**2); compare with D*.

    D* = p_data/(p_data + p_g), whose logit is log(p_data/p_g) = log(2) - 3*x**2/8.
    Returns (x grid, D(x), D*(x), D's loss, log(4) - 2*JSD(p_data, p_g)).
    """
    tinygen.manual_seed(seed)
    rng = np.random.default_rng(seed)
    D = mlp([1, 32, 32, 1], nn.ReLU)
    opt = Adam(D.parameters(), lr=5e-3)
    n = 1024
    ones, zeros = tinygen.ones(n, 1), tinygen.zeros(n, 1)
    for _ in range(steps):
        real = tinygen.tensor(rng.standard_normal((n, 1)).astype(np.float32))
        fake = tinygen.tensor(2 * rng.standard_normal((n, 1)).astype(np.float32))
        loss = bce(D(real), ones) + bce(D(fake), zeros)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = np.linspace(-3, 3, 601)
    with tinygen.no_grad():
        d = tinygen.sigmoid(D(tinygen.tensor(x[:, None].astype(np.float32)))).numpy()[:, 0]
    p_data, p_g = normal_pdf(x, 0, 1), normal_pdf(x, 0, 2)
    d_star = p_data / (p_data + p_g)
    # D's loss on fresh samples, and its optimum log 4 - 2*JSD (JSD by quadrature on a wide grid)
    with tinygen.no_grad():
        real = tinygen.tensor(rng.standard_normal((20000, 1)).astype(np.float32))
        fake = tinygen.tensor(2 * rng.standard_normal((20000, 1)).astype(np.float32))
        ones, zeros = tinygen.ones(20000, 1), tinygen.zeros(20000, 1)
        loss = bce(D(real), ones) + bce(D(fake), zeros)
    grid = np.linspace(-20, 20, 40001)
    pd, pg = normal_pdf(grid, 0, 1), normal_pdf(grid, 0, 2)
    mix = 0.5 * (pd + pg)
    jsd = 0.5 * np.sum(pd * np.log(pd / mix) + pg * np.log(pg / mix)) * (grid[1] - grid[0])
    return x, d, d_star, loss.item(), math.log(4) - 2 * jsd


def print_history(name, history):
    print(f"  {name}: {CONFIGS[name]}")
    print("     step   loss_d   loss_g   modes_hit   high_quality   top_share")
    for row in history:
        print(
            f"    {row['step']:5d}   {row['loss_d']:6.3f}   {row['loss_g']:6.3f}"
            f"   {row['modes_hit']:5d}/8   {row['high_quality']:12.2f}   {row['top_share']:9.2f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/learn/08"), help="unused: no files written")
    parser.add_argument("--steps", type=int, default=600, help="training steps of each GAN")
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--d-steps", type=int, default=600, help="training steps of the 1-D D")
    args = parser.parse_args(argv)

    print("1. D against a fixed p_g = N(0, 2**2), p_data = N(0, 1): D*(x) = p_data/(p_data + p_g)")
    x, d, d_star, loss, optimum = optimal_d_check(args.d_steps)
    for value in (-2.0, -1.0, 0.0, 1.0, 2.0):
        i = int(np.argmin(np.abs(x - value)))
        print(f"  x = {value:+.1f}   D(x) = {d[i]:.3f}   D*(x) = {d_star[i]:.3f}")
    print(f"  max |D - D*| on [-3, 3] = {np.abs(d - d_star).max():.3f}")
    print(f"  D's loss {loss:.4f}; at D*, log 4 - 2*JSD(p_data, p_g) = {optimum:.4f}", end="")
    print(f"; log 4 = {math.log(4):.4f}")

    print(f"\n2. GANs on the ring of 8 Gaussians (std 0.05), {args.steps} steps, batch {BATCH}")
    print(f"   equilibrium: loss_d = 2 log 2 = {2 * math.log(2):.3f}, loss_g = log 2 = {math.log(2):.3f}")
    for name, config in CONFIGS.items():
        _, history, _ = train_gan(args.steps, log_every=args.log_every, **config)
        print_history(name, history)


def draw_figures(out):
    """08-toy-gan.png (samples of both runs over training) and 08-losses.png (the good run's losses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, shown = 600, (0, 200, 400, 600)
    data = ring_of_gaussians(1000, np.random.default_rng(1))
    runs = {name: train_gan(steps, log_every=20, **config) for name, config in CONFIGS.items()}
    fig, axes = plt.subplots(len(runs), len(shown), figsize=(2.6 * len(shown), 2.7 * len(runs)))
    for row, (name, (_, history, samples)) in zip(axes, runs.items(), strict=True):
        by_step = {h["step"]: h for h in history}
        for ax, step in zip(row, shown, strict=True):
            ax.scatter(data[:, 0], data[:, 1], s=2, c="0.8")
            ax.scatter(samples[step][:, 0], samples[step][:, 1], s=2, c="C3" if name == "collapse" else "C0")
            h = by_step[step]
            ax.set_title(f"{name}, step {step}: {h['modes_hit']}/8, hq {h['high_quality']:.2f}", fontsize=8)
            ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[], aspect="equal")
    fig.tight_layout()
    paths = [Path(out) / "08-toy-gan.png", Path(out) / "08-losses.png"]
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, style in (("good", "-"), ("collapse", ":")):
        history = runs[name][1][1:]
        step = [h["step"] for h in history]
        ax.plot(step, [h["loss_d"] for h in history], "C0" + style, label=f"loss_d ({name})")
        ax.plot(step, [h["loss_g"] for h in history], "C1" + style, label=f"loss_g ({name})")
    ax.axhline(2 * math.log(2), color="C0", lw=0.5)
    ax.axhline(math.log(2), color="C1", lw=0.5)
    ax.text(steps, 2 * math.log(2), " 2 log 2", va="center", fontsize=8)
    ax.text(steps, math.log(2), " log 2", va="center", fontsize=8)
    ax.set(xlabel="step", ylabel="BCE (mean over 20 steps)", title="Toy GAN losses")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return paths


if __name__ == "__main__":
    main()
