"""Benchmark conv2d and conv_transpose2d (forward + backward) against PyTorch and naive NumPy.

Shapes are DCGAN's: the 28x28 (MNIST, batch 64) and 32x32 (CIFAR, batch 128) networks'
convolutions and transposed convolutions, plus a 3x3 stride-1 convolution. One call is a
forward pass and a backward pass for an upstream gradient (input, weight and bias
gradients), float32. Before timing, tinygen's outputs and gradients are compared with
PyTorch's and the NumPy version's.

Memory: the peak resident-set growth of one forward + backward, each library measured in a
fresh subprocess (``ru_maxrss`` after minus before), and for tinygen also the peak that
``tracemalloc`` sees (NumPy reports its buffers to it).

    .venv/bin/python benchmarks/bench_conv.py --threads 2
    .venv/bin/python benchmarks/bench_conv.py --threads 1 --no-memory
    python benchmarks/bench_conv.py --device cuda --batch 512   # both libraries on the GPU

On ``--device cuda`` tinygen runs on CuPy and PyTorch on CUDA with cuDNN, TF32 off (both
sides in float32 proper); each timing ends with a synchronize of the device, the steps
timed return nothing (their results are copied to the host only for the check), the naive
NumPy column and the memory subprocesses are left out, and a column gives the GFLOP/s
reached (``3 * 2*N*C_out*C_in*k*k*out*out`` for the forward and the two gradients).
"""

import argparse
import math
import os
import resource
import subprocess
import sys
import tracemalloc

import numpy

import tinygen
from tinygen.kernels.conv import conv2d, conv_transpose2d

try:
    from benchmarks import harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import harness

torch = harness.torch

# name: (transposed, batch, in_channels, out_channels, input side, kernel, stride, padding)
CASES = {
    "mnist conv 1->64 28": (False, 64, 1, 64, 28, 4, 2, 1),
    "mnist conv 64->128 14": (False, 64, 64, 128, 14, 4, 2, 1),
    "mnist convT 128->64 7": (True, 64, 128, 64, 7, 4, 2, 1),
    "mnist convT 64->1 14": (True, 64, 64, 1, 14, 4, 2, 1),
    "cifar conv 3->64 32": (False, 128, 3, 64, 32, 4, 2, 1),
    "cifar conv 64->128 16": (False, 128, 64, 128, 16, 4, 2, 1),
    "cifar conv 128->256 8": (False, 128, 128, 256, 8, 4, 2, 1),
    "cifar convT 256->128 4": (True, 128, 256, 128, 4, 4, 2, 1),
    "cifar convT 128->64 8": (True, 128, 128, 64, 8, 4, 2, 1),
    "cifar convT 64->3 16": (True, 128, 64, 3, 16, 4, 2, 1),
    "3x3 conv 64->64 32": (False, 64, 64, 64, 32, 3, 1, 1),
}
TARGET = 1.5  # per shape; the geometric mean over shapes should be <= 1.0 on the CPU
GPU_GEOMEAN_TARGET = 1.5  # on a GPU, against cuDNN (issue 18)


def make_problem(case, seed=0, batch=None):
    """Input, weight, bias and upstream gradient as float32 arrays, with PyTorch's init scale
    (``batch`` replaces the case's batch size)."""
    transposed, case_batch, c_in, c_out, side, k, s, p = CASES[case]
    batch = batch or case_batch
    rng = numpy.random.default_rng(seed)
    w_shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
    bound = 1 / math.sqrt(w_shape[1] * k * k)
    out_side = (side - 1) * s - 2 * p + k if transposed else (side + 2 * p - k) // s + 1
    arrays = [
        rng.standard_normal((batch, c_in, side, side)),
        rng.uniform(-bound, bound, w_shape),
        rng.uniform(-bound, bound, c_out),
        rng.standard_normal((batch, c_out, out_side, out_side)),
    ]
    return [a.astype(numpy.float32) for a in arrays]


# ----------------------------------------------------------------------------- the three steps


def tinygen_step(case, x, w, b, grad, device="cpu", results=True):
    """One forward + backward; it returns dx, dw, db as NumPy arrays when ``results``, else nothing."""
    transposed, *_, s, p = CASES[case]
    fn = conv_transpose2d if transposed else conv2d
    x, w, b = (tinygen.tensor(a, requires_grad=True, device=device) for a in (x, w, b))
    grad = tinygen.tensor(grad, device=device)

    def step():
        x.grad = w.grad = b.grad = None
        fn(x, w, b, stride=s, padding=p).backward(grad)
        if results:
            return x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    return step


def torch_step(case, x, w, b, grad, device="cpu", results=True):
    transposed, *_, s, p = CASES[case]
    fn = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    x, w, b = (torch.tensor(a, requires_grad=True, device=device) for a in (x, w, b))
    grad = torch.tensor(grad, device=device)

    def step():
        x.grad = w.grad = b.grad = None
        fn(x, w, b, stride=s, padding=p).backward(grad)
        if results:
            return tuple(t.detach().cpu().numpy() for t in (x.grad, w.grad, b.grad))

    return step


def flops(case, batch=None):
    """Multiply-adds times 2 of the forward and the two gradients (each one GEMM of the same size)."""
    transposed, case_batch, c_in, c_out, side, k, s, p = CASES[case]
    out_side = (side - 1) * s - 2 * p + k if transposed else (side + 2 * p - k) // s + 1
    pixels = side if transposed else out_side  # the conv side's output pixels
    return 3 * 2 * (batch or case_batch) * c_in * c_out * k * k * pixels * pixels


def naive_cols(x, k, s, p, out_side):
    """Per-sample im2col, (N, C*k*k, out*out), filled one kernel offset at a time."""
    n, c = x.shape[:2]
    padded = numpy.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = numpy.empty((n, c, k, k, out_side, out_side), dtype=x.dtype)
    for u in range(k):
        for v in range(k):
            cols[:, :, u, v] = padded[:, :, u : u + s * out_side : s, v : v + s * out_side : s]
    return cols.reshape(n, c * k * k, -1)


def naive_col2im(cols, c, side, k, s, p, out_side):
    n = cols.shape[0]
    cols = cols.reshape(n, c, k, k, out_side, out_side)
    padded = numpy.zeros((n, c, side + 2 * p, side + 2 * p), dtype=cols.dtype)
    for u in range(k):
        for v in range(k):
            padded[:, :, u : u + s * out_side : s, v : v + s * out_side : s] += cols[:, :, u, v]
    return padded[:, :, p : p + side, p : p + side]


def numpy_step(case, x, w, b, grad):
    """The textbook version: per-sample im2col, batched matmul, col2im; no layout tuning."""
    transposed, *_, k, s, p = CASES[case]

    def conv(x, w):  # returns y and the cols, for the weight gradient
        side = (x.shape[2] + 2 * p - k) // s + 1
        cols = naive_cols(x, k, s, p, side)
        return (w.reshape(w.shape[0], -1) @ cols).reshape(x.shape[0], w.shape[0], side, side), cols

    def conv_input_grad(dy, w, side):  # conv_transpose2d of dy
        dcols = w.reshape(w.shape[0], -1).T @ dy.reshape(dy.shape[0], dy.shape[1], -1)
        return naive_col2im(dcols, w.shape[1], side, k, s, p, dy.shape[2])

    def step():
        if transposed:
            side = (x.shape[2] - 1) * s - 2 * p + k
            _ = conv_input_grad(x, w, side) + b[:, None, None]  # forward
            grad_x, cols = conv(grad, w)
            grad_w = numpy.einsum("ncp,nop->co", x.reshape(*x.shape[:2], -1), cols)
        else:
            y, cols = conv(x, w)
            _ = y + b[:, None, None]
            grad_x = conv_input_grad(grad, w, x.shape[2])
            grad_w = (grad.reshape(*grad.shape[:2], -1) @ cols.transpose(0, 2, 1)).sum(0)
        return grad_x, grad_w.reshape(w.shape), grad.sum((0, 2, 3))

    return step


# ----------------------------------------------------------------------------- memory


def _rss_peak_kib():
    """The process's peak resident set size (VmHWM), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory(case, lib):
    """Peak RSS growth (bytes) of one forward + backward, in a fresh process; tracemalloc peak for tinygen.

    One step runs first (libraries load code and set up caches on their first call); then
    the peak RSS is reset (``/proc/self/clear_refs``) so that it sees the second step only.
    """
    problem = make_problem(case)
    step = {"tinygen": tinygen_step, "torch": torch_step, "numpy": numpy_step}[lib](case, *problem)
    step()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _rss_peak_kib()
    if lib == "tinygen":
        tracemalloc.start()
    step()
    traced = tracemalloc.get_traced_memory()[1] if lib == "tinygen" else 0
    print((_rss_peak_kib() - before) * 1024, traced)


def measure_memory(case, lib, threads):
    # A fixed mmap threshold makes glibc return every large buffer to the system when it is
    # freed (by default it raises the threshold after the first free and then keeps them), so
    # the RSS follows the live memory and the warm-up step leaves nothing behind.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    done = subprocess.run(
        [sys.executable, __file__, "--threads", str(threads), "--memory-of", case, lib],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    rss, traced = (int(v) for v in done.stdout.split()[-2:])
    return rss, traced


def main():
    parser = harness.argument_parser(__doc__, repeat=10)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--memory-of", nargs=2, metavar=("CASE", "LIB"), help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="which cases to run")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where both libraries run")
    parser.add_argument("--batch", type=int, help="one batch size for every case (default: each case's)")
    args = parser.parse_args()
    sync = harness.device_sync(args.device)
    gpu = sync is not None

    with harness.limit_threads(args.threads):
        if args.memory_of:
            return peak_memory(*args.memory_of)
        harness.print_machine()
        print(f"device: {args.device}, threads: {args.threads}, float32, forward + backward, "
              f"median of {args.repeat} samples\n")
        rows, memory = [], []
        for case in args.cases:
            problem = make_problem(case, batch=args.batch)
            makers = {"tinygen": tinygen_step, "torch": torch_step, "numpy": numpy_step}  # in this order
            if torch is None:
                del makers["torch"]
            if gpu:
                del makers["numpy"]
                results = {name: make(case, *problem, args.device) for name, make in makers.items()}
                steps = {name: make(case, *problem, args.device, False) for name, make in makers.items()}
            else:  # each step returns its dx, dw and db: the same callables are checked, then timed
                results = steps = {name: make(case, *problem) for name, make in makers.items()}
            row = harness.check_then_time(
                "bench_conv", case, results, steps, args.repeat, 1e-4, TARGET, labels=["dx", "dw", "db"],
                sync=sync,
            )
            rows.append(row)
            if gpu:
                rate = {name: flops(case, args.batch) / t.median / 1e9
                        for name, t in (("tinygen", row.tinygen), ("torch", row.torch)) if t is not None}
                print(f"{case}: GFLOP/s " + ", ".join(f"{name} {value:.0f}" for name, value in rate.items()))
            if not args.no_memory and not gpu:
                memory.append((case, *[measure_memory(case, lib, args.threads) for lib in steps]))
        print(harness.describe_other_load("after the run"))
    print()
    harness.print_table(rows)
    ratios = [row.ratio for row in rows if row.ratio is not None]
    if ratios:
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        goal = GPU_GEOMEAN_TARGET if gpu else 1.0
        result = "PASS" if geomean <= goal else "FAIL"  # three decimals: 1.004 must not read as 1.00
        cases = f"{len(ratios)} cases"
        print(f"\ngeometric mean of tinygen/torch over {cases}: {geomean:.3f}x (target <= {goal}x): {result}")
    if memory:
        print("\npeak memory of one forward + backward, MiB (RSS growth in a fresh process; tracemalloc)")
        print("| case | tinygen RSS | tinygen tracemalloc | torch RSS | numpy RSS | tinygen/torch RSS |")
        print("|---|---:|---:|---:|---:|---:|")
        mib = 2**20
        for case, ours, *others in memory:
            theirs = others[0] if torch is not None else None
            naive = others[-1]
            ratio = f"{ours[0] / theirs[0]:.2f}x" if theirs and theirs[0] > 0 else "-"
            torch_rss = f"{theirs[0] / mib:.1f}" if theirs else "-"
            print(
                f"| {case} | {ours[0] / mib:.1f} | {ours[1] / mib:.1f} | {torch_rss} | "
                f"{naive[0] / mib:.1f} | {ratio} |"
            )


if __name__ == "__main__":
    main()
