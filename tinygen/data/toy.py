"""Toy 2-D data for GANs: a ring of Gaussians, and how many of its modes a sample covers.

The ring is the standard small test of mode collapse (Metz et al., 2017, "Unrolled
Generative Adversarial Networks"): a generator that covers 2 of 8 modes is easy
to see in a scatter plot and to count with :func:`mode_coverage`. See docs/learn/08-toy-gan.md.
"""

import math
import numbers
import typing

import numpy

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.errors import ShapeError


class ModeCoverage(typing.NamedTuple):
    """What :func:`mode_coverage` returns."""

    modes_hit: int  # modes holding at least min_fraction of the points, within 3 std of the centre
    high_quality: float  # fraction of the points within 3 std of some centre


def ring_centres(modes=8, radius=2.0):
    """The mode centres ``c[k] = radius * (cos(2 pi k / modes), sin(2 pi k / modes))``, float64 (modes, 2)."""
    _check_ring(modes, radius, 1.0, "ring_centres")
    angles = 2 * math.pi * numpy.arange(modes) / modes
    return radius * numpy.stack([numpy.cos(angles), numpy.sin(angles)], axis=1)


def ring_of_gaussians(n, rng, modes=8, radius=2.0, std=0.05):
    """``n`` points drawn from an equal mixture of ``modes`` Gaussians centred on a circle.

    **Shapes**: returns float32 (n, 2).

    **Forward**: ``k[i] ~ uniform{0, ..., modes-1}``, ``x[i,:] = c[k[i],:] + std * z[i,:]``
    with ``z[i,:] ~ N(0, I)`` and ``c`` from :func:`ring_centres`. So
    ``p_data(x) = (1/modes) * sum_k N(x; c[k], std**2 * I)``.

    **Why**: the modes are far apart (neighbours ``2*radius*sin(pi/modes)`` = 1.53 apart at the
    defaults, 30 std), so a collapsed generator cannot hide between them. ``std`` defaults to
    0.05 rather than Metz et al.'s 0.02 so that a small GAN trained for seconds lands inside
    3 std of a centre. ``rng`` is a ``numpy.random.Generator``. See docs/learn/08-toy-gan.md.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"ring_of_gaussians: n is {n!r}, expected an int >= 0")
    if not isinstance(rng, numpy.random.Generator):
        raise TypeError(
            f"ring_of_gaussians: rng is a {type(rng).__name__}, expected a numpy.random.Generator "
            "(numpy.random.default_rng(seed))"
        )
    _check_ring(modes, radius, std, "ring_of_gaussians")
    centres = ring_centres(modes, radius)
    which = rng.integers(0, modes, size=n)
    points = centres[which] + std * rng.standard_normal((n, 2))
    return points.astype(numpy.float32)


def mode_coverage(points, modes=8, radius=2.0, std=0.05, min_fraction=0.02):
    """How many ring modes a sample covers, and how much of it lies on some mode.

    **Shapes**: ``points`` (N, 2), a NumPy or CuPy array or a Tensor, N >= 1.

    **Forward**: with ``near[i,k] = [|x[i,:] - c[k,:]| <= 3*std]``,
    ``modes_hit = sum_k [mean_i near[i,k] >= min_fraction]`` and
    ``high_quality = mean_i max_k near[i,k]``. An 8-mode sample spread evenly puts 1/8 of
    its points on each mode; at ``std`` of the data, about 99% of data points are within
    3 std (a 2-D Gaussian's radius exceeds 3 std with probability ``exp(-4.5)`` = 1.1%).

    **Why**: the two scores VEEGAN (Srivastava et al., 2017) reports on this ring: modes
    covered (diversity) and the high-quality fraction (precision). A collapsed GAN scores
    few modes with high quality near 1 (or 0, when it collapses just beside a mode, as the
    collapsed run of docs/learn/08-toy-gan.md does).
    """
    if isinstance(points, Tensor):
        points = points.detach().numpy()
    elif not isinstance(points, backend.ARRAY_TYPES):
        raise TypeError(f"mode_coverage: points is a {type(points).__name__}, expected a Tensor or an array")
    points = backend.to_device(points, "cpu")
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ShapeError(f"mode_coverage: points has shape {points.shape}, expected (N, 2) with N >= 1")
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"mode_coverage: min_fraction is {min_fraction!r}, expected 0 < min_fraction <= 1")
    _check_ring(modes, radius, std, "mode_coverage")
    centres = ring_centres(modes, radius)
    distance = numpy.linalg.norm(points.astype(numpy.float64)[:, None, :] - centres[None], axis=2)
    near = distance <= 3 * std  # (N, modes)
    modes_hit = int((near.mean(axis=0) >= min_fraction).sum())
    return ModeCoverage(modes_hit, float(near.any(axis=1).mean()))


def _check_ring(modes, radius, std, caller):
    if isinstance(modes, bool) or not isinstance(modes, numbers.Integral) or modes < 1:
        raise ValueError(f"{caller}: modes is {modes!r}, expected an int >= 1")
    if not radius >= 0:
        raise ValueError(f"{caller}: radius is {radius!r}, expected a number >= 0")
    if not std > 0:
        raise ValueError(f"{caller}: std is {std!r}, expected a number > 0")
