"""Sample quality for GANs: a domain FID, class coverage, and a conditional GAN's class accuracy.

**Domain FID.** Heusel et al. ("GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium", 2017) fit a Gaussian to a network's features of real and of
generated images and report the Frechet distance between the two::

    FID = |mu_r - mu_g|^2 + tr(C_r + C_g - 2 (C_r^{1/2} C_g C_r^{1/2})^{1/2})

Papers use Inception-v3's pool features, trained on ImageNet; no such weights can be had
here, so the features are the penultimate layer of tinygen's own classifier trained on the
real training split (``tinygen.models.classifier``). The figure ranks models on one data set
against each other; it is **not comparable with the Inception FIDs in papers**.

The matrix square roots come from symmetric eigendecompositions: ``C_r^{1/2} = V sqrt(L) V^T``
with ``C_r = V L V^T``, and ``tr (C_r^{1/2} C_g C_r^{1/2})^{1/2}`` is the sum of the square
roots of the eigenvalues of that symmetric matrix. Eigenvalues below 0 (round-off of a
positive semi-definite matrix) are clipped to 0, so the result is real and needs no
complex ``sqrtm`` (which returns imaginary parts of round-off size).

**Class coverage.** The classifier's predicted class of every sample: ``classes_covered`` is
the number of classes that receive at least a fifth of a uniform share (``0.2 / K`` of the
samples), ``class_entropy`` the entropy of the predicted-class histogram in nats (``ln K``
for a generator that covers every class equally, 0 for one that makes one class only).
For a conditional GAN, ``class_accuracy`` is the fraction of samples of class k that the
classifier calls k.
"""

import numpy

from tinygen.models.classifier import predict, scaled


def gaussian_stats(features):
    """``(mu, cov)`` of the rows of ``features`` (N, F), in float64; cov with the N - 1 divisor."""
    features = numpy.asarray(features, dtype=numpy.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"gaussian_stats: features has shape {features.shape}, expected (N, F) with N >= 2")
    return features.mean(0), numpy.cov(features, rowvar=False)


def sqrtm_psd(matrix):
    """The symmetric square root of a positive semi-definite matrix (negative eigenvalues clipped)."""
    symmetric = (matrix + matrix.T) / 2
    values, vectors = numpy.linalg.eigh(symmetric)
    return (vectors * numpy.sqrt(numpy.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, cov1, mu2, cov2):
    """The Frechet (2-Wasserstein) distance squared between N(mu1, cov1) and N(mu2, cov2); see above."""
    mu1, mu2 = numpy.atleast_1d(mu1), numpy.atleast_1d(mu2)
    cov1, cov2 = numpy.atleast_2d(cov1), numpy.atleast_2d(cov2)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
        raise ValueError(
            f"frechet_distance: shapes mu1 {mu1.shape}, cov1 {cov1.shape}, mu2 {mu2.shape}, "
            f"cov2 {cov2.shape}; expected (F,), (F, F), (F,), (F, F)"
        )
    root1 = sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    values = numpy.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = numpy.sqrt(numpy.clip(values, 0, None)).sum()
    distance = ((mu1 - mu2) ** 2).sum() + numpy.trace(cov1) + numpy.trace(cov2) - 2 * trace_root
    return float(max(distance, 0.0))


def class_coverage(predicted, classes):
    """``{"classes_covered", "class_entropy"}`` of predicted class indices (see the module docstring)."""
    counts = numpy.bincount(numpy.asarray(predicted), minlength=classes)[:classes]
    share = counts / max(1, counts.sum())
    nonzero = share[share > 0]
    return {"classes_covered": float((share >= 0.2 / classes).sum()),
            "class_entropy": float(-(nonzero * numpy.log(nonzero)).sum())}


def real_features(classifier, test):
    """The classifier's features of the real test images (an ImageDataset), NumPy (N, F)."""
    features, _ = predict(classifier, scaled(test.images))
    return features


def sample_quality(draw, classifier, reference, n=10000, batch_size=500, rng=None):
    """Domain FID, class coverage and (when ``draw`` gives labels) class accuracy of ``n`` samples.

    ``draw(count, rng)`` returns ``(images, labels)``: a NumPy batch in [-1, 1] and the class
    each image was asked to be (or None); ``reference`` are real features (``real_features``).
    Returns ``{"fid", "classes_covered", "class_entropy"[, "class_accuracy"]}``.
    """
    rng = numpy.random.default_rng(0) if rng is None else rng
    features, predicted, asked = [], [], []
    for start in range(0, n, batch_size):
        images, labels = draw(min(batch_size, n - start), rng)
        h, logits = predict(classifier, images)
        features.append(h)
        predicted.append(logits.argmax(1))
        if labels is not None:
            asked.append(numpy.asarray(labels))
    features, predicted = numpy.concatenate(features), numpy.concatenate(predicted)
    figures = {"fid": frechet_distance(*gaussian_stats(reference), *gaussian_stats(features)),
               **class_coverage(predicted, classifier.classes)}
    if asked:
        figures["class_accuracy"] = float((predicted == numpy.concatenate(asked)).mean())
    return figures
