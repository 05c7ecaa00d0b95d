"""Chapter 2: the Swish Function agrees with the same function built from tinygen ops, passes
gradcheck and gradgradcheck, and gradcheck catches the planted product-rule bug in dx."""

import re


def test_swish_matches_builtins(run_chapter):
    out = run_chapter("02")
    assert "grad_fn <SwishBackward>" in out
    gaps = re.findall(r"max \|difference\| (\S+)", out)
    assert len(gaps) == 2 and all(float(gap) < 1e-12 for gap in gaps)
    ours, builtins = re.search(r"dbeta: ours (\S+), built-ins (\S+)", out).groups()
    assert abs(float(ours) - float(builtins)) < 1e-9


def test_checks_pass_and_the_planted_bug_is_caught(run_chapter):
    out = run_chapter("02")
    assert re.search(r"^gradcheck\(Swish\.apply, inputs\)\s+-> True$", out, re.MULTILINE)
    assert re.search(r"^gradgradcheck\(Swish\.apply, inputs\) -> True$", out, re.MULTILINE)
    report = out.split("the planted bug is caught:")[1]
    assert "gradcheck failed for 'SwishForgetsProductRule'" in report
    assert "with respect to inputs[0] (shape (3, 4))" in report  # dx is wrong; dbeta is right
    assert "inputs[1]" not in report
    assert "seed=0" in report
