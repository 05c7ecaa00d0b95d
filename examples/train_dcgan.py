"""Train a DCGAN on Fashion-MNIST with tinygen: the whole training loop, in one screen.

    python examples/train_dcgan.py --epochs 1 --limit 10000      # a few minutes on 2 cores
    python examples/train_dcgan.py --epochs 5                     # recognisable clothes

The `tinygen train dcgan` command runs the same loop with checkpoints, resume, a progress
bar and a loss plot (tinygen/trainer.py). Here every step is spelled out:

1. D step: D should say "real" (1) to real images and "fake" (0) to G's images. The fakes
   are detached, so this step changes D only.
2. G step: G should make D say "real" to its images (the non-saturating loss of Goodfellow
   et al., 2014: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))).

Both losses take D's raw logits (binary_cross_entropy_with_logits is the stable form of
sigmoid followed by BCE), and one instance of each model trains throughout.
"""

import argparse
from pathlib import Path

import tinygen
import tinygen.nn.functional as F
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.models import dcgan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example-dcgan")
    args = parser.parse_args()

    tinygen.manual_seed(args.seed)
    data = load_dataset(args.dataset, "train")
    if args.limit:
        data = data[: args.limit]
    loader = DataLoader(data, args.batch_size, shuffle=True, drop_last=True, value_range=(-1, 1),
                        device=args.device)
    channels, size = data.images.shape[1:3]

    G = dcgan.Generator(nz=100, ngf=64, channels=channels, image_size=size)
    D = dcgan.Discriminator(ndf=64, channels=channels, image_size=size)
    G.apply(dcgan.init_weights)  # DCGAN's init: weights ~ N(0, 0.02)
    D.apply(dcgan.init_weights)
    G.to(args.device)
    D.to(args.device)
    opt_g = tinygen.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = tinygen.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    fixed_noise = tinygen.randn(64, 100, device=args.device)  # the same z for every grid

    for epoch in range(1, args.epochs + 1):
        for step, (real, _) in enumerate(loader, start=1):
            batch = real.shape[0]
            ones = tinygen.ones(batch, device=args.device)
            zeros = tinygen.zeros(batch, device=args.device)
            fake = G(tinygen.randn(batch, 100, device=args.device))

            # 1. D step: real -> 1, fake -> 0. fake.detach(): no gradient flows into G here.
            loss_d = (F.binary_cross_entropy_with_logits(D(real), ones)
                      + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()

            # 2. G step: make the (just updated) D call the fakes real.
            loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()

            if step % 100 == 0 or step == len(loader):
                print(f"epoch {epoch} step {step}/{len(loader)}  "
                      f"loss_d {loss_d.item():.3f}  loss_g {loss_g.item():.3f}")

        G.eval()  # batch norm uses its running statistics to draw samples
        with tinygen.no_grad():
            grid = save_image(G(fixed_noise), Path(args.out) / f"epoch_{epoch:03d}.png", value_range=(-1, 1))
        G.train()
        print(f"wrote {grid}")


if __name__ == "__main__":
    main()
