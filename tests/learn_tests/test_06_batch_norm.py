"""Chapter 6 (batch norm): the facts its page quotes hold in what the script prints."""

import re

import numpy as np

FLOAT = r"[-+]?\d+\.\d+(?:e[-+]\d+)?"


def vectors(line):
    """The bracketed lists of numbers on a line, as arrays."""
    return [np.array([float(v) for v in group.split(",")]) for group in re.findall(r"\[([^\]]+)\]", line)]


def line_with(out, text):
    (line,) = [line for line in out.splitlines() if text in line]
    return line


def number_after(out, text):
    """The first number printed after ``text`` (skipping words such as "max |difference| =")."""
    return float(re.search(re.escape(text) + r"[^0-9+-]*(" + FLOAT + ")", out).group(1))


def test_statistics_and_normalisation(run_chapter):
    out = run_chapter("06")
    assert "m = N*H*W = 128 values" in out
    assert np.abs(vectors(line_with(out, "x_hat mean"))[0]).max() < 1e-12
    one_minus_var = vectors(line_with(out, "1 - x_hat var"))[0]
    np.testing.assert_allclose(one_minus_var, vectors(line_with(out, "eps / (var+eps)"))[0], rtol=1e-2)
    assert (one_minus_var > 0).all()
    assert number_after(out, "y by hand against F.batch_norm: max |difference| =") < 1e-12


def test_running_statistics_follow_pytorchs_convention(run_chapter):
    out = run_chapter("06")
    got, want = vectors(line_with(out, "running_mean    "))
    np.testing.assert_allclose(got, want, atol=1e-4)
    got, want = vectors(line_with(out, "running_var     "))  # unbiased: var * m / (m - 1)
    np.testing.assert_allclose(got, want, atol=1e-4)
    late = vectors(line_with(out, "after 60 steps"))[0]
    np.testing.assert_allclose(late, [3.0, -1.0, 0.5], atol=0.1)
    assert number_after(out, "inside its batch, max |difference| =") > 0.1
    assert number_after(out, "the same comparison gives") == 0.0
    assert "running_mean unchanged: True" in out


def test_closed_form_gradient_and_its_constraints(run_chapter):
    out = run_chapter("06")
    for name in ("composed ops", "F.batch_norm", "nn.BatchNorm2d"):
        assert number_after(out, f"closed form vs {name}") < 1e-12, name
    assert int(re.search(r"composed ops: (\d+) graph nodes", out).group(1)) > 5
    assert "F.batch_norm: ['BatchNormBackward']" in out
    assert np.abs(vectors(line_with(out, "sum(dx)  "))[0]).max() < 1e-12
    with_eps = vectors(line_with(out, "sum(dx*x_hat), eps = 1e-5"))[0]
    predicted = vectors(line_with(out, "gamma*sum(dy*x_hat)*eps*inv_std**3"))[0]
    np.testing.assert_allclose(with_eps, predicted, rtol=1e-2)
    assert np.abs(with_eps).min() > 1e-8  # not zero when eps > 0 ...
    assert np.abs(vectors(line_with(out, "sum(dx*x_hat), eps = 0 "))[0]).max() < 1e-12  # ... zero at eps = 0
    assert "gradcheck of F.batch_norm (training) on (2, 3, 2, 2), x, gamma and beta: True" in out
