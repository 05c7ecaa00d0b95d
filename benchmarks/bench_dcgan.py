"""Benchmark one DCGAN training step (D step + G step, Adam) against the same model and loop in PyTorch.

One call is ``tinygen.models.dcgan.train_step``: draw z, ``fake = G(z)``, the D step
(``loss_d = BCE(D(real), 1) + BCE(D(fake.detach()), 0)``, backward, Adam) and the G step
(``loss_g = BCE(D(fake), 1)``, backward, Adam), float32, batch norm in training mode. The
torch column runs the identical model (the same weights, copied in) and the identical loop
with ``torch.optim.Adam``, in the same process at the same thread count. There is no NumPy
column: a hand-written NumPy DCGAN would be a second autograd engine.

Cases (nz = 100, ngf = ndf = 64, the DCGAN paper's sizes):

    mnist: 28x28x1 images, batch 64     G: Linear(100, 128*7*7), ConvT 128->64, ConvT 64->1
    cifar: 32x32x3 images, batch 128    G: Linear(100, 256*4*4), ConvT 256->128->64->3

Before timing, one step of each in float64 with the same weights and z is compared (the
losses, and the parameters after the step). After the table, a breakdown of tinygen's
step: the time of each op (forward, and backward including the ops its backward calls), of Adam, and the rest
(autograd engine and Python), from a few extra steps with every op's forward and backward
wrapped in a timer; and, for comparison, PyTorch's profiler's top ops.

    .venv/bin/python benchmarks/bench_dcgan.py --threads 2
    .venv/bin/python benchmarks/bench_dcgan.py --threads 1
    python benchmarks/bench_dcgan.py --device cuda --no-breakdown    # tinygen on CuPy, torch on CUDA

On ``--device cuda`` both libraries run on the GPU, and each timing ends with a
synchronize of the device, so that every queued kernel is counted; TF32 is off for torch,
so both sides compute in float32 proper.
"""

import collections
import contextlib
import time

import numpy

import tinygen
from tinygen.autograd.function import Function
from tinygen.models import dcgan

try:
    from benchmarks import gan_twins, harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import gan_twins
    import harness

torch = harness.torch

NZ, NF = 100, 64
# name: (image_size, channels, batch)
CASES = {"mnist 28x28x1 b64": (28, 1, 64), "cifar 32x32x3 b128": (32, 3, 128)}
TARGET = 1.2
LOSSES = ("loss_d", "loss_g", "d_real", "d_fake")  # what a train_step returns, in this order


# ----------------------------------------------------------------------------- the two models


def torch_twins(G, D):
    """torch copies of tinygen's G and D (``gan_twins``' twins), with the same weights copied in."""
    t_G = gan_twins.TorchGenerator(NZ, NF, G.channels, G.image_size)
    t_D = gan_twins.TorchDiscriminator(NF, D.channels, G.image_size, norm="batch")
    dtype = torch.from_numpy(numpy.zeros(0, G.main[0].weight.dtype)).dtype
    for ours, theirs in ((G, t_G), (D, t_D)):
        theirs.to(dtype)
        theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return t_G, t_D


class Setup:
    """Both libraries' models, optimizers and one batch of "real" images, for one case."""

    def __init__(self, case, dtype=numpy.float32, seed=0, device="cpu"):
        size, channels, batch = CASES[case]
        tinygen.manual_seed(seed)
        self.G = dcgan.Generator(NZ, NF, channels, size).apply(dcgan.init_weights).to(dtype).to(device)
        self.D = dcgan.Discriminator(NF, channels, size).apply(dcgan.init_weights).to(dtype).to(device)
        self.opt_g, self.opt_d = dcgan.make_optimizers(self.G, self.D)
        real = numpy.random.default_rng(seed).uniform(-1, 1, (batch, channels, size, size))
        self.real = tinygen.tensor(real.astype(dtype), device=device)
        if torch is not None:
            self.t_G, self.t_D = (twin.to(device) for twin in torch_twins(self.G, self.D))
            self.t_opt_g = torch.optim.Adam(self.t_G.parameters(), lr=2e-4, betas=(0.5, 0.999))
            self.t_opt_d = torch.optim.Adam(self.t_D.parameters(), lr=2e-4, betas=(0.5, 0.999))
            self.t_params = [*self.t_G.parameters(), *self.t_D.parameters()]
            self.t_real = torch.tensor(self.real.numpy(), device=device)

    def tinygen_step(self, z=None):
        return dcgan.train_step(self.G, self.D, self.opt_g, self.opt_d, self.real, z=z)

    def torch_step(self, z=None):
        if z is None:
            z = torch.randn(self.t_real.shape[0], NZ, dtype=self.t_real.dtype, device=self.t_real.device)
        return gan_twins.torch_train_step(self.t_G, self.t_D, self.t_opt_g, self.t_opt_d, self.t_real, z)


def check_results(case, device="cpu"):
    """For :func:`harness.check`: one step of each library in float64 from the same weights and z,
    returning the losses and the parameters after the step (float64, since in float32 Adam's
    first step turns rounding noise in the tiniest gradients into steps of +-lr)."""
    setup = Setup(case, dtype=numpy.float64, device=device)
    z = tinygen.randn(setup.real.shape[0], NZ, dtype=tinygen.float64, device=device)

    named = [(f"G.{name}", p) for name, p in setup.G.named_parameters()]
    named += [(f"D.{name}", p) for name, p in setup.D.named_parameters()]

    def ours():
        losses = setup.tinygen_step(z)
        return [losses[k] for k in LOSSES] + [p.numpy() for _, p in named]

    def theirs():
        losses = setup.torch_step(torch.tensor(z.numpy(), device=device))
        return [losses[k] for k in LOSSES] + [t.detach().cpu().numpy() for t in setup.t_params]

    labels = [*LOSSES, *[f"{name} after the step" for name, _ in named]]
    return {"tinygen": ours, "torch": theirs}, labels


# ----------------------------------------------------------------------------- breakdown


def _function_classes():
    """Every Function subclass that tinygen has loaded."""
    found, todo = [], [Function]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


@contextlib.contextmanager
def op_timers(totals):
    """While active, add the time of each op's forward and backward to ``totals[(op, phase, shape)]``.

    ``shape`` is the op's output shape (for backward: the shape of the gradient it receives),
    which tells the layers apart. Only outermost calls are counted: the ops that a backward
    calls (conv2d's backward runs a transposed convolution) count in that backward's time.
    """
    depth = [0]

    def timed(cls, phase, fn):
        def wrapper(ctx, *args):
            if depth[0]:
                return fn(ctx, *args)
            depth[0] += 1
            start = time.perf_counter()
            try:
                result = fn(ctx, *args)
            finally:
                elapsed = time.perf_counter() - start
                depth[0] -= 1
            out = args[0] if phase == "backward" else (result[0] if isinstance(result, tuple) else result)
            totals[(cls.__name__, phase, tuple(getattr(out, "shape", ())))] += elapsed
            return result

        return staticmethod(wrapper)

    originals = []
    for cls in _function_classes():
        for phase in ("forward", "backward"):
            if phase in cls.__dict__:
                originals.append((cls, phase, cls.__dict__[phase]))
                setattr(cls, phase, timed(cls, phase, cls.__dict__[phase].__func__))
    try:
        yield
    finally:
        for cls, phase, original in originals:
            setattr(cls, phase, original)


def breakdown(setup, steps=5, top=16):
    """Lines: where a tinygen step spends its time (mean over ``steps`` steps), ops by cost."""
    totals = collections.defaultdict(float)
    adam = [0.0]
    for opt in (setup.opt_g, setup.opt_d):

        def timed_step(step=opt.step):
            start = time.perf_counter()
            step()
            adam[0] += time.perf_counter() - start

        opt.step = timed_step
    try:
        with op_timers(totals):
            start = time.perf_counter()
            for _ in range(steps):
                setup.tinygen_step()
            whole = (time.perf_counter() - start) / steps
    finally:
        del setup.opt_g.step, setup.opt_d.step
    per_step = {key: value / steps for key, value in totals.items()}
    rows = sorted(per_step.items(), key=lambda item: -item[1])
    ops_total = sum(per_step.values())
    lines = ["| op | phase | output shape | ms/step | share |", "|---|---|---|---:|---:|"]
    for (op, phase, shape), seconds in rows[:top]:
        lines.append(f"| {op} | {phase} | {shape} | {seconds * 1e3:.2f} | {seconds / whole:.0%} |")
    rest_ops = sum(seconds for _, seconds in rows[top:])
    lines.append(f"| {len(rows) - top} other op calls | | | {rest_ops * 1e3:.2f} | {rest_ops / whole:.0%} |")
    lines.append(f"| Adam (G and D) | | | {adam[0] / steps * 1e3:.2f} | {adam[0] / steps / whole:.0%} |")
    other = whole - ops_total - adam[0] / steps
    lines.append(f"| engine, Python, randn | | | {other * 1e3:.2f} | {other / whole:.0%} |")
    lines.append(f"| whole step (timers on) | | | {whole * 1e3:.2f} | 100% |")
    return lines


def torch_breakdown(setup, steps=5, top=12):
    """Lines: PyTorch's profiler's top ops (self CPU time) for the same step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            setup.torch_step()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    lines = ["| torch op | ms/step (self) | share |", "|---|---:|---:|"]
    for event in events[:top]:
        share = event.self_cpu_time_total / total
        lines.append(f"| {event.key} | {event.self_cpu_time_total / steps / 1e3:.2f} | {share:.0%} |")
    return lines


# ----------------------------------------------------------------------------- main


def main():
    parser = harness.argument_parser(__doc__, repeat=15)
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="which cases to run")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-op breakdown")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where both libraries run")
    args = parser.parse_args()
    sync = harness.device_sync(args.device)
    with harness.limit_threads(args.threads):
        harness.print_machine()
        print(
            f"device: {args.device}, threads: {args.threads}, float32, one train_step (D step + G step), "
            f"median of {args.repeat}\n"
        )
        rows, breakdowns = [], []
        for case in args.cases:
            setup = Setup(case, device=args.device)
            steps = {"tinygen": setup.tinygen_step}
            results, labels = None, None  # without torch, nothing to check tinygen against
            if torch is not None:
                results, labels = check_results(case, args.device)
                steps["torch"] = setup.torch_step
            row = harness.check_then_time(
                "bench_dcgan", case, results, steps, args.repeat, 1e-9, TARGET, labels, sync=sync
            )
            rows.append(row)
            if not args.no_breakdown and args.device == "cpu":  # the op timers do not synchronize a GPU
                breakdowns.append(
                    (case, breakdown(setup), torch_breakdown(setup) if torch is not None else [])
                )
        print(harness.describe_other_load("after the run"))
    print()
    harness.print_table(rows)
    for case, ours, theirs in breakdowns:
        print(f"\n{case}: where a tinygen step spends its time (mean of 5 steps)\n")
        print("\n".join(ours))
        if theirs:
            print(f"\n{case}: PyTorch's profiler, top ops by self CPU time (mean of 5 steps)\n")
            print("\n".join(theirs))


if __name__ == "__main__":
    main()
