"""Chapter 1: the scalar engine's gradients match tinygen's and central differences, and each
broadcast input gets its gradient summed back to its own shape."""

import re

import pytest


def gradient_rows(out):
    """{"a": (value, tensor, central), "b": ...} from the printed table."""
    rows = re.findall(r"^dL/d(\w)\s+(\S+)\s+(\S+)\s+(\S+)$", out, re.MULTILINE)
    return {name: tuple(float(v) for v in values) for name, *values in rows}


@pytest.mark.parametrize("point", [(), ("--a", "-0.8", "--b", "0.3")], ids=["default", "other-point"])
def test_value_tensor_and_central_difference_agree(run_chapter, point):
    out = run_chapter("01", *point)
    rows = gradient_rows(out)
    assert set(rows) == {"a", "b"}
    for value, tensor, central in rows.values():
        assert value == pytest.approx(tensor, abs=1e-9)  # printed to 10 decimals
        assert value == pytest.approx(central, abs=1e-8)
    assert "Value and Tensor agree" in out


def test_backward_visits_the_output_first_and_every_leaf(run_chapter):
    out = run_chapter("01")
    (order,) = re.findall(r"^backward visits: (.*)$", out, re.MULTILINE)
    steps = order.split(" -> ")
    assert steps[0] == "+" and {"a", "b"} <= set(steps)
    assert steps.count("tanh") == 1 and steps.count("exp") == 1


def test_broadcast_gradients_are_summed_to_the_input_shape(run_chapter):
    out = run_chapter("01")
    assert re.search(r"^  x\s+\(2, 3\)\s+\(2, 3\)\s+dy$", out, re.MULTILINE)
    assert re.search(r"^  b\s+\(3,\)\s+\(3,\)\s+dy summed over axis 0", out, re.MULTILINE)
    assert re.search(r"^  c\s+\(2, 1\)\s+\(2, 1\)\s+dy summed over axis 1", out, re.MULTILINE)
