"""Conditional GAN: a DCGAN told which class to draw, judged by a projection discriminator.

Mirza and Osindero, "Conditional Generative Adversarial Nets" (2014) give both networks the
class label y. Here, on the DCGAN body (``tinygen.models.dcgan``):

- **G(z, y)**: the label is embedded, ``e = Embedding(classes, embed)(y)``, and joined to the
  noise, ``G(z, y) = Generator([z, e])`` (a DCGAN generator with ``nz + embed`` inputs).
- **D(x, y)**, the projection discriminator of Miyato and Koyama ("cGANs with Projection
  Discriminator", ICLR 2018): the strided convolutions give a feature map, summed over its
  positions into ``h(x)`` of size C; then

      D(x, y) = w . h(x) + b + <V[y], h(x)>        (V: Embedding(classes, C))

  The first term scores "is this a real image", the inner product "is it an image of
  class y". Why this form: the best logit is the log density ratio log q(x, y) / p(x, y) of
  real and generated pairs, and it takes this form when the class posteriors q(y | x) and
  p(y | x) are log-linear in h. Concatenating y to D's input (the original cGAN) lets D
  learn to ignore y, so the generator is not made to follow the label, and an auxiliary
  classifier (AC-GAN) rewards images that are easy to classify, which lowers the diversity
  within a class (Gong et al., "Twin Auxiliary Classifiers GAN", NeurIPS 2019).

Training is DCGAN's ``train_step`` with ``labels``: real pairs (x, y) against fake pairs
(G(z, y'), y') with y' drawn uniformly. Grids show one row per class.
"""

import numpy

import tinygen
from tinygen import nn
from tinygen.errors import IndexOutOfRangeError
from tinygen.models import dcgan
from tinygen.models.classifier import check_data_labels
from tinygen.models.gan import GANRecipe, generate
from tinygen.models.recipe import Setting, check_count
from tinygen.nn import init


def check_labels(owner, labels, classes):
    """A clear error unless ``labels`` is an integer tensor with values in 0 .. classes-1."""
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{owner}: labels have dtype {labels.dtype}, expected integers 0 .. {classes - 1}")
    if labels.numel() and (int(labels.data.min()) < 0 or int(labels.data.max()) >= classes):
        raise IndexOutOfRangeError(
            f"{owner}: labels hold values in [{int(labels.data.min())}, {int(labels.data.max())}], "
            f"expected 0 .. classes-1 = 0 .. {classes - 1}"
        )


class ConditionalGenerator(nn.Module):
    """``(z, y)`` -> images: ``z`` ``(N, nz)``, ``y`` int ``(N,)`` -> ``(N, channels, S, S)`` in (-1, 1)."""

    def __init__(self, nz=100, ngf=64, channels=1, image_size=28, classes=10, embed=50):
        super().__init__()
        self.nz = check_count("ConditionalGenerator", "nz", nz)
        self.classes = check_count("ConditionalGenerator", "classes", classes)
        embed = check_count("ConditionalGenerator", "embed", embed)
        self.embed = nn.Embedding(self.classes, embed)
        self.net = dcgan.Generator(self.nz + embed, ngf, channels, image_size)
        self.channels, self.image_size = self.net.channels, self.net.image_size

    def forward(self, z, labels):
        check_labels("ConditionalGenerator", labels, self.classes)
        if z.ndim != 2 or z.shape[1] != self.nz or z.shape[0] != labels.shape[0]:
            raise ValueError(
                f"ConditionalGenerator: z has shape {tuple(z.shape)} and labels {tuple(labels.shape)}, "
                f"expected (N, {self.nz}) and (N,)"
            )
        return self.net(tinygen.cat([z, self.embed(labels)], dim=1))


class ProjectionDiscriminator(nn.Module):
    """``(x, y)`` -> one logit per pair, ``w . h(x) + b + <V[y], h(x)>`` with ``h`` the summed features."""

    def __init__(self, ndf=64, channels=1, image_size=28, classes=10):
        super().__init__()
        self.classes = check_count("ProjectionDiscriminator", "classes", classes)
        self.channels = check_count("ProjectionDiscriminator", "channels", channels)
        self.image_size = check_count("ProjectionDiscriminator", "image_size", image_size)
        layers, width, _ = dcgan.discriminator_body(
            check_count("ProjectionDiscriminator", "ndf", ndf), self.channels, self.image_size,
            owner="ProjectionDiscriminator")
        self.body = nn.Sequential(*layers)
        self.linear = nn.Linear(width, 1)
        self.project = nn.Embedding(self.classes, width)

    def forward(self, x, labels):
        dcgan.check_images("ProjectionDiscriminator", x, self.channels, self.image_size)
        check_labels("ProjectionDiscriminator", labels, self.classes)
        h = self.body(x).sum((2, 3))                                    # (N, C): sum pooling
        return self.linear(h).reshape(-1) + (self.project(labels) * h).sum(1)


def init_weights(m):
    """DCGAN's initialisation, and the projection's class vectors ~ N(0, 0.02^2) (so the
    conditional term starts as small as the rest of D)."""
    dcgan.init_weights(m)
    if isinstance(m, ProjectionDiscriminator):
        init.normal_(m.project.weight, 0.0, 0.02)


class CGAN(GANRecipe):
    """``tinygen train cgan``: a conditional generator and a projection discriminator, one Adam
    each (DCGAN's settings), one row per class in the grids, class accuracy in the metrics."""

    name = "cgan"
    summary = "conditional DCGAN (Mirza & Osindero 2014), projection discriminator (Miyato & Koyama 2018)"
    settings = {
        **dcgan.DCGAN.settings,
        "classes": Setting(10, "number of classes (labels 0 .. classes-1)", low=1),
        "embed": Setting(50, "size of the generator's label embedding", low=1),
    }
    sample_settings = {
        "class": Setting(None, "draw only this class (default: row r shows class r mod classes)", low=0),
    }
    panels = dcgan.DCGAN.panels
    metric_panels = (*GANRecipe.metric_panels, ("class accuracy of conditional samples", ("class_accuracy",)))

    def __init__(self, config, image_shape):
        super().__init__(config, image_shape)
        channels, image_size = image_shape[0], image_shape[1]
        self.G = ConditionalGenerator(config["nz"], config["ngf"], channels, image_size, config["classes"],
                                      config["embed"])
        self.D = ProjectionDiscriminator(config["ndf"], channels, image_size, config["classes"])
        self.G.apply(init_weights)
        self.D.apply(init_weights)
        self.opt_g, self.opt_d = dcgan.make_optimizers(
            self.G, self.D, lr=config["lr"], betas=(config["beta1"], config["beta2"]))
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.optimizers = {"generator": self.opt_g, "discriminator": self.opt_d}

    def check_data(self, data):
        check_data_labels(data, self.config["classes"])

    def train_step(self, batch):
        real, labels = batch
        return dcgan.train_step(self.G, self.D, self.opt_g, self.opt_d, real, labels=labels)

    def rows_of_classes(self, n, nrow):
        """Labels for ``n`` images, ``nrow`` to a row: row r is class ``r mod classes``."""
        return (numpy.arange(n) // nrow) % self.G.classes

    def fixed_inputs(self, test, n):
        count = self.G.classes * 8  # one row of 8 per class
        noise = tinygen.randn(count, self.config["nz"]).numpy()
        return {"noise": noise, "labels": self.rows_of_classes(count, 8)}

    def grids(self, fixed):
        return {"": generate(self.G, fixed["noise"], fixed["labels"])}

    def draw(self, n, rng):
        labels = numpy.arange(n) % self.G.classes
        return generate(self.G, rng.standard_normal((n, self.G.nz)), labels), labels

    def sample(self, n, rng, nrow=8, **options):
        label = options.get("class")
        if label is not None and not 0 <= label < self.G.classes:
            raise ValueError(f"sample cgan: --class is {label}, expected 0 .. {self.G.classes - 1}")
        labels = numpy.full(n, label) if label is not None else self.rows_of_classes(n, nrow)
        return generate(self.G, rng.standard_normal((n, self.G.nz)), labels)
