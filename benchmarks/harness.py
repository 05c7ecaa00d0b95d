"""The timing harness shared by every ``benchmarks/bench_<kernel>.py``.

A benchmark times tinygen, PyTorch (when installed) and a plain NumPy version of the
same computation in one process, and prints one table row per case::

    args = harness.argument_parser(__doc__).parse_args()         # --threads, --repeat
    with harness.limit_threads(args.threads):
        harness.print_machine()
        steps = {"tinygen": tinygen_step, "torch": torch_step, "numpy": numpy_step}
        t = harness.time_calls(steps, repeat=args.repeat)          # t["torch"].median: seconds per call
        rows = [harness.Row("small", t["tinygen"], t["torch"], t["numpy"], target=2.0)]
    harness.print_table(rows)

Most benchmarks check before they time, so that nothing wrong is ever timed, and
``check_then_time`` does both for one case::

    classes = {"tinygen": Ours, "torch": Theirs if harness.torch is not None else None, "numpy": Naive}
    results, steps = harness.from_classes(classes, *problem)      # each class: step(), results()
    row = harness.check_then_time("bench_x", "small", results, steps, args.repeat, tolerance=1e-4)

What it does for every benchmark:

- ``time_call``: warm-up runs, then ``repeat`` samples of ``number`` calls each; the
  median (and the minimum) of the per-call times. The garbage collector stays on, since
  a real training loop pays for it too. ``time_calls`` times several callables in turn.
- ``limit_threads``: one thread count for NumPy's BLAS (through threadpoolctl) and for
  PyTorch (``torch.set_num_threads``), so a ratio compares equal hardware.
- ``check``: tinygen's results against each other library's (``relative_error``), naming
  the worst; the benchmark stops there when they disagree.
- ``print_machine``: CPU, cores, the BLAS NumPy calls and its settings, library versions
  and the tinygen commit: the lines to paste into ``benchmarks/RESULTS.md`` with the numbers.
  A set ``OPENBLAS_CORETYPE`` heads them: it forces an older kernel and slows NumPy's products.
- Other processes: each timing records how many cores other processes kept busy while
  it ran (from /proc/stat), and the table warns about every number taken on a busy machine.

PyTorch is optional: without it the torch column shows "-".
"""

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import platform
import statistics
import subprocess
import time

import numpy
import threadpoolctl

import tinygen

try:  # PyTorch is optional: the benchmarks run without it and show "-" in its column.
    import torch
except ImportError:
    torch = None

# Environment variables that change what NumPy's OpenBLAS does; the machine report shows them.
OPENBLAS_TUNING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Other processes keeping more cores than this busy make a timing untrustworthy (see Timing.other_load).
BUSY = 0.2


# ----------------------------------------------------------------------------- command line


def argument_parser(description, repeat=30):
    """An ``argparse`` parser with the options every benchmark takes: ``--threads``, ``--repeat``."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="threads for NumPy's BLAS and for PyTorch (default 2, as on the 2-core CI machines)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=repeat,
        help=f"timed samples per case; the median is reported (default {repeat})",
    )
    return parser


# ----------------------------------------------------------------------------- threads


@contextlib.contextmanager
def limit_threads(threads):
    """Run the block with ``threads`` threads in NumPy's BLAS and in PyTorch."""
    if threads < 1:
        raise ValueError(f"limit_threads: threads must be >= 1, got {threads}")
    torch_before = torch.get_num_threads() if torch is not None else None
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(torch_before)


# ----------------------------------------------------------------------------- timing


@dataclasses.dataclass
class CpuTicks:
    """``busy`` of ``total`` clock ticks, summed over all cores (SC_CLK_TCK, usually 100, per second)."""

    busy: int
    total: int

    @property
    def cores(self):
        """How many cores were busy on average."""
        return (os.cpu_count() or 1) * self.busy / max(self.total, 1)

    def __add__(self, other):
        return CpuTicks(self.busy + other.busy, self.total + other.total)


def _load_counters():
    """CPU time counters, to measure what other processes use; None where /proc/stat is missing.

    Returns (busy ticks of all CPUs, all ticks of all CPUs, CPU seconds of this process).
    """
    try:
        with open("/proc/stat") as f:
            # the first line sums all CPUs: user nice system idle iowait irq softirq steal (guest is in user)
            fields = [int(value) for value in f.readline().split()[1:9]]
    except OSError:
        return None
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields), time.process_time()


def other_processes(before, after):
    """The :class:`CpuTicks` of processes other than ours between two ``_load_counters()`` readings.

    Another busy process on a 2-core machine makes timings slow and noisy (multi-threaded
    BLAS worst of all), so benchmarks report this next to their numbers.
    """
    if before is None or after is None:
        return None
    ours = round((after[2] - before[2]) * os.sysconf("SC_CLK_TCK"))
    busy = after[0] - before[0]
    return CpuTicks(busy=max(busy - ours, 0), total=after[1] - before[1])


@dataclasses.dataclass
class Timing:
    """Timed samples, each in seconds per call, and how many cores other processes kept busy meanwhile."""

    samples: list
    other: CpuTicks | None = None  # CPU time of other processes meanwhile; None: unknown

    @property
    def other_load(self):
        """How many cores other processes kept busy on average while this was timed (None: unknown)."""
        return None if self.other is None else self.other.cores

    @property
    def median(self):
        return statistics.median(self.samples)

    @property
    def min(self):
        return min(self.samples)

    def __add__(self, other):
        """Both sets of samples together (and the CPU time of other processes during both)."""
        unknown = self.other is None or other.other is None
        return Timing(self.samples + other.samples, None if unknown else self.other + other.other)


def device_sync(device):
    """The ``sync`` for :func:`time_call` on ``device``: None on the CPU. On a GPU it first checks
    the device (a clear error without CuPy or a GPU) and turns torch's TF32 off, so both
    libraries compute in float32 proper, then returns a synchronize of both."""
    if tinygen.backend.device(device).type == "cpu":
        return None
    if torch is not None:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False

    def sync():
        tinygen.backend.synchronize(device)
        if torch is not None:
            torch.cuda.synchronize()

    return sync


def time_call(fn, repeat=30, warmup=3, min_sample_time=0.01, sync=None, pause=0.25):
    """Time the zero-argument callable ``fn``; returns a :class:`Timing` in seconds per call.

    ``fn`` runs ``warmup`` times untimed, then ``repeat`` samples are taken. Each sample
    runs ``fn`` ``number`` times in a row, with ``number`` picked so that a sample lasts at
    least ``min_sample_time`` seconds (fast calls are too short to time one by one).
    ``sync``, when given, is called before each clock read: pass the GPU's synchronize
    so that queued kernels are counted. The result also says how busy other processes
    kept the CPU meanwhile (``Timing.other_load``).

    First it sleeps ``pause`` seconds. Thread pools keep spinning for a while after their
    last job (OpenBLAS's pthreads, PyTorch's OpenMP threads: 20 to 100 ms measured here); on
    a 2-core machine a pool still spinning from the code timed before takes a core from ``fn``.
    """
    if sync is None:

        def sync():
            pass

    time.sleep(pause)
    for _ in range(warmup):
        fn()
    sync()
    number = _calls_per_sample(fn, min_sample_time, sync)
    gc.collect()  # start clean, so garbage left by earlier runs is not collected in our samples
    samples = []
    counters_before = _load_counters()
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        samples.append((time.perf_counter() - start) / number)
    return Timing(samples, other_processes(counters_before, _load_counters()))


def time_calls(fns, repeat=30, rounds=5, **options):
    """Time each callable of ``fns`` (a dict of names and callables); returns a dict of Timings.

    The ``repeat`` samples of each callable are taken in ``rounds`` blocks, the callables
    taking turns: block 1 of each, then block 2 of each, and so on. A slow spell of a shared
    machine (on the 2-core VM, 2-thread GEMM sometimes ran at 1-thread speed for a while)
    then falls on all of them alike instead of on one. Blocks, not single samples, take
    turns: switching pools at every sample made PyTorch and NumPy each run twice as slow
    on 2 cores, one pool spinning while the other worked. ``options`` go to :func:`time_call`.
    """
    block_sizes = [repeat // rounds + (1 if i < repeat % rounds else 0) for i in range(rounds)]
    timings = {}
    for size in block_sizes:
        if size == 0:
            continue
        for name, fn in fns.items():
            block = time_call(fn, repeat=size, **options)
            timings[name] = timings[name] + block if name in timings else block
    return timings


def _calls_per_sample(fn, min_sample_time, sync):
    """The smallest power of two of calls to ``fn`` that takes ``min_sample_time`` seconds."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        if time.perf_counter() - start >= min_sample_time:
            return number
        number *= 2


# ----------------------------------------------------------------------------- check, then time


def relative_error(actual, expected):
    """Largest absolute difference, relative to the largest magnitude in ``expected`` (arrays or numbers)."""
    actual, expected = numpy.asarray(actual), numpy.asarray(expected)
    return float(numpy.abs(actual - expected).max() / max(numpy.abs(expected).max(), 1e-30))


def check(bench, case, results, tolerance, labels=None):
    """tinygen's results against every other library's: ``"numpy 1.2e-07, torch 3.4e-07"``.

    ``results`` maps library names to zero-argument callables, each returning the results
    of one step (a list of arrays or numbers, in the same order for every library; None
    for a library left out, such as torch when it is not installed); ``"tinygen"`` is the
    one checked. The worst :func:`relative_error` of each library is reported; above
    ``tolerance`` the benchmark stops, naming ``bench``, ``case``, the library and the
    result (from ``labels``, else its index).
    """
    ours = results["tinygen"]()
    agreement = []
    for name, run in results.items():
        if name == "tinygen" or run is None:
            continue
        errors = [relative_error(a, e) for a, e in zip(ours, run(), strict=True)]
        worst = max(range(len(errors)), key=errors.__getitem__)
        if errors[worst] > tolerance:
            label = labels[worst] if labels else f"result {worst}"
            raise SystemExit(
                f"{bench}: {case}: tinygen and {name} disagree on {label}: relative error "
                f"{errors[worst]:.2e} > {tolerance:.0e}; not timing"
            )
        agreement.append(f"{name} {errors[worst]:.1e}")
    return ", ".join(agreement)


def first_step(make, *args):
    """A callable for :func:`check`: make ``make(*args)``, run its ``step()``, return its ``results()``."""

    def run():
        bench = make(*args)
        bench.step()
        return bench.results()

    return run


def from_classes(classes, *args):
    """``(results, steps)`` for :func:`check_then_time`, from one class per library (None: left out).

    Each class, made with ``args``, has ``step()`` (what is timed) and ``results()`` (what
    :func:`check` compares after one step); the check and the timing use separate instances.
    """
    present = {name: cls for name, cls in classes.items() if cls is not None}
    results = {name: first_step(cls, *args) for name, cls in present.items()}
    steps = {name: cls(*args).step for name, cls in present.items()}
    return results, steps


def check_then_time(bench, case, results, steps, repeat, tolerance, target=None, labels=None, **options):
    """:func:`check` (unless ``results`` is None), print the agreement, then time the ``steps`` in
    turns: the case's :class:`Row`.

    ``steps`` maps library names to the zero-argument callables to time (None: left out);
    the row takes "tinygen", "torch" and "numpy" from them. ``options`` go to
    :func:`time_calls` (``sync``, ``rounds``, ...). The timings of any other steps (a
    lower bound, say) are the row's ``extra``.
    """
    if results is not None:  # None: nothing to check tinygen against
        agreement = check(bench, case, results, tolerance, labels)
        print(f"{case}: tinygen matches (largest relative error of its results): {agreement}")
    timings = time_calls({name: step for name, step in steps.items() if step is not None}, repeat, **options)
    ours, theirs, naive = timings.pop("tinygen"), timings.pop("torch", None), timings.pop("numpy", None)
    return Row(case, ours, theirs, naive, target, extra=timings)


# ----------------------------------------------------------------------------- table


@dataclasses.dataclass
class Row:
    """One case of a benchmark. Timings may be None ("-" in the table); ``target`` is the
    largest acceptable tinygen/torch ratio, or None when there is no target."""

    case: str
    tinygen: Timing
    torch: Timing | None = None
    numpy: Timing | None = None
    target: float | None = None
    extra: dict = dataclasses.field(default_factory=dict)  # other timings of the case, not in the table

    @property
    def ratio(self):
        """tinygen time / torch time, or None without torch."""
        if self.torch is None:
            return None
        return self.tinygen.median / self.torch.median

    @property
    def result(self):
        """PASS or FAIL against the target, or "-" when either is missing."""
        if self.ratio is None or self.target is None:
            return "-"
        return "PASS" if self.ratio <= self.target else "FAIL"


def _ms(timing):
    return "-" if timing is None else f"{timing.median * 1e3:.3f}"


def format_table(rows):
    """The rows as a Markdown table (median milliseconds per call), ready for RESULTS.md."""
    header = ["case", "tinygen ms", "torch ms", "numpy ms", "tinygen/torch", "target", "result"]
    lines = []
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        target = "-" if row.target is None else f"<= {row.target:.1f}x"
        lines.append([row.case, _ms(row.tinygen), _ms(row.torch), _ms(row.numpy), ratio, target, row.result])
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]

    def join(cells):
        # the case name is text, left-aligned; the numbers are right-aligned
        padded = [cells[0].ljust(widths[0])]
        padded += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|"
    table = [join(header), rule, *[join(cells) for cells in lines]]
    warnings = []
    for row in rows:
        for name in ("tinygen", "torch", "numpy"):
            timing = getattr(row, name)
            if timing is not None and timing.other_load is not None and timing.other_load > BUSY:
                warnings.append(
                    f"warning: other processes kept {timing.other_load:.2f} cores busy while "
                    f"{row.case}/{name} was timed; that number is not trustworthy"
                )
    if warnings:
        table += ["", *warnings]
    return "\n".join(table)


def print_table(rows):
    print(format_table(rows))


# ----------------------------------------------------------------------------- machine


def cpu_model():
    """The CPU's name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_blas():
    """threadpoolctl's entries for the BLAS that NumPy uses.

    NumPy wheels ship their OpenBLAS in ``site-packages/numpy.libs``; when no BLAS sits in a
    folder named ``numpy*`` (NumPy built against a system BLAS), every BLAS loaded is listed.
    """
    blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    own = [info for info in blas if os.path.basename(os.path.dirname(info["filepath"])).startswith("numpy")]
    return own or blas


def tinygen_source():
    """Which tinygen was timed: its folder and git commit, and whether it has uncommitted changes."""
    package_dir = os.path.dirname(os.path.abspath(tinygen.__file__))

    def git(*args):
        done = subprocess.run(["git", "-C", package_dir, *args], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return f"tinygen {tinygen.__version__} from {package_dir} (not a git checkout)"
    state = "with uncommitted changes in tinygen/" if changed else "clean"
    return f"tinygen {tinygen.__version__} from {package_dir}, git commit {commit} ({state})"


def git_commit():
    """``(full commit, whether the checkout has uncommitted changes)``, or ``(None, None)``."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(dirty)


def machine_record(threads):
    """The machine, the libraries and the commit, as a dict for a results file."""
    commit, dirty = git_commit()
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "threads": threads,
        "thread_variables": {name: os.environ.get(name) for name in THREAD_VARS},
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "blas": [f"{info['internal_api']} {info.get('version')}" for info in numpy_blas()],
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                     "torch": torch.__version__ if torch is not None else None,
                     "tinygen": tinygen.__version__},
        "tinygen": tinygen_source(),
        "git_commit": commit,
        "uncommitted_changes": dirty,
    }


def write_report(report, path):
    """``report`` as JSON at ``path`` (written to a temporary file, then renamed over it); None: nothing."""
    if not path:
        return
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    os.replace(temporary, path)
    print(f"wrote {path}")


def describe_machine():
    """Lines describing the machine and libraries a benchmark ran on."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    lines = []
    if "OPENBLAS_CORETYPE" in os.environ:
        lines.append(
            f"warning: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set: it forces an older "
            "OpenBLAS kernel and slows NumPy's products (run with env -u OPENBLAS_CORETYPE)"
        )
    lines += [
        f"CPU: {cpu_model()}, {cores} logical cores ({usable} usable by this process)",
        f"Python {platform.python_version()}, NumPy {numpy.__version__}, "
        f"torch {torch.__version__ if torch is not None else 'not installed'}",
        tinygen_source(),
    ]
    for info in numpy_blas():
        details = [f"{info['internal_api']} {info.get('version') or '(version unknown)'}"]
        if info.get("architecture"):
            details.append(f"coretype {info['architecture']}")
        if info.get("threading_layer"):
            details.append(f"threading {info['threading_layer']}")
        details.append(f"{info['num_threads']} threads")
        lines.append(f"NumPy BLAS: {', '.join(details)} ({os.path.basename(info['filepath'])})")
    if torch is not None:
        lines.append(f"torch threads: {torch.get_num_threads()}")
    for name in OPENBLAS_TUNING_VARS:
        value = os.environ.get(name)
        if value is None:
            lines.append(f"{name}: not set")
        else:
            lines.append(
                f"{name}={value} (set; OpenBLAS skips its own probe, unsetting it can change GEMM speed)"
            )
    thread_vars = [f"{name}={os.environ[name]}" for name in THREAD_VARS if name in os.environ]
    lines.append("thread variables: " + (", ".join(thread_vars) if thread_vars else "none set"))
    lines.append(describe_other_load("before the run"))
    return lines


def describe_other_load(when):
    """A line saying how many cores other processes keep busy now (measured over half a second)."""
    before = _load_counters()
    time.sleep(0.5)
    other = other_processes(before, _load_counters())
    if other is None:
        return f"other load {when}: unknown (no /proc/stat)"
    warning = (
        " -- BUSY: timings will be slow and noisy, rerun on a quiet machine" if other.cores > BUSY else ""
    )
    return f"other load {when}: {other.cores:.2f} of {os.cpu_count()} cores busy{warning}"


def print_machine():
    for line in describe_machine():
        print(line)
