"""Chapter 5: the transposed convolution, conv2d's adjoint, as a layer that upsamples.

    python examples/learn/05_transposed_convolution.py

Prints the scatter view on a 2 x 2 input (each pixel stamps a scaled kernel), the two
gradients that make conv2d and conv_transpose2d each other's backward, the output size and
why output_padding exists, the overlap counts of k=3 and k=4 at stride 2, and the shapes
through the DCGAN generator. The page is docs/learn/05-transposed-convolution.md.
"""

import argparse
import runpy
from pathlib import Path

import numpy as np

import tinygen
import tinygen.nn.functional as F
from tinygen.kernels import conv
from tinygen.models.dcgan import Generator


def stamps(x, kernel, stride):
    """The scatter view on one channel: one canvas per input pixel, holding ``x[i, j] * kernel``.

    A loop over the pixels of a 2 x 2 input, to show each stamp; the library loops over
    kernel offsets instead (``reference_conv_transpose2d``) and sums the same terms.
    """
    k = kernel.shape[0]
    side = (x.shape[0] - 1) * stride + k
    out = []
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            canvas = np.zeros((side, side))
            canvas[stride * i : stride * i + k, stride * j : stride * j + k] = x[i, j] * kernel
            out.append(canvas)
    return out


def overlap_counts(k, stride, padding, output_padding=0, side=4):
    """How many stamps cover each output pixel: conv_transpose2d of ones with a kernel of ones."""
    ones = tinygen.ones(1, 1, side, side, dtype=np.float64)
    kernel = tinygen.ones(1, 1, k, k, dtype=np.float64)
    y = F.conv_transpose2d(ones, kernel, stride=stride, padding=padding, output_padding=output_padding)
    return y.numpy()[0, 0].astype(int)


def show_scatter():
    print("== the scatter view: x = [[1, 2], [3, 4]], kernel of ones 3x3, stride 2 ==")
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    kernel = np.ones((3, 3))
    summed = sum(stamps(x, kernel, 2))
    y = F.conv_transpose2d(tinygen.tensor(x[None, None]), tinygen.tensor(kernel[None, None]), stride=2)
    reference = conv.reference_conv_transpose2d(x[None, None], kernel[None, None], None, 2, 0, 0, 1, 1)
    print("sum of the four stamps = conv_transpose2d(x):")
    print(y.numpy()[0, 0].astype(int))
    print("equal to the stamps:", np.array_equal(summed, y.numpy()[0, 0]))
    print("equal to reference_conv_transpose2d:", np.array_equal(reference, y.numpy()))
    assert np.array_equal(summed, y.numpy()[0, 0]) and np.array_equal(reference, y.numpy())


def show_gradients():
    print("\n== each is the other's backward (same weight w) ==")
    rng = np.random.default_rng(0)
    w = tinygen.tensor(rng.standard_normal((3, 2, 4, 4)))  # conv2d: 2 -> 3 channels; transposed: 3 -> 2
    z = tinygen.tensor(rng.standard_normal((2, 2, 14, 14)), requires_grad=True)
    y = F.conv2d(z, w, stride=2, padding=1)
    dy = tinygen.tensor(rng.standard_normal(y.shape))
    y.backward(dy)
    forward_diff = np.abs(z.grad.numpy() - F.conv_transpose2d(dy, w, stride=2, padding=1).numpy()).max()
    x = tinygen.tensor(rng.standard_normal((2, 3, 7, 7)), requires_grad=True)
    up = F.conv_transpose2d(x, w, stride=2, padding=1)
    dup = tinygen.tensor(rng.standard_normal(up.shape))
    up.backward(dup)
    back_diff = np.abs(x.grad.numpy() - F.conv2d(dup, w, stride=2, padding=1).numpy()).max()
    print(f"conv2d {tuple(z.shape)} -> {tuple(y.shape)}")
    print(f"conv_transpose2d {tuple(x.shape)} -> {tuple(up.shape)}")
    print(f"conv2d's input gradient - conv_transpose2d(dy): max {forward_diff:.1e}")
    print(f"conv_transpose2d's input gradient - conv2d(dy): max {back_diff:.1e}")
    assert forward_diff < 1e-12 and back_diff < 1e-12


def show_output_padding():
    print("\n== output size (H-1)*s - 2p + d*(k-1) + output_padding + 1, k=4 s=2 p=1 ==")
    rng = np.random.default_rng(1)
    w = tinygen.tensor(rng.standard_normal((1, 1, 4, 4)))
    for size in (13, 14, 15, 16):
        out = F.conv2d(tinygen.tensor(np.zeros((1, 1, size, size))), w, stride=2, padding=1).shape[2]
        print(f"conv2d: H={size} -> {out}")
    x = tinygen.tensor(rng.standard_normal((1, 1, 7, 7)))
    for extra in (0, 1):
        up = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=extra)
        z = tinygen.tensor(rng.standard_normal(up.shape))
        left = float((up * z).sum().item())
        right = float((x * F.conv2d(z, w, stride=2, padding=1)).sum().item())
        gap = abs(left - right)
        print(f"conv_transpose2d: 7 -> {up.shape[2]} (output_padding={extra}), adjoint gap {gap:.1e}")
        assert gap < 1e-10


def show_overlaps():
    print("\n== overlap counts on a 4x4 input, stride 2 ==")
    uneven = overlap_counts(3, 2, 1, output_padding=1)
    even = overlap_counts(4, 2, 1)
    print("k=3, p=1, output_padding=1 (uneven: a checkerboard):")
    print(uneven)
    print("k=4, p=1 (even inside the border):")
    print(even)
    inside_uneven = sorted(set(uneven[1:-1, 1:-1].ravel().tolist()))
    inside_even = sorted(set(even[1:-1, 1:-1].ravel().tolist()))
    print(f"distinct counts inside the border: k=3 {inside_uneven}, k=4 {inside_even}")


def show_dcgan_shapes():
    print("\n== the DCGAN generator (MNIST, 28x28): every ConvTranspose2d(., ., 4, 2, 1) doubles the side ==")
    tinygen.manual_seed(0)
    generator = Generator(nz=100, ngf=64, channels=1, image_size=28)
    generator.eval()
    h = tinygen.randn(2, 100)
    print(f"z {tuple(h.shape)}")
    with tinygen.no_grad():
        for layer in generator.main:
            h = layer(h)
            if type(layer).__name__ in ("Unflatten", "ConvTranspose2d"):
                print(f"{type(layer).__name__:>15} -> {tuple(h.shape)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/learn/05"), help="unused: prints only")
    parser.parse_args(argv)
    show_scatter()
    show_gradients()
    show_output_padding()
    show_overlaps()
    show_dcgan_shapes()


# ----------------------------------------------------------------------------- figures


def draw_figures(out):
    """05-transposed-conv.png (four stamps summing to the output) and 05-overlap.png (the counts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chapter_4 = runpy.run_path(str(Path(__file__).with_name("04_convolution.py")))
    grid, save = chapter_4["number_grid"], chapter_4["save"]  # chapter 4's grid of numbers
    out = Path(out)
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    pieces = stamps(x, np.ones((3, 3)), 2)
    colours = ["Blues", "Oranges", "Greens", "Reds"]

    fig, axes = plt.subplots(1, 6, figsize=(13, 2.6))
    grid(axes[0], x, "input x (2x2)", "Greys", 12)
    for k, (piece, (i, j)) in enumerate(zip(pieces, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True)):
        grid(axes[k + 1], piece, f"x[{i},{j}] * kernel" + ("  +" if k < 3 else "  ="), colours[k], 8)
    grid(axes[5], sum(pieces), "conv_transpose2d(x)", "Purples", 14)
    fig.suptitle("scatter view: kernel of ones (3x3), stride 2", fontsize=11)
    scatter_path = save(fig, out / "05-transposed-conv.png")

    fig, axes = plt.subplots(1, 2, figsize=(7, 3.6))
    grid(axes[0], overlap_counts(3, 2, 1, output_padding=1), "k=3, s=2: checkerboard", "Blues", 5)
    grid(axes[1], overlap_counts(4, 2, 1), "k=4, s=2: even inside", "Blues", 5)
    fig.suptitle("stamps covering each output pixel (4x4 input, p=1)", fontsize=11)
    return [scatter_path, save(fig, out / "05-overlap.png")]


if __name__ == "__main__":
    main()
