"""The article's Keras DCGAN for CIFAR-10, rewritten in tinygen with each of its mistakes fixed.

    python examples/seed_dcgan_fixed.py --epochs 1 --limit 10000

The article's model: a generator that sends 100-d noise through a Dense 256-512-1024
stack to a 7x7x256 map and then through convolutions to an image; a convolutional
discriminator; Adam(2e-4, beta1=0.5) for both; CIFAR-10. As written it cannot learn.
Each line marked ``FIX n:`` says what the original did and what changed. The models keep
the article's shape otherwise: 5x5 kernels, LeakyReLU(0.2), the dense stack.

It trains on CIFAR-10 when the files are present (see ``tinygen.data.load_dataset``) and
on Fashion-MNIST padded to 32x32 otherwise.

Source. "The article" is the Keras DCGAN tutorial that tinygen was founded on: its
founding brief (issue 4, "Data, training loop, CLI and DCGAN") handed it over as the seed
and listed its mistakes. The brief kept neither the article's title, nor its address, nor
its code, so this file cannot link it or quote it word for word. What follows is what the
original did, as the brief records it. Item n is marked ``FIX n:`` where it is mended
below:

1. The generator never upsamples: padding plus 'same' convolutions grow the 7x7 map by 2
   pixels a layer, so it cannot reach the image size.
2. The discriminator expects 28x28x3 input, while CIFAR-10 images are 32x32x3.
3. A new generator and discriminator are built on every call, so nothing trains.
4. D never sees a fake batch.
5. Fakes are blended with real images and clipped outside the graph.
6. A sigmoid output is fed to a loss that applies the sigmoid again.
7. Batch norm follows the generator's tanh output.

The learning path's chapter 9 (docs/learn/09-dcgan.md) explains why each one matters.
"""

import argparse
from pathlib import Path

import numpy as np

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.data import DataLoader, ImageDataset, load_dataset, save_image
from tinygen.errors import DatasetNotFoundError

NZ = 100


def make_generator(channels):
    """Noise (N, 100) -> image (N, channels, 32, 32) in (-1, 1)."""
    return nn.Sequential(
        nn.Linear(NZ, 256), nn.LeakyReLU(0.2), nn.BatchNorm1d(256),
        nn.Linear(256, 512), nn.LeakyReLU(0.2), nn.BatchNorm1d(512),
        nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.BatchNorm1d(1024),
        # FIX 1: the 7x7 map only grew 2 pixels per 'same'-padded conv and never reached 32x32;
        # a 4x4 map doubled by three stride-2 transposed convolutions is exactly 32x32.
        nn.Linear(1024, 256 * 4 * 4), nn.LeakyReLU(0.2), nn.BatchNorm1d(256 * 4 * 4),
        nn.Unflatten(1, (256, 4, 4)),
        nn.ConvTranspose2d(256, 128, 5, stride=2, padding=2, output_padding=1), nn.LeakyReLU(0.2),
        nn.BatchNorm2d(128),
        nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1), nn.LeakyReLU(0.2),
        nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, channels, 5, stride=2, padding=2, output_padding=1),
        nn.Tanh(),  # FIX 7: the seed put batch norm after tanh, undoing the (-1, 1) range the data has
    )


def make_discriminator(channels):
    """Image (N, channels, 32, 32) -> one logit per image (N, 1)."""
    return nn.Sequential(
        # FIX 2: the seed's input was 28x28x3, but CIFAR-10 images are 32x32x3.
        nn.Conv2d(channels, 64, 5, stride=2, padding=2), nn.LeakyReLU(0.2),    # -> 16x16
        nn.Conv2d(64, 128, 5, stride=2, padding=2), nn.LeakyReLU(0.2),         # -> 8x8
        nn.Conv2d(128, 256, 5, stride=2, padding=2), nn.LeakyReLU(0.2),        # -> 4x4
        nn.Flatten(),
        nn.Linear(256 * 4 * 4, 1),  # FIX 6: no sigmoid: the loss takes logits (it was applied twice)
    )


def load_images(limit):
    """CIFAR-10's training images if present, else Fashion-MNIST's padded to 32x32."""
    try:
        data = load_dataset("cifar10", "train", download=False)
    except DatasetNotFoundError:
        data = load_dataset("fashion-mnist", "train")
        padded = np.pad(data.images, ((0, 0), (0, 0), (2, 2), (2, 2)))  # 28x28 -> 32x32, black border
        data = ImageDataset(padded, data.labels, data.classes, name=data.name, split=data.split)
    return data[:limit] if limit else data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/seed-dcgan-fixed")
    args = parser.parse_args()

    tinygen.manual_seed(args.seed)
    data = load_images(args.limit)
    channels = data.images.shape[1]
    print(f"training on {data.name}: {len(data)} images of {tuple(data.images.shape[1:])}")
    loader = DataLoader(data, args.batch_size, shuffle=True, drop_last=True, value_range=(-1, 1),
                        device=args.device)

    # FIX 3: the seed built a new generator and discriminator on every call, so no weight ever
    # carried over from one step to the next; here each is built once and trained throughout.
    G = make_generator(channels).to(args.device)
    D = make_discriminator(channels).to(args.device)
    opt_g = tinygen.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = tinygen.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    fixed_noise = tinygen.randn(64, NZ, device=args.device)

    for epoch in range(1, args.epochs + 1):
        for step, (real, _) in enumerate(loader, start=1):
            batch = real.shape[0]
            ones = tinygen.ones(batch, 1, device=args.device)
            zeros = tinygen.zeros(batch, 1, device=args.device)
            # FIX 5: the seed blended real images into its fakes and clipped them with NumPy, outside
            # the graph, so no gradient could reach G; the fakes here are G's output, untouched.
            fake = G(tinygen.randn(batch, NZ, device=args.device))

            # FIX 4: the seed's D only ever saw real images; it must see a fake batch labelled 0 too.
            loss_d = (F.binary_cross_entropy_with_logits(D(real), ones)
                      + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()

            loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)  # non-saturating G loss
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()

            if step % 100 == 0 or step == len(loader):
                print(f"epoch {epoch} step {step}/{len(loader)}  "
                      f"loss_d {loss_d.item():.3f}  loss_g {loss_g.item():.3f}")

        G.eval()
        with tinygen.no_grad():
            grid = save_image(G(fixed_noise), Path(args.out) / f"epoch_{epoch:03d}.png", value_range=(-1, 1))
        G.train()
        print(f"wrote {grid}")


if __name__ == "__main__":
    main()
