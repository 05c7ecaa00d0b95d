"""Chapter 9: DCGAN, the GAN of chapter 8 on 28x28 images.

    python examples/learn/09_dcgan.py                  # 40 steps on 4096 Fashion-MNIST images
    python examples/learn/09_dcgan.py --steps 200      # longer: shapes appear

It prints, in the order of docs/learn/09-dcgan.md: the generator's and the discriminator's
shapes layer by layer, with the output-size formula of each (transposed) convolution; the
N(0, 0.02) initialisation; why the fakes are detached in D's step; the gradient the two G
losses give; the Adam settings; then a short training run with tinygen's own
``dcgan.train_step``, and a grid of samples written into ``--out``.
"""

import argparse
import math
from pathlib import Path

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.models import dcgan


def conv_side(side, layer):
    """The output side of a Conv2d, with the formula filled in."""
    (k, _), (s, _), (p, _) = layer.kernel_size, layer.stride, layer.padding
    out = (side + 2 * p - k) // s + 1
    return out, f"floor(({side} + 2*{p} - {k}) / {s}) + 1 = {out}"


def conv_transpose_side(side, layer):
    """The output side of a ConvTranspose2d, with the formula filled in."""
    (k, _), (s, _), (p, _), (op, _) = layer.kernel_size, layer.stride, layer.padding, layer.output_padding
    out = (side - 1) * s - 2 * p + k + op
    return out, f"({side} - 1)*{s} - 2*{p} + {k} + {op} = {out}"


def shape_table(model, x):
    """Lines 'layer  shape  formula' for ``x`` passed through ``model.main`` one layer at a time."""
    lines = [f"  {'input':<36} {shape_text(x.shape)}"]
    for layer in model.main:
        note = ""
        if isinstance(layer, nn.Conv2d):
            side, note = conv_side(x.shape[-1], layer)
        elif isinstance(layer, nn.ConvTranspose2d):
            side, note = conv_transpose_side(x.shape[-1], layer)
        x = layer(x)
        if note and x.shape[-1] != side:
            raise RuntimeError(f"{layer}: formula gives {side}, the layer gave {x.shape[-1]}")
        lines.append(f"  {layer_name(layer):<36} {shape_text(x.shape):<17} {note}".rstrip())
    return lines, x


def layer_name(layer):
    """A short name: ``ConvTranspose2d(128, 64, k4 s2 p1)``, ``Linear(100, 6272)``, ``ReLU``."""
    kind = type(layer).__name__
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        (k, _), (s, _), (p, _) = layer.kernel_size, layer.stride, layer.padding
        return f"{kind}({layer.in_channels}, {layer.out_channels}, k{k} s{s} p{p})"
    if isinstance(layer, nn.Linear):
        return f"{kind}({layer.in_features}, {layer.out_features})"
    return kind


def shape_text(shape):
    return "(" + ", ".join(["N", *map(str, shape[1:])]) + ")"


def show_shapes(G, D):
    print("== Shapes, 28x28 (N images) ==")
    print("conv:            out = floor((in + 2p - k) / s) + 1")
    print("transposed conv: out = (in - 1)*s - 2p + k + output_padding")
    G.eval()
    D.eval()  # batch norm on its running statistics, so looking changes nothing
    with tinygen.no_grad():
        print("Generator")
        lines, fake = shape_table(G, tinygen.randn(2, G.nz))
        print("\n".join(lines))
        print("Discriminator")
        lines, _ = shape_table(D, fake)
        print("\n".join(lines))
        print(f"  {'reshape(-1)':<36} {'(N,)':<17} one logit per image")
    G.train()
    D.train()


def show_init(G, D):
    print("\n== Initialisation: weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02) ==")
    for net_name, net in (("G", G), ("D", D)):
        for name, p in net.named_parameters():
            if name.endswith("weight"):
                w = p.numpy()
                print(f"  {net_name}.{name:<16} {str(w.shape):<18} mean {w.mean():+.4f}  std {w.std():.4f}")


def show_detach(G, D, real):
    """D's loss with and without ``fake.detach()``: which parameters receive a gradient."""
    print("\n== D's step: fakes detached ==")
    for detach in (True, False):
        G.zero_grad()
        D.zero_grad()
        fake = G(tinygen.randn(real.shape[0], G.nz))
        scored = fake.detach() if detach else fake
        ones, zeros = tinygen.ones(real.shape[0]), tinygen.zeros(real.shape[0])
        loss_d = (F.binary_cross_entropy_with_logits(D(real), ones)
                  + F.binary_cross_entropy_with_logits(D(scored), zeros))
        loss_d.backward()
        g_grads = [p.grad for p in G.parameters() if p.grad is not None]
        g_norm = math.sqrt(sum(float((g.numpy() ** 2).sum()) for g in g_grads))
        d_norm = math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in D.parameters()))
        label = "fake.detach()" if detach else "fake (no detach)"
        print(f"  {label:<17} loss_d {loss_d.item():.3f}  |grad D| {d_norm:.3f}  "
              f"G tensors with a gradient: {len(g_grads)}  |grad G| {g_norm:.3f}")
    print(f"  a D that says 1/2 to every image has loss_d = 2 ln 2 = {2 * math.log(2):.3f}")
    G.zero_grad()
    D.zero_grad()


def show_g_losses(G, D, batch):
    """d loss / d s per logit s = D(G(z)): the minimax G loss against the non-saturating one."""
    with tinygen.no_grad():
        p = tinygen.sigmoid(D(G(tinygen.randn(batch, G.nz)))).numpy()
    minimax = p            # |d/ds log(1 - sigmoid(s))| = sigmoid(s)
    non_saturating = 1 - p  # |d/ds -log sigmoid(s)|    = 1 - sigmoid(s)
    print("\n== G's loss on the fakes, per logit s = D(G(z)) ==")
    print(f"  mean D(G(z)) {p.mean():.3f}")
    print(f"  minimax        log(1 - sigmoid(s)):  mean |d/ds| {minimax.mean():.3f}")
    print(f"  non-saturating -log sigmoid(s):      mean |d/ds| {non_saturating.mean():.3f}")
    return p.mean(), minimax.mean(), non_saturating.mean()


def build(seed):
    tinygen.manual_seed(seed)
    G = dcgan.Generator(nz=100, ngf=64, channels=1, image_size=28)
    D = dcgan.Discriminator(ndf=64, channels=1, image_size=28)
    G.apply(dcgan.init_weights)
    D.apply(dcgan.init_weights)
    return G, D


def train(G, D, loader, steps, every=5, log=print, grids_at=(), z=None):
    """``steps`` calls of ``dcgan.train_step``; returns the list of their dicts, and
    ``{step: G(z)}`` for the steps in ``grids_at``."""
    opt_g, opt_d = dcgan.make_optimizers(G, D)  # Adam(lr=2e-4, betas=(0.5, 0.999))
    log(f"\n== Training: {steps} steps, batches of {loader.batch_size}, "
        f"Adam(lr={opt_d.defaults['lr']}, betas={opt_d.defaults['betas']}) ==")
    log("   step  loss_d  loss_g    D(x)  D(G(z))")
    history, grids, step = [], {}, 0
    while step < steps:
        for real, _ in loader:
            step += 1
            stats = dcgan.train_step(G, D, opt_g, opt_d, real)
            history.append(stats)
            if step % every == 0 or step == 1 or step == steps:
                log(f"  {step:5d}  {stats['loss_d']:6.3f}  {stats['loss_g']:6.3f}  "
                    f"{stats['d_real']:6.3f}  {stats['d_fake']:7.3f}")
            if step in grids_at:
                grids[step] = dcgan.generate(G, z)
            if step == steps:
                break
    return history, grids


def load_loader(limit, batch_size):
    data = load_dataset("fashion-mnist", "train")
    if limit:
        data = data[:limit]
    return DataLoader(data, batch_size, shuffle=True, drop_last=True, value_range=(-1, 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=4096, help="use the first N training images (0: all)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/learn/09"))
    args = parser.parse_args(argv)

    G, D = build(args.seed)
    show_shapes(G, D)
    show_init(G, D)
    loader = load_loader(args.limit, args.batch_size)
    print(f"\ndata: {len(loader.dataset)} Fashion-MNIST images scaled to [-1, 1] (G ends in tanh)")
    real, _ = next(iter(loader))
    show_detach(G, D, real)
    train(G, D, loader, args.steps)
    show_g_losses(G, D, args.batch_size)

    z = numpy.random.default_rng(args.seed).standard_normal((64, G.nz))
    grid = save_image(dcgan.generate(G, z), args.out / "samples.png", value_range=(-1, 1))
    print(f"\nwrote {grid}: G(z) for 64 fixed z, batch norm in eval mode")


def draw_figures(out):
    """``09-training.png``: losses and D's outputs over 120 steps, and G(z) at steps 40 and 120."""
    import matplotlib.pyplot as plt

    from tinygen.data import make_grid

    G, D = build(0)
    z = numpy.random.default_rng(0).standard_normal((36, G.nz))
    history, grids = train(G, D, load_loader(4096, 64), 120, log=lambda *_: None, grids_at=(40, 120), z=z)
    steps = numpy.arange(1, len(history) + 1)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.1), dpi=90)
    for key in ("loss_d", "loss_g"):
        axes[0].plot(steps, [h[key] for h in history], label=key)
    axes[0].axhline(2 * math.log(2), color="grey", lw=0.8, ls="--", label="2 ln 2")
    axes[0].set(title="BCE losses", xlabel="step")
    for key, label in (("d_real", "D(x)"), ("d_fake", "D(G(z))")):
        axes[1].plot(steps, [h[key] for h in history], label=label)
    axes[1].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[1].set(title="mean of sigmoid(D(.))", xlabel="step", ylim=(0, 1))
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    for ax, (step, images) in zip(axes[2:], grids.items(), strict=True):
        ax.imshow(make_grid(images, nrow=6, value_range=(-1, 1))[0], cmap="gray")
        ax.set_title(f"G(z) after {step} steps")
        ax.axis("off")
    fig.suptitle("DCGAN on Fashion-MNIST (first 4096 training images, scaled to [-1, 1]), batches of 64",
                 fontsize=10)
    fig.tight_layout()
    path = Path(out) / "09-training.png"
    fig.savefig(path)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    main()
