"""Chapter 10: the variational autoencoder, its bound, and a tighter one.

    python examples/learn/10_vae.py                  # 300 steps on 6000 binarized Fashion-MNIST images
    python examples/learn/10_vae.py --steps 1000     # a better model, tighter bounds

It prints, in the order of docs/learn/10-vae.md: the model's shapes; the variance of a
reparameterised gradient against a score-function one; the closed-form Gaussian KL against
a Monte Carlo estimate; the Bernoulli log-likelihood from logits; a short training run of
tinygen's VAE with the ELBO's two terms; and the importance-weighted bound L_k on test
images for k = 1, 5, 50. It writes reconstructions into ``--out``.
"""

import argparse
import math
from pathlib import Path

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.models import vae as vae_lib


def show_model(model):
    print("== The model ==")
    print(model)
    x = tinygen.zeros(2, 1, 28, 28)
    with tinygen.no_grad():
        mu, logvar = model.encode(x)
        logits = model.decode(mu)
    print(f"x {tuple(x.shape)} -> mu {tuple(mu.shape)}, logvar {tuple(logvar.shape)} "
          f"-> z -> logits {tuple(logits.shape)}")


def show_reparameterization(draws, c):
    """d/dmu E[g(z)] at mu = 0 for z ~ N(mu, 1), g(z) = z**2 + c: two estimators, one draw each."""
    print(f"\n== Gradient of E_q[z**2 + c] in mu, q = N(mu, 1) at mu = 0, c = {c} (true value 0) ==")
    mu = tinygen.zeros(draws, requires_grad=True)  # one copy of mu per draw: mu.grad[i] is draw i's gradient
    eps = tinygen.randn(draws)
    z = mu + eps                                   # the reparameterised draw
    g = z * z + c
    g.sum().backward()
    reparam = mu.grad.numpy()                      # dg/dz * dz/dmu = 2*eps
    e = eps.numpy()
    score = g.detach().numpy() * e                 # g(z) * d log q(z)/dmu = g(z) * (z - mu)
    print(f"  reparameterised  dg/dz * dz/dmu  mean {reparam.mean():+8.3f}  variance {reparam.var():10.1f}"
          "   (theory 4)")
    print(f"  score function   g(z) * (z - mu) mean {score.mean():+8.3f}  variance {score.var():10.1f}"
          f"   (theory 15 + 6c + c**2 = {15 + 6 * c + c * c})")
    return reparam.var(), score.var()


def listed(values):
    return "[" + ", ".join(f"{v:+.4f}" for v in values) + "]"


def show_kl(draws):
    """The closed-form KL(N(mu, diag(exp(logvar))) || N(0, I)) against a Monte Carlo estimate."""
    mu = tinygen.tensor([0.5, -1.0, 2.0], requires_grad=True)
    logvar = tinygen.tensor([0.0, -1.5, 0.7], requires_grad=True)
    kl = F.gaussian_kl(mu, logvar, reduction="sum")
    kl.backward()
    m, lv = mu.detach().numpy().astype(numpy.float64), logvar.detach().numpy().astype(numpy.float64)
    eps = numpy.random.default_rng(0).standard_normal((draws, 3))
    z = m + numpy.exp(lv / 2) * eps
    log_q_over_p = -0.5 * (eps**2 + lv - z**2).sum(1)   # log q(z) - log p(z), the 2 pi terms cancel
    estimate, error = log_q_over_p.mean(), log_q_over_p.std() / math.sqrt(draws)
    print("\n== KL(q || p), q = N(mu, diag(exp(logvar))), p = N(0, I) ==")
    print(f"  mu {listed(m)}  logvar {listed(lv)}")
    print(f"  closed form  -1/2 sum(1 + logvar - mu**2 - exp(logvar)) = {kl.item():.4f}")
    print(f"  Monte Carlo  mean of log q(z) - log p(z), {draws} draws  = {estimate:.4f} +- {error:.4f}")
    print(f"  dKL/dmu     by backward {listed(mu.grad.numpy())}   mu                    {listed(m)}")
    print(f"  dKL/dlogvar by backward {listed(logvar.grad.numpy())}   (exp(logvar) - 1) / 2 "
          f"{listed((numpy.exp(lv) - 1) / 2)}")
    return kl.item(), estimate, error


def show_bernoulli():
    """-log p(x | s) for one pixel: the two-step sigmoid-then-log against the logits form, float32."""
    print("\n== -log p(x | z) for one pixel with logit s, float32 ==")
    print("      s  x   -log(1 - sigmoid(s)) or -log sigmoid(s)   softplus(s) - x*s")
    for s, x in ((0.0, 0), (5.0, 0), (20.0, 0), (-110.0, 1)):
        logit = tinygen.tensor([s])
        p = tinygen.sigmoid(logit).numpy()[0]
        with numpy.errstate(divide="ignore"):
            naive = -numpy.log(p) if x else -numpy.log(numpy.float32(1) - p)
        exact = F.binary_cross_entropy_with_logits(logit, tinygen.tensor([float(x)])).item()
        print(f"  {s:5.0f}  {x}   {naive:22.4f}                   {exact:10.4f}")
    print(f"  logit 0 on all 784 pixels: 784 ln 2 = {784 * math.log(2):.1f} nats per image = 1 bit/dim")


def train(model, loader, steps, every=50, log=print):
    """``steps`` Adam steps on the negative ELBO (nats per image); returns the last (loss, recon, kl)."""
    opt = tinygen.optim.Adam(model.parameters(), lr=1e-3)
    log(f"\n== Training: {steps} steps, batches of {loader.batch_size}, Adam(lr=1e-3), "
        "dynamic binarization ==")
    log("   step   -ELBO   recon     KL     (nats per image; -ELBO = recon + KL)")
    step = 0
    while step < steps:
        for x, _ in loader:
            step += 1
            loss, recon, kl = vae_lib.negative_elbo(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % every == 0 or step == 1 or step == steps:
                log(f"  {step:5d}  {loss.item():6.1f}  {recon.item():6.1f}  {kl.item():5.1f}")
            if step == steps:
                return loss.item(), recon.item(), kl.item()


def show_bounds(model, test_x, ks):
    """-ELBO and -L_k per test image, k draws from q(z | x) each; the same seed for every k."""
    print(f"\n== Bounds on log p(x), {len(test_x)} test images binarized once (seed {vae_lib.TEST_SEED}) ==")
    print("     k    -L_k nats   bits/dim")
    bounds = {}
    for k in ks:
        tinygen.manual_seed(1)
        result = vae_lib.evaluate(model, test_x, k=k)
        bounds[k] = result["nll_iwae"]
        print(f"  {k:4d}  {result['nll_iwae']:10.2f}   {result['bpd_iwae']:8.4f}")
    print(f"  -ELBO with the KL in closed form: {result['neg_elbo']:.2f} nats")
    return bounds


def setup(args):
    tinygen.manual_seed(args.seed)
    data = load_dataset("fashion-mnist", "train")
    if args.limit:
        data = data[: args.limit]
    loader = DataLoader(data, args.batch_size, shuffle=True, drop_last=True, value_range=(0, 1),
                        binarize=True)
    test = load_dataset("fashion-mnist", "test")
    test_x = vae_lib.binarize(test.images[: args.test_images], vae_lib.TEST_SEED)
    model = vae_lib.VAE(arch="mlp", latent=20, hidden=(400,))  # 784-400-20, ReLU, logits out
    return model, loader, test_x


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=6000, help="use the first N training images (0: all)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--test-images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/learn/10"))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    model, loader, test_x = setup(args)
    show_model(model)
    show_reparameterization(100_000, c=-250)
    show_kl(200_000)
    show_bernoulli()
    print(f"\ndata: {len(loader.dataset)} Fashion-MNIST training images, each pixel drawn 0/1 "
          "with probability p/255 every batch")
    train(model, loader, args.steps)
    show_bounds(model, test_x, (1, 5, 50))

    originals = test_x[:32]
    recon = vae_lib.decoded_means(model, vae_lib.encoded_means(model, originals))
    pairs = numpy.stack([originals.reshape(-1, 8, 1, 28, 28), recon.reshape(-1, 8, 1, 28, 28)], axis=1)
    grid = save_image(pairs.reshape(-1, 1, 28, 28), args.out / "reconstructions.png", value_range=(0, 1))
    print(f"\nwrote {grid}: rows of test images, each followed by sigmoid(decode(mu(x)))")


def draw_figures(out):
    """``10-vae.png``: test images and their reconstructions, and decoded prior samples."""
    import matplotlib.pyplot as plt

    from tinygen.data import make_grid

    args = parse([])
    model, loader, test_x = setup(args)
    train(model, loader, args.steps, log=lambda *_: None)
    originals = test_x[:24]
    recon = vae_lib.decoded_means(model, vae_lib.encoded_means(model, originals))
    pairs = numpy.stack([originals.reshape(3, 8, 1, 28, 28), recon.reshape(3, 8, 1, 28, 28)], axis=1)
    samples = vae_lib.decoded_means(model, numpy.random.default_rng(0).standard_normal((48, model.latent)))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    axes[0].imshow(make_grid(pairs.reshape(-1, 1, 28, 28), value_range=(0, 1))[0], cmap="gray")
    axes[0].set_title("test images (rows 1, 3, 5) and reconstructions", fontsize=9)
    axes[1].imshow(make_grid(samples, value_range=(0, 1))[0], cmap="gray")
    axes[1].set_title("sigmoid(decode(z)), z ~ N(0, I)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"VAE 784-400-20, Fashion-MNIST (first {args.limit} training images, dynamic "
                 f"binarization), {args.steps} steps of {args.batch_size}", fontsize=10)
    path = Path(out) / "10-vae.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    main()
