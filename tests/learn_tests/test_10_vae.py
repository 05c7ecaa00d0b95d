"""Chapter 10: the reparameterised gradient has the low variance the page derives, the
closed-form Gaussian KL (and its gradient) agrees with a Monte Carlo estimate, the logits form
of the Bernoulli likelihood stays finite where sigmoid-then-log does not, training lowers the
negative ELBO from about 784 ln 2 with recon + KL = -ELBO, and -L_k falls as k grows."""

import math
import re

import pytest


def numbers(text):
    return [float(v) for v in re.findall(r"[-+]?\d+\.\d+|[-+]?\d+", text)]


def test_vae_chapter(tiny_data, run_chapter, tmp_path):
    out = run_chapter("10", "--limit", "128", "--batch-size", "64", "--steps", "60",
                      "--out", str(tmp_path / "10"))
    assert "-> mu (2, 20), logvar (2, 20) -> z -> logits (2, 1, 28, 28)" in out

    reparam = re.search(r"reparameterised .* mean\s+(\S+)\s+variance\s+(\S+)", out)
    score = re.search(r"score function .* mean\s+(\S+)\s+variance\s+(\S+)\s+\(theory .* = (\S+)\)", out)
    assert float(reparam.group(2)) == pytest.approx(4.0, rel=0.05)
    assert float(score.group(2)) == pytest.approx(float(score.group(3)), rel=0.1)
    assert float(score.group(2)) > 1000 * float(reparam.group(2))

    closed = float(re.search(r"closed form .* = (\S+)", out).group(1))
    estimate, error = map(float, re.search(r"Monte Carlo .* = (\S+) \+- (\S+)", out).groups())
    assert abs(closed - estimate) < 4 * error
    for name in ("mu", "logvar"):
        by_backward, by_formula = re.search(rf"dKL/d{name}\s+by backward (\[.*?\]).*(\[.*?\])", out).groups()
        assert numbers(by_backward) == pytest.approx(numbers(by_formula), abs=1e-4)

    rows = re.findall(r"^\s+(-?\d+)\s+([01])\s+(\S+)\s+(\S+)$", out, re.MULTILINE)
    assert ("20", "0", "inf", "20.0000") in rows and ("-110", "1", "inf", "110.0000") in rows
    assert "784 ln 2 = 543.4 nats" in out

    table = out.split("== Training")[1].split("\n\n")[0]
    row = re.compile(r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)$", re.MULTILINE)
    steps = [tuple(map(float, values)) for values in row.findall(table)]
    assert [int(row[0]) for row in steps] == [1, 50, 60]
    for _, loss, recon, kl in steps:
        assert loss == pytest.approx(recon + kl, abs=0.15)  # each printed to 0.1
    assert steps[0][1] == pytest.approx(784 * math.log(2), abs=30)  # an untrained decoder is near a coin flip
    assert steps[-1][1] < steps[0][1] - 2  # the tiny test images are noise: little to learn

    bounds = dict(re.findall(r"^\s+(\d+)\s+(\S+)\s+\S+$", out.split("== Bounds")[1], re.MULTILINE))
    assert float(bounds["1"]) > float(bounds["5"]) > float(bounds["50"])
    assert "32 test images" in out
    assert (tmp_path / "10" / "reconstructions.png").stat().st_size > 0
