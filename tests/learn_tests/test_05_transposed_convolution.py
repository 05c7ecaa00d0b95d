"""Chapter 5 (examples/learn/05_transposed_convolution.py): the facts its page quotes still hold."""

import re


def test_scatter_view_equals_the_kernel_and_the_reference(run_chapter):
    out = run_chapter("05")
    assert " [ 4  4 10  6  6]\n" in out  # the centre pixel: all four stamps overlap there
    assert "equal to the stamps: True" in out
    assert "equal to reference_conv_transpose2d: True" in out


def test_each_is_the_others_backward(run_chapter):
    out = run_chapter("05")
    gaps = re.findall(r"input gradient - (conv_transpose2d|conv2d)\(dy\): max (\S+)", out)
    assert [name for name, _ in gaps] == ["conv_transpose2d", "conv2d"]
    assert all(float(gap) < 1e-12 for _, gap in gaps)


def test_output_padding_picks_between_sizes_with_the_same_conv_output(run_chapter):
    out = run_chapter("05")
    assert "conv2d: H=14 -> 7" in out and "conv2d: H=15 -> 7" in out
    gaps = re.findall(r"conv_transpose2d: 7 -> (\d+) \(output_padding=(\d)\), adjoint gap (\S+)", out)
    assert [(size, extra) for size, extra, _ in gaps] == [("14", "0"), ("15", "1")]
    assert all(float(gap) < 1e-10 for _, _, gap in gaps)


def test_overlaps_checkerboard_against_even_and_dcgan_shapes(run_chapter):
    out = run_chapter("05")
    assert "distinct counts inside the border: k=3 [1, 2, 4], k=4 [4]" in out
    assert "Unflatten -> (2, 128, 7, 7)" in out
    assert "ConvTranspose2d -> (2, 64, 14, 14)" in out and "ConvTranspose2d -> (2, 1, 28, 28)" in out
