"""Chapter 3: the hand-derived linear backward passes gradcheck and equals F.linear's, and the
MLP learns the two spirals that one linear layer cannot separate."""

import re


def test_linear_backward_is_right(run_chapter):
    out = run_chapter("03")
    assert "gradcheck(LinearFn.apply, (x, W, b)) -> True" in out
    assert "dx (5, 3), dW (4, 3), db (4,)" in out
    gap = float(re.search(r"largest gap to F.linear's gradients: (\S+)", out).group(1))
    assert gap < 1e-12


def test_mlp_learns_the_spirals_and_a_linear_layer_does_not(run_chapter):
    out = run_chapter("03")
    losses = [float(v) for v in re.findall(r"step\s+\d+\s+loss (\S+)", out)]
    assert losses[-1] < losses[0] / 2
    linear, mlp = (float(v) for v in re.search(r"one Linear layer (\S+), MLP (\S+)", out).groups())
    assert mlp > 0.95
    assert linear < 0.75
