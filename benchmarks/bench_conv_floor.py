"""How close the convolutions are to their GEMMs: tinygen, its three matrix products alone, and PyTorch.

A convolution's forward + backward is three matrix products of the same size (an im2col
convolution of P output pixels, K = C_in*kH*kW column entries and O output channels,
2*P*K*O flops each):

    forward   Y  = cols @ W        (P x K) @ (K x O)
    input     dC = dY @ W^T        (P x O) @ (O x K), then col2im
    weight    dW = dY^T @ cols     (O x P) @ (P x K)

(a transposed convolution is the same three with the roles of input and output
swapped). This times those three products alone on random matrices of the layer's shapes,
with NumPy's BLAS, next to tinygen's whole forward + backward and PyTorch's, at one
thread count. Where the products alone take longer than PyTorch's whole convolution, no
layout work around them can bring tinygen to PyTorch's time with this BLAS: the columns
"gemm/torch" and "gemm GFLOP/s" say how far that is the case.

    .venv/bin/python benchmarks/bench_conv_floor.py --threads 2
    .venv/bin/python benchmarks/bench_conv_floor.py --threads 1
"""

import numpy

try:
    from benchmarks import bench_conv, harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import bench_conv
    import harness

torch = harness.torch


def gemm_shapes(case):
    """``(P, K, O)`` of the layer's im2col products (for a transposed one, of its adjoint conv2d)."""
    transposed, batch, c_in, c_out, side, k, s, p = bench_conv.CASES[case]
    if transposed:  # conv_transpose2d(x) is the input gradient of a conv2d from its output to x
        return batch * side * side, c_out * k * k, c_in
    out = (side + 2 * p - k) // s + 1
    return batch * out * out, c_in * k * k, c_out


def gemm_step(case, seed=0):
    """A callable doing the layer's three products on random float32 matrices."""
    pixels, entries, channels = gemm_shapes(case)
    rng = numpy.random.default_rng(seed)
    cols = rng.standard_normal((pixels, entries), dtype=numpy.float32)
    weight = rng.standard_normal((entries, channels), dtype=numpy.float32)
    weight_t = numpy.ascontiguousarray(weight.T)
    grad = rng.standard_normal((pixels, channels), dtype=numpy.float32)

    def step():
        cols @ weight
        grad @ weight_t
        grad.T @ cols

    return step


def main():
    parser = harness.argument_parser(__doc__, repeat=15)
    args = parser.parse_args()
    lines = []
    with harness.limit_threads(args.threads):
        harness.print_machine()
        print(f"threads: {args.threads}, float32, forward + backward, median of {args.repeat}\n")
        for case in bench_conv.CASES:
            problem = bench_conv.make_problem(case)
            steps = {"tinygen": bench_conv.tinygen_step(case, *problem), "gemm": gemm_step(case)}
            if torch is not None:
                steps["torch"] = bench_conv.torch_step(case, *problem)
            t = harness.time_calls(steps, repeat=args.repeat)
            pixels, entries, channels = gemm_shapes(case)
            rate = 3 * 2 * pixels * entries * channels / t["gemm"].median / 1e9
            ours, gemm = t["tinygen"].median * 1e3, t["gemm"].median * 1e3
            theirs = t["torch"].median * 1e3 if "torch" in t else float("nan")
            lines.append(
                f"| {case} | {pixels} x {entries} x {channels} | {ours:.2f} | {gemm:.2f} | {theirs:.2f} "
                f"| {gemm / ours:.0%} | {gemm / theirs:.2f}x | {rate:.0f} |"
            )
        print(harness.describe_other_load("after the run"))
    print("\n| case | P x K x O | tinygen ms | 3 gemms ms | torch ms | gemm share | gemm/torch "
          "| gemm GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
