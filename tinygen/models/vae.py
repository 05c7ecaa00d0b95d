"""VAE: a Bernoulli decoder over binarized images, trained on the ELBO or the IWAE bound.

Kingma and Welling, "Auto-Encoding Variational Bayes" (ICLR 2014); Burda, Grosse and
Salakhutdinov, "Importance Weighted Autoencoders" (ICLR 2016).

The model, for a binary image x of D = C*H*W pixels and a latent z of size L::

    p(z)     = N(0, I)                                   the prior
    p(x | z) = prod_d Bernoulli(x_d; sigmoid(f(z)_d))    the decoder f gives logits
    q(z | x) = N(mu(x), diag(exp(logvar(x))))            the encoder gives mu, logvar

Every log-likelihood here is **per image, summed over its D pixels, in nats**; bits/dim is
``nats / (D ln 2)``. (A per-pixel mean would be 784 times smaller, and not comparable
with any paper.)

**The ELBO** (the evidence lower bound, Kingma and Welling eq. 3)::

    log p(x) >= ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))

The expectation is estimated with one draw ``z = mu + exp(logvar / 2) * eps``,
``eps ~ N(0, I)`` (the reparameterisation trick: the randomness is in ``eps``, so the
gradient flows through ``mu`` and ``logvar``). ``-log p(x | z)`` is the BCE of the logits
against x, summed over pixels, computed from logits (never a sigmoid then a log, which
gives -inf at saturated pixels). The KL between two Gaussians is analytic (the paper's
Appendix B): ``KL = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))``.

**The importance-weighted bound** with k draws ``z_1..z_k ~ q(z | x)``::

    log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x)
    L_k(x)  = log (1/k) sum_i w_i = logsumexp_i(log w_i) - log k

``L_1`` is the ELBO (in expectation), ``L_k <= L_{k+1} <= log p(x)`` on average, and
``L_k -> log p(x)`` as k grows (Burda et al., Theorem 1). With ``z = mu + sigma * eps``::

    log p(z) - log q(z | x) = -1/2 sum_j (z_j^2 - eps_j^2 - logvar_j)     (the 2 pi terms cancel)

**Binarization.** Training resamples every pixel from its grey level on every batch
(dynamic binarization: pixel p/255 is 1 with probability p/255, as Burda et al. train); the
test split is binarized once from a fixed seed (:func:`binarize`), so every evaluation sees
the same 0/1 images.

Two architectures, both returning logits of shape (N, C, H, W):

    mlp (default: 784-400-20, ReLU, as pytorch/examples' vae)    conv (width w = 32, 28x28 or 32x32)
      encoder  Flatten, [Linear, act] per hidden width,           Conv(C, w, 4, 2, 1), ReLU
               Linear -> mu, Linear -> logvar                     Conv(w, 2w, 4, 2, 1), ReLU, Flatten
      decoder  [Linear, act] per hidden width (reversed),         Linear -> mu, Linear -> logvar
               Linear -> D logits, Unflatten                      Linear(L, 2w*S/4*S/4), ReLU, Unflatten
                                                                  ConvT(2w, w, 4, 2, 1), ReLU
                                                                  ConvT(w, C, 4, 2, 1) -> logits

``hidden=(500,), activation="tanh"`` is Kingma and Welling's MNIST model;
``hidden=(200, 200), latent=50, activation="tanh"`` is Burda et al.'s one-stochastic-layer one.
"""

import math

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.errors import ShapeError
from tinygen.models.recipe import Recipe, Setting, check_count
from tinygen.optim import Adam

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus}
ARCHITECTURES = ("mlp", "conv")


class VAE(nn.Module):
    """Encoder ``x -> (mu, logvar)`` and decoder ``z -> logits``; see the module docstring.

    **Shapes**: x ``(N, C, H, W)`` with ``H = W = image_size``; mu, logvar ``(N, latent)``;
    ``decode(z)`` and ``forward(x)``'s logits ``(N, C, H, W)``.
    """

    def __init__(self, arch="mlp", latent=20, hidden=(400,), activation="relu", width=32,
                 channels=1, image_size=28):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"VAE: arch is {arch!r}, expected one of {', '.join(ARCHITECTURES)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"VAE: activation is {activation!r}, expected one of {', '.join(ACTIVATIONS)}")
        self.arch, self.activation = arch, activation
        self.latent = check_count("VAE", "latent", latent)
        self.channels = check_count("VAE", "channels", channels)
        self.image_size = check_count("VAE", "image_size", image_size)
        self.hidden = tuple(check_count("VAE", "hidden width", h) for h in hidden)
        self.width = check_count("VAE", "width", width)
        shape = (self.channels, self.image_size, self.image_size)
        pixels = math.prod(shape)
        if arch == "mlp":
            if not self.hidden:
                raise ValueError("VAE: hidden is (), expected at least one hidden width for arch 'mlp'")
            act = ACTIVATIONS[activation]
            widths = (pixels, *self.hidden)
            body = [nn.Flatten()]
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
                body += [nn.Linear(n_in, n_out), act()]
            features = self.hidden[-1]
            back = (self.latent, *reversed(self.hidden))
            head = []
            for n_in, n_out in zip(back[:-1], back[1:], strict=True):
                head += [nn.Linear(n_in, n_out), act()]
            head += [nn.Linear(back[-1], pixels), nn.Unflatten(1, shape)]
        else:
            if self.image_size % 4:
                raise ShapeError(
                    f"VAE: image_size is {self.image_size}, expected a multiple of 4 for arch 'conv'")
            side, w = self.image_size // 4, self.width
            features = 2 * w * side * side
            body = [nn.Conv2d(self.channels, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(),
                    nn.Flatten()]
            head = [nn.Linear(self.latent, features), nn.ReLU(), nn.Unflatten(1, (2 * w, side, side)),
                    nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
                    nn.ConvTranspose2d(w, self.channels, 4, 2, 1)]
        self.encoder = nn.Sequential(*body)
        self.mu = nn.Linear(features, self.latent)
        self.logvar = nn.Linear(features, self.latent)
        self.decoder = nn.Sequential(*head)

    def encode(self, x):
        """``(mu, logvar)`` of q(z | x), each ``(N, latent)``."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ShapeError(
                f"VAE: input has shape {tuple(x.shape)}, expected (N, {', '.join(map(str, expected))})"
            )
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        """Bernoulli logits ``(N, C, H, W)`` of p(x | z) for ``z`` of shape ``(N, latent)``."""
        if z.ndim != 2 or z.shape[1] != self.latent:
            raise ShapeError(f"VAE: z has shape {tuple(z.shape)}, expected (N, latent) = (N, {self.latent})")
        return self.decoder(z)

    def forward(self, x):
        """``(logits, mu, logvar)`` for one reparameterised draw ``z ~ q(z | x)``."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return self.decode(z), mu, logvar

    def extra_repr(self):
        layers = f"hidden={self.hidden}, activation={self.activation!r}" if self.arch == "mlp" else (
            f"width={self.width}")
        return (f"arch={self.arch!r}, latent={self.latent}, {layers}, channels={self.channels}, "
                f"image_size={self.image_size}")


def _device(model):
    return model.mu.weight.device


def reparameterize(mu, logvar, eps=None):
    """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` from tinygen's seeded generator."""
    if eps is None:
        eps = tinygen.randn(*mu.shape, device=mu.device, dtype=mu.dtype)
    return mu + tinygen.exp(0.5 * logvar) * eps


def bernoulli_nll(logits, x):
    """``-log p(x | z)`` per image, ``(N,)``: BCE of the logits against x, summed over the pixels."""
    loss = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return loss.reshape(loss.shape[0], -1).sum(1)


def negative_elbo(model, x):
    """``(loss, recon, kl)``: the batch mean of ``-ELBO = recon + kl`` and of its two terms, nats per image.

    ``recon = -log p(x | z)`` for one draw ``z ~ q(z | x)``; ``kl = KL(q(z | x) || p(z))``
    in closed form (Kingma and Welling, Appendix B), summed over the latent dimensions.
    """
    logits, mu, logvar = model(x)
    recon = bernoulli_nll(logits, x).mean()
    kl = F.gaussian_kl(mu, logvar, reduction="sum") / x.shape[0]
    return recon + kl, recon, kl


def log_weights(model, x, k, mu=None, logvar=None):
    """``log w`` of shape ``(N, k)``: ``log p(x | z_i) + log p(z_i) - log q(z_i | x)`` for k draws per image.

    The k draws of each image are decoded as one batch of ``N * k`` latents (image n's
    draws are rows ``n*k .. n*k + k - 1``). ``mu``/``logvar`` may be passed when already known.
    """
    if mu is None:
        mu, logvar = model.encode(x)
    n, latent = mu.shape
    eps = tinygen.randn(n, k, latent, device=mu.device, dtype=mu.dtype)
    z = mu.unsqueeze(1) + tinygen.exp(0.5 * logvar).unsqueeze(1) * eps                 # (N, k, L)
    log_prior_over_q = -0.5 * (z * z - eps * eps - logvar.unsqueeze(1)).sum(2)         # (N, k)
    logits = model.decode(z.reshape(n * k, latent))
    x_k = x.unsqueeze(1).expand(n, k, *x.shape[1:]).reshape(n * k, *x.shape[1:])
    return -bernoulli_nll(logits, x_k).reshape(n, k) + log_prior_over_q


def negative_iwae(model, x, k):
    """The batch mean of ``-L_k(x)``, nats per image: the IWAE training objective (Burda et al. eq. 8)."""
    return -(tinygen.logsumexp(log_weights(model, x, k), dim=1) - math.log(k)).mean()


def binarize(images, seed=0):
    """uint8 images as float32 0/1 arrays, pixel p/255 set with probability p/255, drawn once from ``seed``.

    This is the fixed binarization of a test split: the same seed gives the same 0/1 images.
    """
    images = numpy.asarray(images)
    if images.dtype != numpy.uint8:
        raise TypeError(f"binarize: images is {images.dtype}, expected uint8 grey levels")
    uniform = numpy.random.default_rng(seed).random(images.shape)
    return (uniform * 255 < images).astype(numpy.float32)


def _streaming_logsumexp(total, log_w):
    """Fold a chunk ``log_w`` (N, j) into the running ``(max, sum exp(. - max))`` pair ``total``.

    A max of -inf (every weight 0) is shifted by 0 instead, so ``-inf - -inf`` never makes a NaN.
    """
    chunk_max = log_w.max(1)
    chunk_max = numpy.where(numpy.isfinite(chunk_max), chunk_max, 0.0)
    if total is None:
        return chunk_max, numpy.exp(log_w - chunk_max[:, None]).sum(1)
    running_max, running_sum = total
    new_max = numpy.maximum(running_max, chunk_max)  # both finite: exp(running_max - new_max) <= 1
    running_sum = running_sum * numpy.exp(running_max - new_max) + numpy.exp(log_w - new_max[:, None]).sum(1)
    return new_max, running_sum


def evaluate(model, images, k=5000, batch_size=100, max_rows=10_000, progress=False):
    """The test ELBO and the importance-weighted bound L_k on binarized ``images``, per image, in nats.

    ``images`` is a float 0/1 array ``(N, C, H, W)`` (see :func:`binarize`). For each batch of
    images, the k draws are decoded in chunks of at most ``max_rows`` latents, and
    ``logsumexp`` is folded chunk by chunk in float64 (``m + log sum exp(log w - m)`` with the
    running max ``m``), so memory stays bounded and no ``exp`` overflows at any k. Draws come
    from tinygen's default generator: seed it for repeatable figures.

    Returns ``{"neg_elbo", "nll_iwae", "bpd_elbo", "bpd_iwae"}``: ``-ELBO`` and ``-L_k``
    averaged over the images (nats; both upper bounds on ``-log p(x)``), and each in bits/dim.
    """
    from tqdm import tqdm

    k = check_count("vae.evaluate", "k", k)
    images = numpy.asarray(images, dtype=numpy.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ShapeError(f"vae.evaluate: images has shape {images.shape}, expected (N, C, H, W) with N >= 1")
    device = _device(model)
    was_training = model.training
    model.eval()
    batch_size = max(1, min(batch_size, len(images)))
    per_chunk = max(1, max_rows // batch_size)
    elbo_sum = iwae_sum = 0.0
    try:
        with tinygen.no_grad(), tqdm(total=len(images), disable=not progress, unit="image",
                                     desc=f"L_{k}", dynamic_ncols=True) as bar:
            for start in range(0, len(images), batch_size):
                x = tinygen.tensor(images[start:start + batch_size], device=device)
                mu, logvar = model.encode(x)
                logits = model.decode(reparameterize(mu, logvar))
                kl = F.gaussian_kl(mu, logvar, reduction="none").sum(1)
                elbo_sum -= float((bernoulli_nll(logits, x) + kl).sum().item())
                total = None
                for done in range(0, k, per_chunk):
                    j = min(per_chunk, k - done)
                    log_w = log_weights(model, x, j, mu, logvar).numpy().astype(numpy.float64)
                    total = _streaming_logsumexp(total, log_w)
                running_max, running_sum = total
                iwae_sum += float((running_max + numpy.log(running_sum) - math.log(k)).sum())
                bar.update(len(x))
    finally:  # back in its mode even when a batch fails (a bad shape, Ctrl-C)
        model.train(was_training)
    n, pixels = len(images), math.prod(images.shape[1:])
    neg_elbo, nll = -elbo_sum / n, -iwae_sum / n
    per_bit = pixels * math.log(2)
    return {"neg_elbo": neg_elbo, "nll_iwae": nll, "bpd_elbo": neg_elbo / per_bit, "bpd_iwae": nll / per_bit}


def latent_grid(n, span=3.0):
    """An ``(n*n, 2)`` grid of latents for the 2-D manifold picture: ``Phi^-1`` of evenly spaced
    probabilities, as Kingma and Welling's Fig. 4, so each cell covers equal prior mass.
    The first row is the top of the picture (``z_2`` largest); ``span`` bounds the quantiles at +-span.
    """
    from statistics import NormalDist

    low = NormalDist().cdf(-span)
    probabilities = numpy.linspace(low, 1 - low, n) if n > 1 else numpy.array([0.5])
    quantiles = numpy.array([NormalDist().inv_cdf(p) for p in probabilities])
    z1, z2 = numpy.meshgrid(quantiles, quantiles[::-1])
    return numpy.stack([z1.ravel(), z2.ravel()], axis=1)


def decoded_means(model, z):
    """``sigmoid(decode(z))``, the decoder's pixel probabilities, for a NumPy batch ``z``; NumPy out."""
    with tinygen.no_grad():
        z = tinygen.tensor(numpy.asarray(z, dtype=numpy.float32), device=_device(model))
        return tinygen.sigmoid(model.decode(z)).numpy()


def encoded_means(model, x):
    """``mu(x)`` of q(z | x) for a NumPy batch of 0/1 images; NumPy out."""
    with tinygen.no_grad():
        return model.encode(tinygen.tensor(x, device=_device(model)))[0].numpy()


def interpolate_rows(ends0, ends1, nrow):
    """Rows of ``nrow`` latents on the straight line from each row of ``ends0`` to that of ``ends1``."""
    t = numpy.linspace(0.0, 1.0, nrow)[None, :, None]
    path = (1 - t) * ends0[:, None, :] + t * ends1[:, None, :]
    return path.reshape(-1, ends0.shape[1])


TEST_SEED = 0  # the test split's one binarization


class VAERecipe(Recipe):
    """The VAE as ``tinygen train vae`` runs it: one module ``vae``, one Adam, the negative ELBO
    (or ``-L_k`` with ``objective="iwae"``) per image; grids of prior samples, reconstructions,
    latent walks and, with a 2-D latent, the manifold."""

    name = "vae"
    summary = "VAE (Kingma & Welling 2014) / IWAE (Burda et al. 2016): Bernoulli decoder, nats per image"
    settings = {
        "arch": Setting("mlp", "the network: mlp or conv", kind="choice", choices=ARCHITECTURES),
        "latent": Setting(20, "latent size", low=1),
        "hidden": Setting((400,), "mlp hidden widths, e.g. 200,200", kind="widths"),
        "activation": Setting("relu", "mlp activation: relu, tanh, elu or softplus", kind="choice",
                              choices=tuple(ACTIVATIONS)),
        "width": Setting(32, "conv channels of the first layer", low=1),
        "objective": Setting("elbo", "the loss: elbo or iwae (-L_k with --k draws)", kind="choice",
                             choices=("elbo", "iwae")),
        "k": Setting(5, "importance samples of the iwae objective", low=1),
        "lr": Setting(1e-3, "Adam learning rate", kind="positive"),
        "eval_k": Setting(100, "importance samples of the bound at each epoch's end", low=1),
    }
    run_defaults = {"batch_size": 128}
    sample_settings = {
        "interpolate": Setting(False, "each row walks a straight line between two prior draws", kind="flag"),
        "manifold": Setting(False, "an nrow x nrow grid over the 2-D latent space (latent 2 only)",
                            kind="flag"),
    }
    eval_settings = {
        "k": Setting(5000, "importance samples of L_k (5000 as Burda et al.)", low=1),
        "batch_size": Setting(100, "test images per batch", low=1),
    }
    binarize = True
    uses_test_split = True
    panels = (("nats per image", ("loss", "recon")), ("KL(q(z|x) || p(z)), nats per image", ("kl",)))
    metric_panels = (("test, nats per image", ("neg_elbo", "nll_iwae")),
                     ("test, bits/dim", ("bpd_elbo", "bpd_iwae")))
    eval_protocol = (f"test split binarized once (seed {TEST_SEED}); training resampled each pixel "
                     "every batch (dynamic binarization)")

    def __init__(self, config, image_shape):
        super().__init__(config, image_shape)
        channels, image_size = image_shape[0], image_shape[1]
        self.vae = VAE(config["arch"], config["latent"], config["hidden"], config["activation"],
                       config["width"], channels, image_size)
        self.opt = Adam(self.vae.parameters(), lr=config["lr"])
        self.modules = {"vae": self.vae}
        self.optimizers = {"vae": self.opt}

    def train_step(self, batch):
        x, _ = batch
        if self.config["objective"] == "iwae":
            loss = negative_iwae(self.vae, x, self.config["k"])
            stats = {"loss": loss}
        else:
            loss, recon, kl = negative_elbo(self.vae, x)
            stats = {"loss": loss, "recon": recon, "kl": kl}
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {key: value.item() for key, value in stats.items()}

    def fixed_inputs(self, test, n):
        originals = binarize(test.images[: n // 2], TEST_SEED)
        return {"noise": tinygen.randn(n, self.vae.latent).numpy(), "originals": originals}

    def grids(self, fixed):
        noise, originals = fixed["noise"], fixed["originals"]
        grids = {"": decoded_means(self.vae, noise)}
        # Rows of 8: a row of originals, then the row of their reconstructions (decoded mu(x)).
        rows = len(originals) // 8
        if rows:
            originals = originals[: rows * 8]
            recon = decoded_means(self.vae, encoded_means(self.vae, originals))
            pairs = numpy.stack([originals.reshape(rows, 8, *originals.shape[1:]),
                                 recon.reshape(rows, 8, *recon.shape[1:])], axis=1)
            grids["reconstructions"] = pairs.reshape(-1, *originals.shape[1:])
        if len(originals) >= 2:
            mu = encoded_means(self.vae, originals)
            half = len(mu) // 2
            walks = interpolate_rows(mu[:half], mu[half:2 * half], 8)
            grids["interpolation"] = decoded_means(self.vae, walks)
        if self.vae.latent == 2:
            grids["manifold"] = decoded_means(self.vae, latent_grid(20))
        return grids

    def sample(self, n, rng, nrow=8, interpolate=False, manifold=False):
        if manifold:
            if self.vae.latent != 2:
                raise ValueError(
                    f"sample vae: --manifold needs latent 2, this model's latent is {self.vae.latent}")
            return decoded_means(self.vae, latent_grid(nrow))
        if interpolate:
            rows = max(1, n // nrow)
            ends = rng.standard_normal((2, rows, self.vae.latent))
            return decoded_means(self.vae, interpolate_rows(ends[0], ends[1], nrow))
        return decoded_means(self.vae, rng.standard_normal((n, self.vae.latent)))

    def evaluate(self, test, progress=False, k=None, batch_size=100):
        k = self.config["eval_k"] if k is None else k
        images = binarize(test.images, TEST_SEED)
        figures = evaluate(self.vae, images, k=k, batch_size=batch_size, progress=progress)
        return {**figures, "k": float(k)}
