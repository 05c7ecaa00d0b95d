"""Train a WGAN-GP on Fashion-MNIST with tinygen: the whole training loop, in one screen.

    python examples/train_wgan_gp.py --limit 3200       # 50 critic steps, about 20 s on 1 core
    python examples/train_wgan_gp.py --epochs 5          # 5 epochs of 937 critic and 187 generator steps

The `tinygen train wgan-gp` command runs the same loop with checkpoints, resume, a progress
bar and a loss plot (tinygen/trainer.py, tinygen/models/wgan_gp.py). Here every step is
spelled out (Gulrajani, Ahmed, Arjovsky, Dumoulin and Courville, "Improved Training of
Wasserstein GANs", NeurIPS 2017, Algorithm 1):

1. Critic step, on every batch: D gives an unbounded score, and
   loss_D = mean D(fake) - mean D(real) + lambda * mean_n (|grad_x D(x_hat_n)| - 1)^2,
   with x_hat on the line between a real and a fake image. Over 1-Lipschitz D the first two
   terms have minimum -W1 (the Wasserstein-1 distance), so mean D(real) - mean D(fake)
   estimates W1; the penalty asks for the Lipschitz constraint, softly, where it matters.
2. Generator step, every n_critic = 5 batches: loss_G = -mean D(G(z)).

The penalty is a function of a gradient, so its gradient with respect to D's weights is a
second derivative: tinygen.grad(..., create_graph=True) records the backward pass as a graph,
and loss_D.backward() differentiates through it. The derivations are in docs/gans.md.
"""

import argparse
import math
from pathlib import Path

import tinygen
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.models import dcgan

N_CRITIC = 5         # critic steps (batches) per generator step
PENALTY_WEIGHT = 10  # lambda


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example-wgan-gp")
    args = parser.parse_args()

    tinygen.manual_seed(args.seed)
    data = load_dataset(args.dataset, "train")
    if args.limit:
        data = data[: args.limit]
    loader = DataLoader(data, args.batch_size, shuffle=True, drop_last=True, value_range=(-1, 1),
                        device=args.device)
    channels, size = data.images.shape[1:3]

    G = dcgan.Generator(nz=100, ngf=64, channels=channels, image_size=size)
    # The critic has layer norm, not batch norm: batch norm would make each sample's score, and
    # so its gradient, depend on the other samples in the batch, and the penalty would no longer
    # constrain D's gradient at a point (Gulrajani et al., Sec. 4).
    D = dcgan.Discriminator(ndf=64, channels=channels, image_size=size, norm="layer")
    G.apply(dcgan.init_weights)  # DCGAN's init: weights ~ N(0, 0.02)
    D.apply(dcgan.init_weights)
    G.to(args.device)
    D.to(args.device)
    # Adam(1e-4, betas=(0.5, 0.9)) as the paper's reference MNIST code; its Algorithm 1 uses beta1 = 0.
    opt_g = tinygen.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_d = tinygen.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9))
    fixed_noise = tinygen.randn(64, 100, device=args.device)  # the same z for every grid
    loss_g = math.nan  # the latest generator loss (none before the first generator step)

    for epoch in range(1, args.epochs + 1):
        for step, (real, _) in enumerate(loader, start=1):
            batch = real.shape[0]

            # 1. Critic step. The fakes are made without recording: this loss trains D only.
            z = tinygen.randn(batch, 100, device=args.device)
            with tinygen.no_grad():
                fake = G(z)
            score_real, score_fake = D(real).mean(), D(fake).mean()

            # Points on the line between each real image and a fake one. alpha is drawn per
            # sample, shape (N, 1, 1, 1), so the penalty probes N directions, not one.
            alpha = tinygen.rand(batch, 1, 1, 1, device=args.device)
            x_hat = alpha * real + (1 - alpha) * fake
            x_hat.requires_grad_()  # a leaf: its gradient is what the penalty constrains
            # grad_x D(x_hat), one image-shaped gradient per sample (D scores each sample on its
            # own, so the gradient of the sum is each score's gradient). create_graph=True records
            # this backward pass, so the penalty below is a differentiable function of D's weights.
            (grad,) = tinygen.grad(D(x_hat).sum(), x_hat, create_graph=True)
            # One norm per sample, over all of its C*H*W values: the Lipschitz constraint is on
            # the whole image. A norm per pixel or per channel would ask for another constraint.
            norms = (grad * grad).reshape(batch, -1).sum(1).sqrt()
            penalty = ((norms - 1) ** 2).mean()

            # Lower loss_c: higher scores for real images, lower for fakes, gradient norm near 1.
            loss_c = score_fake - score_real + PENALTY_WEIGHT * penalty
            opt_d.zero_grad()
            loss_c.backward()  # goes back through the recorded backward pass: second order
            opt_d.step()

            # 2. Generator step, once every N_CRITIC critic steps (each on its own batch):
            # make the critic score the fakes high. Its backward leaves gradients in D's .grad,
            # which the next critic step's zero_grad clears; only opt_g steps here.
            if step % N_CRITIC == 0:
                generated = G(tinygen.randn(batch, 100, device=args.device))
                loss = -D(generated).mean()
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
                loss_g = loss.item()

            if step % 100 == 0 or step == len(loader):
                # mean D(real) - mean D(fake): the critic's estimate of the Wasserstein-1 distance
                # (up to the scale the penalty allows). It should fall as G improves.
                w1 = (score_real - score_fake).item()
                print(f"epoch {epoch} step {step}/{len(loader)}  critic {loss_c.item():.3f}  "
                      f"W1 estimate {w1:.3f}  penalty {penalty.item():.4f}  G {loss_g:.3f}")

        G.eval()  # batch norm uses its running statistics to draw samples
        with tinygen.no_grad():
            grid = save_image(G(fixed_noise), Path(args.out) / f"epoch_{epoch:03d}.png", value_range=(-1, 1))
        G.train()
        print(f"wrote {grid}")


if __name__ == "__main__":
    main()
