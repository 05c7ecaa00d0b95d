"""docs/gradcheck.md's tutorial is examples/check_custom_op.py: it runs, and catches every planted bug."""

import pathlib
import runpy

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "check_custom_op.py"


def test_tutorial_example_runs_and_catches_every_planted_bug(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "softsign passes: forward, first and second order" in out
    for bug in ("OffByOneThousandth", "OneWrongElement", "DetachedBackward", "ForgetsTheAbs"):
        assert f"{bug} is caught" in out
    assert "worst element: inputs[0][150, 7]" in out
    assert "the order-1 backward is probably not differentiable" in out
    assert "inputs = (numpy.array(-0.9),)" in out
