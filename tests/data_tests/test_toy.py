"""ring_of_gaussians and mode_coverage: the toy 2-D GAN data and its score."""

import math

import numpy
import pytest

import tinygen
from tinygen.data import mode_coverage, ring_of_gaussians
from tinygen.data.toy import ring_centres
from tinygen.errors import ShapeError


def test_centres_lie_on_the_circle():
    centres = ring_centres(8, 2.0)
    assert centres.shape == (8, 2)
    numpy.testing.assert_allclose(numpy.linalg.norm(centres, axis=1), 2.0)
    numpy.testing.assert_allclose(centres[2], [0.0, 2.0], atol=1e-12)


def test_samples_shape_dtype_and_reproducible():
    a = ring_of_gaussians(500, numpy.random.default_rng(0))
    b = ring_of_gaussians(500, numpy.random.default_rng(0))
    assert a.shape == (500, 2) and a.dtype == numpy.float32
    numpy.testing.assert_array_equal(a, b)
    assert ring_of_gaussians(0, numpy.random.default_rng(0)).shape == (0, 2)
    numpy_ints = ring_of_gaussians(numpy.int64(3), numpy.random.default_rng(0), modes=numpy.int64(4))
    assert numpy_ints.shape == (3, 2)


def test_samples_are_an_equal_mixture_with_the_given_std():
    rng = numpy.random.default_rng(1)
    points = ring_of_gaussians(20000, rng, modes=5, radius=3.0, std=0.1).astype(numpy.float64)
    centres = ring_centres(5, 3.0)
    nearest = numpy.linalg.norm(points[:, None] - centres[None], axis=2).argmin(axis=1)
    counts = numpy.bincount(nearest, minlength=5)
    assert numpy.all(numpy.abs(counts / 20000 - 0.2) < 0.02)
    offsets = points - centres[nearest]
    numpy.testing.assert_allclose(offsets.std(axis=0), 0.1, rtol=0.05)
    numpy.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=0.01)


def test_data_covers_every_mode_with_high_quality():
    points = ring_of_gaussians(4000, numpy.random.default_rng(2))
    hit, quality = mode_coverage(points)
    assert hit == 8
    # P(|z| > 3) for a 2-D standard normal is exp(-4.5) = 1.1%
    assert abs(quality - (1 - math.exp(-4.5))) < 0.01


def test_collapsed_sample_hits_few_modes():
    rng = numpy.random.default_rng(3)
    centres = ring_centres()
    points = centres[[0, 3]][rng.integers(0, 2, 1000)] + 0.01 * rng.standard_normal((1000, 2))
    assert mode_coverage(points) == (2, 1.0)
    # points far from every mode: no mode, no quality
    assert mode_coverage(numpy.zeros((10, 2))) == (0, 0.0)


def test_min_fraction_counts_a_thin_mode_or_not():
    centres = ring_centres()
    points = numpy.concatenate([numpy.repeat(centres[:1], 99, axis=0), centres[1:2]])
    assert mode_coverage(points).modes_hit == 1  # mode 1 has 1% < 2%
    assert mode_coverage(points, min_fraction=0.01).modes_hit == 2


def test_accepts_a_tensor():
    points = ring_of_gaussians(100, numpy.random.default_rng(4))
    assert mode_coverage(tinygen.tensor(points, requires_grad=True)) == mode_coverage(points)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda rng: ring_of_gaussians(-1, rng), "n is -1"),
        (lambda rng: ring_of_gaussians(2.5, rng), "n is 2.5"),
        (lambda rng: ring_of_gaussians(4, rng, modes=0), "modes is 0"),
        (lambda rng: ring_of_gaussians(4, rng, std=0.0), "std is 0.0"),
        (lambda rng: ring_of_gaussians(4, rng, radius=-1.0), "radius is -1.0"),
        (lambda rng: mode_coverage(numpy.zeros((4, 3))), r"shape \(4, 3\)"),
        (lambda rng: mode_coverage(numpy.zeros((0, 2))), r"shape \(0, 2\)"),
        (lambda rng: mode_coverage(numpy.zeros((4, 2)), min_fraction=0.0), "min_fraction is 0.0"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(numpy.random.default_rng(0))


def test_shape_error_and_type_errors():
    with pytest.raises(ShapeError):
        mode_coverage(numpy.zeros((4,)))
    with pytest.raises(TypeError, match="rng is a int"):
        ring_of_gaussians(4, 0)
    with pytest.raises(TypeError, match="points is a list"):
        mode_coverage([[0.0, 0.0]])
