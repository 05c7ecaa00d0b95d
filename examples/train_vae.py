"""Train a VAE on binarized Fashion-MNIST with tinygen: the whole training loop, in one screen.

    python examples/train_vae.py --epochs 1 --limit 6000      # seconds on 1 core
    python examples/train_vae.py --epochs 10                   # about a minute: clear reconstructions

The `tinygen train vae` command runs the same loop with checkpoints, resume, a progress
bar and a loss plot (tinygen/trainer.py). Here every step is spelled out, in the shape of
pytorch/examples' vae/main.py (Kingma and Welling, "Auto-Encoding Variational Bayes", 2014):

1. Encode a batch of 0/1 images x into q(z | x) = N(mu, diag(exp(logvar))).
2. Draw one z from q by the reparameterisation trick and decode it into Bernoulli logits.
3. Minimise the negative ELBO = reconstruction (BCE, summed over pixels) + KL(q(z | x) || p(z)).

At each epoch's end the test split (binarized once) is scored by the ELBO and by the
importance-weighted bound L_100 (Burda et al., 2016), in nats per image and in bits/dim.
The derivations are in docs/vae.md.
"""

import argparse
import time
from pathlib import Path

import tinygen
import tinygen.nn.functional as F
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.models import vae as vae_lib


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example-vae")
    args = parser.parse_args()

    tinygen.manual_seed(args.seed)
    data = load_dataset(args.dataset, "train")
    if args.limit:
        data = data[: args.limit]
    # Dynamic binarization: every batch draws each pixel afresh as 1 with probability p/255,
    # so the model sees a new 0/1 version of each image every epoch (less overfitting than one
    # fixed draw). The Bernoulli decoder models exactly these 0/1 values.
    loader = DataLoader(data, args.batch_size, shuffle=True, drop_last=True, value_range=(0, 1),
                        binarize=True, device=args.device)
    # The test split is binarized once, from a fixed seed, so every evaluation scores the same images.
    test = load_dataset(args.dataset, "test")
    test_x = vae_lib.binarize(test.images[:1000], 0)
    channels, size = data.images.shape[1:3]

    vae = vae_lib.VAE(latent=args.latent, channels=channels, image_size=size)  # 784-400-20 MLP, ReLU
    vae.to(args.device)
    opt = tinygen.optim.Adam(vae.parameters(), lr=1e-3)
    fixed_z = tinygen.randn(64, args.latent, device=args.device)  # the same prior draws for every grid
    originals = tinygen.tensor(test_x[:32], device=args.device)   # 4 rows of 8 test images

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        for step, (x, _) in enumerate(loader, start=1):
            batch = x.shape[0]

            # 1. Encode: the parameters of q(z | x), each (batch, latent).
            mu, logvar = vae.encode(x)

            # 2. Reparameterise: z = mu + sigma * eps, eps ~ N(0, I). The randomness is all in eps,
            # so z is a differentiable function of mu and logvar and the gradient flows through
            # them (sampling z ~ q directly would give no gradient with respect to q's parameters).
            eps = tinygen.randn(*mu.shape, device=args.device)
            z = mu + tinygen.exp(0.5 * logvar) * eps
            logits = vae.decode(z)

            # 3. -log p(x | z): the BCE of the logits against x, summed over the pixels. It is
            # computed from the logits (softplus form); a sigmoid then a log gives -inf where
            # the sigmoid rounds to 0 or 1.
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
            recon = recon.reshape(batch, -1).sum(1)
            # KL(q(z | x) || N(0, I)) in closed form, summed over the latent dimensions
            # (Kingma and Welling 2014, Appendix B).
            kl = (-0.5 * (1 + logvar - mu * mu - tinygen.exp(logvar))).sum(1)
            # The batch mean of the per-image sums is the negative ELBO in nats per image, the
            # number papers report. A per-pixel mean is D = 784 times smaller and comparable with
            # nothing, and a per-pixel mean BCE plus a summed KL weighs the KL 784 times too much.
            loss = (recon + kl).mean()

            opt.zero_grad()
            loss.backward()
            opt.step()

            if step % 100 == 0 or step == len(loader):
                print(f"epoch {epoch} step {step}/{len(loader)}  loss {loss.item():.2f}  "
                      f"recon {recon.mean().item():.2f}  kl {kl.mean().item():.2f}")
        seconds = time.perf_counter() - start

        # The test ELBO and the tighter bound L_100, per image, on the first 1000 test images.
        metrics = vae_lib.evaluate(vae, test_x, k=100)
        print(f"epoch {epoch}  {seconds:.1f} s  test -ELBO {metrics['neg_elbo']:.2f} nats "
              f"({metrics['bpd_elbo']:.4f} bits/dim)  -L_100 {metrics['nll_iwae']:.2f} nats "
              f"({metrics['bpd_iwae']:.4f} bits/dim)")

        with tinygen.no_grad():
            # Prior samples: the decoder's pixel probabilities sigmoid(logits) for z ~ N(0, I).
            samples = tinygen.sigmoid(vae.decode(fixed_z))
            # Reconstructions of mu(x): a row of 8 originals, then the row of their reconstructions.
            recon_images = tinygen.sigmoid(vae.decode(vae.encode(originals)[0]))
            pairs = tinygen.stack([originals.reshape(4, 8, channels, size, size),
                                   recon_images.reshape(4, 8, channels, size, size)], dim=1)
        out = Path(args.out)
        grid = save_image(samples, out / f"epoch_{epoch:03d}.png", value_range=(0, 1))
        rec = save_image(pairs.reshape(64, channels, size, size), out / f"reconstructions_{epoch:03d}.png",
                         value_range=(0, 1))
        print(f"wrote {grid} and {rec}")


if __name__ == "__main__":
    main()
