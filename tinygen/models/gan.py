"""``GANRecipe``: what the three GANs share in the run: images in [-1, 1], grids of G(fixed noise),
and their evaluation, the domain FID and class coverage of ``tinygen.metrics``.

The judge is the classifier saved in the user cache (``tinygen.trainer.find_judge``);
``tinygen eval fid`` trains it there when it is missing. A training run evaluates at each
epoch's end only once the judge exists, so a GAN run never trains a classifier by surprise.
"""

import numpy

import tinygen
from tinygen.models.recipe import Recipe, Setting


def generate(G, z, labels=None):
    """``G(z)`` (or ``G(z, labels)``) for NumPy noise ``z``, with batch norm in eval mode; NumPy out."""
    was_training = G.training
    G.eval()
    device = next(iter(G.parameters())).device
    with tinygen.no_grad():
        z = tinygen.tensor(numpy.asarray(z, dtype=numpy.float32), device=device)
        if labels is None:
            images = G(z).numpy()
        else:
            images = G(z, tinygen.tensor(numpy.asarray(labels, numpy.int64), device=device)).numpy()
    G.train(was_training)
    return images


class GANRecipe(Recipe):
    """A GAN in the run. Subclasses set ``self.G`` (with ``G.nz``) and may override ``draw``."""

    value_range = (-1.0, 1.0)
    eval_settings = {
        "n": Setting(10000, "generated images scored", low=1),
    }
    metric_panels = (("domain FID (lower is better)", ("fid",)), ("classes covered", ("classes_covered",)),
                     ("class entropy, nats", ("class_entropy",)))
    eval_protocol = ("domain FID: Frechet distance in the penultimate features of tinygen's classifier, "
                     "not comparable with Inception FIDs in papers")

    def fixed_inputs(self, test, n):
        return {"noise": tinygen.randn(n, self.config["nz"]).numpy()}

    def grids(self, fixed):
        return {"": generate(self.G, fixed["noise"])}

    def draw(self, n, rng):
        """``(images, labels)``: ``n`` samples for the metrics; labels None for an unconditional GAN."""
        return generate(self.G, rng.standard_normal((n, self.G.nz))), None

    def judge(self):
        """The cached classifier of this run's data set, or None (looked up once found)."""
        if getattr(self, "_judge", None) is None:
            from tinygen.trainer import find_judge  # the run's module, imported when first needed

            self._judge = find_judge(self.config["dataset"], self.device)
        return self._judge

    def can_evaluate(self):
        return self.judge() is not None

    def evaluate(self, test, progress=False, n=None, judge=None):
        """Domain FID of ``n`` samples (default: as many as ``test`` holds) against ``test``'s features."""
        from tinygen.metrics import real_features, sample_quality

        judge = judge if judge is not None else self.judge()
        if judge is None:
            return {}
        was = self.G.training
        figures = sample_quality(self.draw, judge, real_features(judge, test), n or len(test))
        self.G.train(was)
        return figures
