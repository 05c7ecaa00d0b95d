"""Chapter 9: the printed DCGAN shapes follow the (transposed) convolution size formulas, the
init is N(0, 0.02) (so D starts out saying about 1/2), detaching the fakes keeps D's loss out
of G, a short run moves D(x) above D(G(z)), and then the non-saturating G loss has the larger
gradient."""

import math
import re

import pytest

ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", re.MULTILINE)


def training_rows(out):
    """[(step, loss_d, loss_g, d_real, d_fake), ...] from the training table."""
    table = out.split("== Training")[1].split("\n\n")[0]
    return [(int(step), *map(float, rest)) for step, *rest in ROW.findall(table)]


def test_shapes_init_and_detach(tiny_data, run_chapter):
    out = run_chapter("09", "--limit", "128", "--steps", "1")
    generator, discriminator = out.split("Generator\n")[1].split("Discriminator\n")
    discriminator = discriminator.split("\n\n")[0]
    g_shapes = re.findall(r"\(N(?:, \d+)*\)", generator)
    assert g_shapes[0] == "(N, 100)" and g_shapes[-1] == "(N, 1, 28, 28)"
    assert "(N, 128, 7, 7)" in g_shapes and "(N, 64, 14, 14)" in g_shapes
    d_shapes = re.findall(r"\(N(?:, \d+)*,?\)", discriminator)
    assert d_shapes[0] == "(N, 1, 28, 28)" and "(N, 128, 7, 7)" in d_shapes and d_shapes[-1] == "(N,)"
    # The script checks each formula against the layer's output; here, that the sides double and halve.
    assert "(7 - 1)*2 - 2*1 + 4 + 0 = 14" in generator and "(14 - 1)*2 - 2*1 + 4 + 0 = 28" in generator
    assert "floor((28 + 2*1 - 4) / 2) + 1 = 14" in discriminator
    assert "floor((14 + 2*1 - 4) / 2) + 1 = 7" in discriminator

    weights = re.findall(r"^  [GD]\.\S+\s+\(([\d, ]+)\)\s+mean (\S+)\s+std (\S+)$", out, re.MULTILINE)
    assert len(weights) == 9
    for shape, mean, std in weights:
        is_norm_scale = "," not in shape.strip(", ")  # a 1-d weight is a batch-norm scale
        assert float(mean) == pytest.approx(1.0 if is_norm_scale else 0.0, abs=0.01)
        assert float(std) == pytest.approx(0.02, abs=0.004)

    detached = re.search(r"fake\.detach\(\).*G tensors with a gradient: (\d+)\s+\|grad G\| (\S+)", out)
    attached = re.search(r"fake \(no detach\).*G tensors with a gradient: (\d+)\s+\|grad G\| (\S+)", out)
    assert detached.groups() == ("0", "0.000")
    assert int(attached.group(1)) == 8 and float(attached.group(2)) > 0

    ((step, loss_d, loss_g, d_real, d_fake),) = training_rows(out)
    assert step == 1
    assert loss_d == pytest.approx(2 * math.log(2), abs=0.3)  # small weights: D starts near 1/2
    assert d_real == pytest.approx(0.5, abs=0.15) and d_fake == pytest.approx(0.5, abs=0.15)


def test_d_learns_first_and_the_non_saturating_loss_keeps_a_gradient(tiny_data, run_chapter, tmp_path):
    out = run_chapter("09", "--limit", "128", "--steps", "30", "--out", str(tmp_path / "09"))
    assert "Adam(lr=0.0002, betas=(0.5, 0.999))" in out
    rows = training_rows(out)
    assert [row[0] for row in rows] == [1, 5, 10, 15, 20, 25, 30]
    _, loss_d, loss_g, d_real, d_fake = rows[-1]
    assert d_real > d_fake and loss_d < 2 * math.log(2) and loss_g > math.log(2)

    fake_mean = float(re.search(r"mean D\(G\(z\)\) (\S+)", out).group(1))
    minimax = float(re.search(r"minimax .*mean \|d/ds\| (\S+)", out).group(1))
    non_saturating = float(re.search(r"non-saturating .*mean \|d/ds\| (\S+)", out).group(1))
    assert fake_mean < 0.5
    assert minimax == pytest.approx(fake_mean, abs=1e-3)
    assert non_saturating == pytest.approx(1 - fake_mean, abs=1e-3)
    assert non_saturating > minimax
    assert (tmp_path / "09" / "samples.png").stat().st_size > 0
