"""DCGAN: a generator and a discriminator made of strided convolutions, and their training step.

DCGAN (Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR 2016) is the recipe that made GANs
on images train reliably:

- no pooling: the generator upsamples with stride-2 transposed convolutions, the
  discriminator downsamples with stride-2 convolutions (kernel 4, padding 1, so each
  layer exactly doubles or halves the side);
- batch norm in both networks, except at the generator's output and the
  discriminator's input (a layer followed by batch norm has no bias: the norm's
  ``bias`` takes its place);
- ReLU in the generator with Tanh at the output (images live in (-1, 1));
  LeakyReLU(0.2) in the discriminator;
- weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02) (``init_weights``);
- Adam with lr = 2e-4 and beta1 = 0.5 (``make_optimizers``).

The image side must be ``base * 2**n`` with ``base`` in 4..7 and ``n >= 1``: the
generator starts from a ``base x base`` map and doubles it ``n`` times, and the
discriminator halves it back. Shapes with ``nz = 100``, ``ngf = ndf = 64``:

    28x28x1 (MNIST, base 7, n = 2)           32x32x3 (CIFAR-10, base 4, n = 3)
    Generator                                Generator
      z          (N, 100)                      z          (N, 100)
      Linear     (N, 128*7*7), BN1d, ReLU      Linear     (N, 256*4*4), BN1d, ReLU
      Unflatten  (N, 128, 7, 7)                Unflatten  (N, 256, 4, 4)
      ConvT      (N, 64, 14, 14), BN2d, ReLU   ConvT      (N, 128, 8, 8), BN2d, ReLU
      ConvT      (N, 1, 28, 28), Tanh          ConvT      (N, 64, 16, 16), BN2d, ReLU
                                               ConvT      (N, 3, 32, 32), Tanh
    Discriminator                            Discriminator
      x          (N, 1, 28, 28)                x          (N, 3, 32, 32)
      Conv       (N, 64, 14, 14), LeakyReLU    Conv       (N, 64, 16, 16), LeakyReLU
      Conv       (N, 128, 7, 7), BN2d, LReLU   Conv       (N, 128, 8, 8), BN2d, LReLU
      Flatten    (N, 128*7*7)                  Conv       (N, 256, 4, 4), BN2d, LReLU
      Linear     (N, 1) -> logits (N,)         Flatten    (N, 256*4*4)
                                               Linear     (N, 1) -> logits (N,)

The discriminator returns logits, not probabilities: the losses use
``binary_cross_entropy_with_logits``, the stable form of sigmoid followed by BCE.

``train_step`` avoids the mistakes of the seed example this package replaced:

- it built a new model on every call, so nothing was ever learned: here one instance
  of each model trains throughout, and ``train_step`` only takes them as arguments;
- its discriminator never saw a batch of fakes labelled 0: here the D step scores a
  real batch (target 1) and a fake batch (target 0);
- it mixed real images into the "fake" batch: here the fakes are ``G(z)`` only;
- it applied a sigmoid in the model and again inside the loss: here D ends with a
  Linear layer and only the logits loss applies the sigmoid.
"""

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.errors import ShapeError
from tinygen.models.gan import GANRecipe, generate  # noqa: F401  (generate: dcgan.generate)
from tinygen.models.recipe import Setting, check_count
from tinygen.nn import init
from tinygen.nn.modules.normalization import _BatchNorm
from tinygen.optim import Adam


def image_layout(image_size, owner="dcgan"):
    """``(base, n)`` with ``image_size = base * 2**n``, ``base`` in 4..7 and ``n >= 1``.

    Since the bases 4..7 cover one octave, at most one ``n`` fits: 28 = 7 * 2**2,
    32 = 4 * 2**3, 64 = 4 * 2**4, 8 = 4 * 2**1. Other sizes raise ``ShapeError``.
    """
    image_size = check_count(owner, "image_size", image_size)
    n = 1
    while image_size // 2**n >= 4:
        base, rest = divmod(image_size, 2**n)
        if rest == 0 and base <= 7:
            return base, n
        n += 1
    raise ShapeError(
        f"{owner}: image_size is {image_size}, expected base * 2**n with base in 4..7 and n >= 1 "
        "(8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, ...)"
    )


class Generator(nn.Module):
    """Noise to image: ``(N, nz)`` -> ``(N, channels, image_size, image_size)``, values in (-1, 1).

    ``Linear(nz, C0*base*base, bias=False)`` with ``C0 = ngf * 2**(n-1)``, BatchNorm1d,
    ReLU, reshaped to ``(N, C0, base, base)``; then ``n - 1`` times
    ``ConvTranspose2d(C, C/2, 4, 2, 1, bias=False)``, BatchNorm2d, ReLU (the side doubles,
    the channels halve down to ``ngf``); then ``ConvTranspose2d(ngf, channels, 4, 2, 1)``
    and Tanh. The layers are ``self.main``, so the ``state_dict`` keys are ``main.0.weight``...
    """

    def __init__(self, nz=100, ngf=64, channels=1, image_size=28):
        super().__init__()
        self.nz = check_count("Generator", "nz", nz)
        self.ngf = check_count("Generator", "ngf", ngf)
        self.channels = check_count("Generator", "channels", channels)
        base, n = image_layout(image_size, "Generator")
        self.image_size = int(image_size)

        width = self.ngf * 2 ** (n - 1)  # channels of the first feature map
        layers = [
            nn.Linear(self.nz, width * base * base, bias=False),
            nn.BatchNorm1d(width * base * base),
            nn.ReLU(),
            nn.Unflatten(1, (width, base, base)),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(self.ngf, self.channels, 4, 2, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ShapeError(f"Generator: z has shape {tuple(z.shape)}, expected (N, nz) = (N, {self.nz})")
        return self.main(z)

    def extra_repr(self):
        return f"nz={self.nz}, ngf={self.ngf}, channels={self.channels}, image_size={self.image_size}"


NORMS = ("batch", "layer", "none")


def discriminator_body(ndf, channels, image_size, norm="batch", owner="Discriminator"):
    """``(layers, width, base)``: the strided convolutions of a DCGAN discriminator, down to
    ``(N, width, base, base)``.

    ``Conv2d(channels, ndf, 4, 2, 1)``, LeakyReLU(0.2); then ``n - 1`` times
    ``Conv2d(C, 2C, 4, 2, 1)``, a norm, LeakyReLU(0.2) (the side halves, the channels
    double). ``norm`` is ``"batch"`` (BatchNorm2d; the conv has no bias, the norm's takes its
    place), ``"layer"`` (LayerNorm over each sample's (C, H, W), for a WGAN-GP critic; the conv
    has no bias there either, the norm's elementwise bias takes its place) or ``"none"``.
    """
    if norm not in NORMS:
        raise ValueError(f"{owner}: norm is {norm!r}, expected one of {', '.join(NORMS)}")
    base, n = image_layout(image_size, owner)
    width, side = ndf, image_size // 2
    layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    for _ in range(n - 1):
        side //= 2
        layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"))
        if norm == "batch":
            layers.append(nn.BatchNorm2d(width * 2))
        elif norm == "layer":
            layers.append(nn.LayerNorm([width * 2, side, side]))
        layers.append(nn.LeakyReLU(0.2))
        width *= 2
    return layers, width, base


def check_images(owner, x, channels, image_size):
    """A ShapeError unless ``x`` is ``(N, channels, image_size, image_size)``."""
    expected = (channels, image_size, image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ShapeError(
            f"{owner}: input has shape {tuple(x.shape)}, expected (N, channels, image_size, "
            f"image_size) = (N, {', '.join(map(str, expected))})"
        )


class Discriminator(nn.Module):
    """Image to one logit per image: ``(N, channels, image_size, image_size)`` -> ``(N,)``.

    ``discriminator_body`` (strided convolutions with batch norm, or ``norm``), then Flatten and
    ``Linear(C_last*base*base, 1)``. The output is a logit: ``sigmoid(D(x))`` is the
    probability that ``x`` is real (for a WGAN critic, an unbounded score).
    """

    def __init__(self, ndf=64, channels=1, image_size=28, norm="batch"):
        super().__init__()
        self.ndf = check_count("Discriminator", "ndf", ndf)
        self.channels = check_count("Discriminator", "channels", channels)
        self.image_size = check_count("Discriminator", "image_size", image_size)
        self.norm = norm
        layers, width, base = discriminator_body(self.ndf, self.channels, self.image_size, norm)
        layers += [nn.Flatten(), nn.Linear(width * base * base, 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        check_images("Discriminator", x, self.channels, self.image_size)
        return self.main(x).reshape(-1)

    def extra_repr(self):
        norm = "" if self.norm == "batch" else f", norm={self.norm!r}"
        return f"ndf={self.ndf}, channels={self.channels}, image_size={self.image_size}{norm}"


def init_weights(m):
    """DCGAN's initialisation, for ``model.apply(init_weights)``.

    Conv2d, ConvTranspose2d and Linear: ``weight ~ N(0, 0.02^2)``, ``bias = 0``.
    BatchNorm: ``weight ~ N(1, 0.02^2)``, ``bias = 0``. Other modules are left alone.
    (The PyTorch DCGAN example's ``weights_init``, extended to Linear.)
    """
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            init.zeros_(m.bias)
    elif isinstance(m, _BatchNorm) and m.affine:
        init.normal_(m.weight, 1.0, 0.02)
        if m.bias is not None:
            init.zeros_(m.bias)


def make_optimizers(G, D, lr=2e-4, betas=(0.5, 0.999)):
    """``(opt_g, opt_d)``: one Adam per network, with the DCGAN paper's settings by default."""
    return Adam(G.parameters(), lr=lr, betas=betas), Adam(D.parameters(), lr=lr, betas=betas)


def train_step(G, D, opt_g, opt_d, real, z=None, labels=None):
    """One D step, then one G step, on the batch ``real`` (N, C, S, S) with values in [-1, 1].

    With ``l(s, t) = mean_n BCE(sigmoid(s_n), t) = mean_n [softplus(s_n) - t * s_n]``
    (``binary_cross_entropy_with_logits``) and ``fake = G(z)``, ``z ~ N(0, 1)`` of shape
    ``(N, G.nz)`` drawn from tinygen's seeded generator (or the ``z`` given)::

        loss_d = l(D(real), 1) + l(D(fake.detach()), 0)      D learns: real -> 1, fake -> 0
        loss_g = l(D(fake), 1)                               G learns: make D say "real"

    ``loss_g`` is the non-saturating loss of Goodfellow et al. (2014): it maximises
    ``log D(G(z))`` instead of minimising ``log(1 - D(G(z)))``, which gives G a gradient
    even when D rejects its fakes confidently. ``loss_g`` uses D after its update.
    ``opt_d`` changes only D and ``opt_g`` only G; the G step's backward also leaves
    gradients in D's ``.grad``, which the next D step's ``zero_grad`` clears.

    A conditional pair (``tinygen.models.cgan``) takes the class of each real image as
    ``labels``: then D scores (image, class) pairs, ``D(real, labels)``, and the fakes are
    ``G(z, y)`` for classes ``y`` drawn uniformly, scored as ``D(fake, y)``.

    Returns Python floats: ``loss_d``, ``loss_g``, and ``d_real`` and ``d_fake``, the mean
    of ``sigmoid(D(.))`` on the real and the fake batch in the D step.
    """
    batch = real.shape[0]
    if z is None:
        z = tinygen.randn(batch, G.nz, device=real.device, dtype=real.dtype)
    real_class, fake_class = (), ()
    if labels is not None:
        real_class = (labels,)
        fake_class = (tinygen.randint(0, G.classes, (batch,), device=real.device),)
    ones = tinygen.ones(batch, device=real.device, dtype=real.dtype)
    zeros = tinygen.zeros(batch, device=real.device, dtype=real.dtype)
    fake = G(z, *fake_class)

    # 1. D step: real -> 1, fake -> 0. fake.detach(): this loss sends no gradient into G.
    logits_real = D(real, *real_class)
    logits_fake = D(fake.detach(), *fake_class)
    loss_real = F.binary_cross_entropy_with_logits(logits_real, ones)
    loss_fake = F.binary_cross_entropy_with_logits(logits_fake, zeros)
    loss_d = loss_real + loss_fake
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()

    # 2. G step: make the updated D call the fakes real.
    loss_g = F.binary_cross_entropy_with_logits(D(fake, *fake_class), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()

    with tinygen.no_grad():
        d_real = tinygen.sigmoid(logits_real).mean().item()
        d_fake = tinygen.sigmoid(logits_fake).mean().item()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": d_real, "d_fake": d_fake}


def slerp(z0, z1, t):
    """Spherical interpolation between noise vectors (rows of ``z0``, ``z1``) at fractions ``t``.

    Gaussian noise lives near a sphere of radius sqrt(nz); a straight line between two points
    cuts through its low-density inside, the great-circle arc stays on it (White, 2016):
    ``slerp(z0, z1, t) = sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1`` with ``cos w = z0.z1/|z0||z1|``.
    """
    unit0 = z0 / numpy.linalg.norm(z0, axis=-1, keepdims=True)
    unit1 = z1 / numpy.linalg.norm(z1, axis=-1, keepdims=True)
    omega = numpy.arccos(numpy.clip((unit0 * unit1).sum(-1, keepdims=True), -1.0, 1.0))
    t = numpy.asarray(t)[:, None]
    sin_omega = numpy.sin(omega)
    if numpy.all(sin_omega > 1e-6):
        return (numpy.sin((1 - t) * omega) * z0 + numpy.sin(t * omega) * z1) / sin_omega
    return (1 - t) * z0 + t * z1  # (nearly) parallel: the arc is a line


def interpolation_noise(rng, rows, nrow, nz):
    """``rows * nrow`` noise vectors: each row walks the arc between two random points (``slerp``)."""
    ends = rng.standard_normal((2, rows, nz))
    t = numpy.linspace(0.0, 1.0, nrow)
    return numpy.concatenate([slerp(ends[0][[r]], ends[1][[r]], t) for r in range(rows)])


class DCGAN(GANRecipe):
    """The DCGAN as ``tinygen train dcgan`` runs it: ``generator`` and ``discriminator``, one
    Adam each, ``train_step`` above, grids of G(fixed noise), the domain FID (``GANRecipe``)."""

    name = "dcgan"
    summary = "DCGAN (Radford et al. 2016): strided-convolution GAN, images in [-1, 1]"
    settings = {
        "nz": Setting(100, "noise size", low=1),
        "ngf": Setting(64, "generator width", low=1),
        "ndf": Setting(64, "discriminator width", low=1),
        "lr": Setting(2e-4, "Adam learning rate", kind="positive"),
        "beta1": Setting(0.5, "Adam beta1", kind="fraction"),
        "beta2": Setting(0.999, "Adam beta2", kind="fraction"),
    }
    sample_settings = {
        "interpolate": Setting(
            False, "each row walks the noise space between two random points (spherical interpolation)",
            kind="flag"),
    }
    panels = (("BCE loss", ("loss_d", "loss_g")), ("mean of sigmoid(D(.))", ("d_real", "d_fake")))

    def __init__(self, config, image_shape):
        super().__init__(config, image_shape)
        channels, image_size = image_shape[0], image_shape[1]
        self.G = Generator(config["nz"], config["ngf"], channels, image_size)
        self.D = Discriminator(config["ndf"], channels, image_size)
        self.G.apply(init_weights)
        self.D.apply(init_weights)
        self.opt_g, self.opt_d = make_optimizers(
            self.G, self.D, lr=config["lr"], betas=(config["beta1"], config["beta2"]))
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.optimizers = {"generator": self.opt_g, "discriminator": self.opt_d}

    def train_step(self, batch):
        real, _ = batch
        return train_step(self.G, self.D, self.opt_g, self.opt_d, real)

    def sample(self, n, rng, nrow=8, interpolate=False):
        if interpolate:
            z = interpolation_noise(rng, max(1, n // nrow), nrow, self.G.nz)
        else:
            z = rng.standard_normal((n, self.G.nz))
        return generate(self.G, z)
