"""The exact test NLL, and PixelRNN as ``tinygen train pixelrnn`` runs it.

**Data.** ``output="bernoulli"`` models binarized images: training resamples every pixel
from its grey level on every batch (dynamic binarization: pixel ``p/255`` is 1 with
probability ``p/255``), and the test split is binarized once from a fixed seed with
``vae.binarize(test.images, 0)``, so every evaluation scores the same 0/1 images.
``output="softmax256"`` models the 8-bit grey levels themselves (inputs ``level / 255``).

**Likelihood.** ``-log p(x) = -sum_i log p(x_i | x_<i)``: exact, per image, summed over its
``D`` pixels, in nats; ``bpd = nats / (D ln 2)``. With the 256-way softmax it is the
discrete likelihood of the 8-bit image, as the paper's CIFAR-10 bits/dim; as a density on
``[0, 256)^D`` with each level spread uniformly over its unit interval (dequantization) the
figure is the same number, and on ``[0, 1)^D`` it is ``D ln 256`` nats lower.
"""

import math

import numpy

import tinygen
from tinygen.models.pixelrnn.models import ARCHITECTURES, OUTPUTS, bits_per_dim, make_model, nll
from tinygen.models.pixelrnn.sampling import sample
from tinygen.models.recipe import Recipe, Setting, check_count
from tinygen.models.vae import binarize
from tinygen.optim import Adam

TEST_SEED = 0  # the test split's one binarization, as the VAE's
COMPLETIONS = 8  # test images completed from their top half in the "completions" grid


def eval_images(images, output):
    """uint8 images ``(N, 1, H, W)`` as the model scores them: binarized once (seed 0) for
    ``bernoulli``, ``level / 255`` for ``softmax256``; float32."""
    if output == "bernoulli":
        return binarize(images, TEST_SEED)
    return numpy.asarray(images, dtype=numpy.float32) / 255


def evaluate(model, images, batch_size=100, progress=False):
    """The exact test NLL of ``images`` (float ``(N, 1, H, W)``, see :func:`eval_images`).

    Returns ``{"nll": mean -log p(x), nats per image, "bpd": bits/dim}``; the per-image sums
    are added up in float64.
    """
    from tqdm import tqdm

    batch_size = check_count("pixelrnn.evaluate", "batch_size", batch_size)
    images = numpy.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"pixelrnn.evaluate: images has shape {images.shape}, expected (N, 1, H, W), N >= 1")
    parameter = next(iter(model.parameters()))
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        with tinygen.no_grad(), tqdm(total=len(images), disable=not progress, unit="image", desc="NLL",
                                     dynamic_ncols=True) as bar:
            for start in range(0, len(images), batch_size):
                x = tinygen.tensor(images[start:start + batch_size], dtype=parameter.dtype,
                                   device=parameter.device)
                total += float(nll(model, x).numpy().astype(numpy.float64).sum())
                bar.update(len(x))
    finally:
        model.train(was_training)
    mean = total / len(images)
    return {"nll": mean, "bpd": bits_per_dim(mean, math.prod(images.shape[1:]))}


def _occluded(originals, rows):
    """``originals`` with every row from ``rows`` down set to grey 0.5: what the model was shown."""
    shown = originals.copy()
    shown[:, :, rows:] = 0.5
    return shown


class PixelRNNRecipe(Recipe):
    """PixelRNN as ``tinygen train pixelrnn`` runs it: one module ``pixelrnn``, one Adam, the exact
    ``-log p(x)`` per image as the loss; grids of samples and of completed test images."""

    name = "pixelrnn"
    summary = "PixelRNN (van den Oord et al. 2016): Row LSTM, Diagonal BiLSTM, row LSTM; exact nats per image"
    settings = {
        "arch": Setting("row-lstm", "row-lstm, diagonal-bilstm, or row-baseline (nn.LSTM, one row per step)",
                        kind="choice", choices=ARCHITECTURES),
        "layers": Setting(2, "LSTM layers", low=1),
        "hidden": Setting(16, "LSTM state size h (PixelRNN's residual stream has 2h channels)", low=1),
        "output": Setting("bernoulli", "bernoulli (binarized images) or softmax256 (256 grey levels)",
                          kind="choice", choices=tuple(OUTPUTS)),
        "lr": Setting(1e-3, "Adam learning rate", kind="positive"),
        "grid": Setting(16, "samples per grid, beside 8 completed test images (0: no grids; sampling is "
                            "sequential, so the grids come at epoch ends unless --sample-every)", low=0),
    }
    run_defaults = {"batch_size": 16, "sample_every": 0}
    sample_settings = {
        "naive": Setting(False, "the naive sampler: the whole network again for every pixel (slow)",
                         kind="flag"),
    }
    eval_settings = {"batch_size": Setting(100, "test images per batch", low=1)}
    uses_test_split = True
    panels = (("-log p(x), nats per image", ("loss",)),)
    metric_panels = (("test -log p(x), nats per image", ("nll",)), ("test, bits/dim", ("bpd",)))

    def __init__(self, config, image_shape):
        super().__init__(config, image_shape)
        self.pixelrnn = make_model(config["arch"], self.image_shape, config["layers"], config["hidden"],
                                   config["output"])
        self.opt = Adam(self.pixelrnn.parameters(), lr=config["lr"])
        self.modules = {"pixelrnn": self.pixelrnn}
        self.optimizers = {"pixelrnn": self.opt}

    @property
    def eval_protocol(self):
        if self.config["output"] == "bernoulli":
            return (f"test split binarized once (seed {TEST_SEED}); training resampled each pixel every "
                    "batch (dynamic binarization); exact -log p(x), no bound")
        return ("grey levels 0..255, a 256-way softmax per pixel: the discrete likelihood of the 8-bit "
                "image, exact")

    def train_step(self, batch):
        x, _ = batch
        if self.config["output"] == "bernoulli":
            # Dynamic binarization, as the loader's binarize=True does (one loader flag serves every
            # output, and softmax256 needs the grey levels): drawn from the run's seeded generator.
            uniform = tinygen.rand(x.shape, dtype=x.dtype, device=x.device)
            x = (uniform < x).to(x.dtype)
        loss = nll(self.pixelrnn, x).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    def fixed_inputs(self, test, n):
        grid = self.config["grid"]
        if not grid:
            return {}
        height, width = self.image_shape[1:]
        fixed = {"uniform": tinygen.rand(grid, height, width, dtype=tinygen.float64).numpy()}
        if test is not None and len(test) >= COMPLETIONS:
            fixed["originals"] = eval_images(test.images[:COMPLETIONS], self.config["output"])
            uniform = tinygen.rand(COMPLETIONS, height, width, dtype=tinygen.float64)
            fixed["completion_uniform"] = uniform.numpy()
        return fixed

    def grids(self, fixed):
        if "uniform" not in fixed:
            return {}
        grids = {"": sample(self.pixelrnn, fixed["uniform"])}
        if "originals" in fixed:
            # Rows of 8: the top halves the model was shown, its completions, the originals.
            originals = fixed["originals"]
            rows = originals.shape[2] // 2
            completed = sample(self.pixelrnn, fixed["completion_uniform"], prefix=originals[:, :, :rows])
            grids["completions"] = numpy.concatenate([_occluded(originals, rows), completed, originals])
        return grids

    def sample(self, n, rng, nrow=8, naive=False):
        height, width = self.image_shape[1:]
        return sample(self.pixelrnn, rng.random((n, height, width)), cached=not naive)

    def evaluate(self, test, progress=False, batch_size=100):
        images = eval_images(test.images, self.config["output"])
        return evaluate(self.pixelrnn, images, batch_size=batch_size, progress=progress)
