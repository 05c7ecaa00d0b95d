"""Chapter 4 (examples/learn/04_convolution.py): the facts its page quotes still hold."""

import re


def test_output_sizes_match_the_formula(run_chapter):
    out = run_chapter("04")
    assert "H=28 k=4 s=2 p=1 d=1: formula 14, conv2d 14" in out
    assert "H= 7 k=3 s=1 p=0 d=2: formula 3, conv2d 3" in out


def test_worked_example_columns_and_product(run_chapter):
    out = run_chapter("04")
    assert "[[1 2 4 5]\n [2 3 5 6]\n [4 5 7 8]\n [5 6 8 9]]" in out  # cols of the 3x3 input 1..9
    assert "[[37 47]\n [67 77]]" in out  # W @ cols for the kernel [[1, 2], [3, 4]]
    assert "equal to conv2d: True" in out and "equal to reference_conv2d: True" in out


def test_adjoint_and_input_gradient(run_chapter):
    out = run_chapter("04")
    (left,) = [line for line in out.splitlines() if line.startswith("<conv2d(x), z>")]
    (right,) = [line for line in out.splitlines() if line.startswith("<x, conv_transpose2d(z)>")]
    assert abs(float(left.split("=")[1]) - float(right.split("=")[1])) < 1e-9
    (gradient,) = re.findall(r"input gradient of conv2d vs conv_transpose2d\(dy\): max difference (\S+)", out)
    assert float(gradient) < 1e-12


def test_col2im_counts_weight_gradient_and_gradcheck(run_chapter):
    out = run_chapter("04")
    assert "[[1 2 1]\n [2 4 2]\n [1 2 1]]" in out  # windows covering each pixel of the 3x3 input
    assert "dy @ cols^T reshaped: [[11, 14], [20, 23]]" in out
    assert "autograd's w.grad:    [[11, 14], [20, 23]]" in out
    assert "gradcheck passed: True" in out
