"""Chapter 12 (WGAN-GP, a conditional GAN, the Frechet distance) states what its page says."""

import re

import pytest


@pytest.fixture
def out(run_chapter):
    # The lone critic keeps its default 300 steps (its claim needs them); the GANs run briefly.
    return run_chapter("12", "--steps", "20")


def numbers(pattern, text):
    return [float(value) for value in re.search(pattern, text).groups()]


def test_critic_estimates_the_known_wasserstein_distance(out):
    (estimate,) = numbers(r"final estimate (\S+) against W1 = 0.500", out)
    assert 0.4 < estimate < 0.65
    last = out.split("step  300")[1].splitlines()[0]
    (norm_mean,) = numbers(r"mean (\S+),", last)
    assert abs(norm_mean - 1) < 0.1
    assert re.search(r"gradcheck of the penalty's gradient .*\(a double backward\): passed", out)


def test_gans_report_coverage_and_interpolate_norms(out):
    for name in ("vanilla GAN", "WGAN-GP"):
        hit, quality = numbers(rf"{name} +modes hit (\d+) of 8, high quality (\S+)%", out)
        assert 0 <= hit <= 8 and 0 <= quality <= 100
    assert "WGAN-GP step   20  Wasserstein estimate" in out
    assert re.search(r"\|grad D\(x_hat\)\| mean \S+, 10%-90% \S+-\S+", out)
    fractions = re.search(r"fraction of G\(z, k\) on mode k: (.*)", out).group(1).split()
    assert len(fractions) == 8 and all(0 <= float(f) <= 1 for f in fractions)


def test_frechet_distance_matches_its_closed_form_and_shows_its_bias(out):
    (exact,) = numbers(r"closed form .* = (\S+)", out)
    (computed,) = numbers(r"frechet_distance\(mu1, cov1, mu2, cov2\) +=\s+(\S+)", out)
    assert exact == pytest.approx(7.5) and computed == pytest.approx(exact, abs=1e-6)
    rows = re.findall(r"fitted to +(\d+) samples each: (\S+) +two samples of the SAME Gaussian: (\S+)", out)
    same = [float(row[2]) for row in rows]
    assert [int(row[0]) for row in rows] == [50, 500, 5000]
    assert same[0] > same[1] > same[2] > 0  # the bias shrinks as N grows
    assert float(rows[-1][1]) == pytest.approx(exact, rel=0.1)
