"""Benchmark a PixelRNN training step against its PyTorch twin, and the cached sampler against the naive one.

The models are ``tinygen.models.pixelrnn``'s, 2 layers, ``h = 16``, Bernoulli output, float32,
and their twins from ``benchmarks/pixelrnn_twin.py`` holding the same weights:

- ``<arch> train step b16``: ``-log p(x)`` per image (``pixelrnn.nll``) averaged over a batch
  of 16 binarized 28x28 Fashion-MNIST images (the first 16 of the training split,
  ``vae.binarize(images, 0)``; random 0/1 images when the data set is missing), backward,
  ``Adam(lr=1e-3)``; the torch column the same in PyTorch. Target: at most 1.3x PyTorch at
  1 thread. No numpy column: a hand-written PixelRNN backward is beyond a benchmark.
- the sampler's images per second, ``pixelrnn.sample`` on ``--sample-images`` images: cached
  (each activation once; timed whole) and naive (the whole network again for every pixel:
  one forward pass of the batch per pixel, so it is timed as D = 784 times the median
  forward pass; ``--naive-whole`` runs it for real instead, minutes per architecture).

Before timing, one training step of each in float64 from the same weights is compared (the
loss, and every parameter after the Adam step).

    .venv/bin/python benchmarks/bench_pixelrnn.py --threads 1
    .venv/bin/python benchmarks/bench_pixelrnn.py --threads 2 --archs row-lstm
"""

import time

import numpy

import tinygen
from tinygen.data import load_dataset
from tinygen.errors import DatasetNotFoundError
from tinygen.models import pixelrnn
from tinygen.models.vae import binarize
from tinygen.optim import Adam

try:
    from benchmarks import harness, pixelrnn_twin
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import harness
    import pixelrnn_twin

torch = harness.torch

BATCH, LAYERS, HIDDEN, SHAPE, LR = 16, 2, 16, (1, 28, 28), 1e-3
TARGET = 1.3  # tinygen / torch for a training step, at 1 thread


def batch_images():
    """``(images, where)``: 16 binarized 28x28 images, float32, and where they came from."""
    try:
        grey = load_dataset("fashion-mnist", "train").images[:BATCH]
        return binarize(grey, 0), "the first 16 Fashion-MNIST training images, binarize(images, 0)"
    except DatasetNotFoundError:
        rng = numpy.random.default_rng(0)
        images = (rng.random((BATCH, *SHAPE)) < 0.3).astype(numpy.float32)
        return images, "random 0/1 images (no Fashion-MNIST)"


class Setup:
    """One architecture in tinygen and in torch, the same weights, one batch, one Adam each."""

    def __init__(self, arch, x, dtype=numpy.float32, seed=0):
        tinygen.manual_seed(seed)
        self.model = pixelrnn.make_model(arch, SHAPE, LAYERS, HIDDEN).to(dtype)
        self.opt = Adam(self.model.parameters(), lr=LR)
        self.x = tinygen.tensor(x.astype(dtype))
        if torch is not None:
            self.t_model = pixelrnn_twin.torch_model(arch, SHAPE, LAYERS, HIDDEN)
            self.t_model.to(torch.from_numpy(numpy.zeros(0, dtype)).dtype)
            state = self.model.state_dict()
            self.t_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in state.items()})
            self.t_opt = torch.optim.Adam(self.t_model.parameters(), lr=LR)
            self.t_x = torch.tensor(x.astype(dtype))

    def tinygen_step(self):
        loss = pixelrnn.nll(self.model, self.x).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()

    def torch_step(self):
        loss = pixelrnn_twin.torch_nll(self.t_model, self.t_x).mean()
        self.t_opt.zero_grad()
        loss.backward()
        self.t_opt.step()
        return loss.item()


def check(arch, x):
    """One float64 step on each side from the same weights: the largest relative differences."""
    if torch is None:
        return "torch not installed"
    setup = Setup(arch, x, numpy.float64)
    loss, t_loss = setup.tinygen_step(), setup.torch_step()
    ours = {k: v.numpy() for k, v in setup.model.state_dict().items()}
    theirs = {k: v.detach().numpy() for k, v in setup.t_model.state_dict().items()}
    worst = max(float(numpy.abs(ours[k] - theirs[k]).max() / numpy.abs(theirs[k]).max()) for k in ours)
    loss_error = abs(loss - t_loss) / abs(t_loss)
    if max(worst, loss_error) > 1e-9:
        raise SystemExit(f"bench_pixelrnn: {arch}: tinygen and torch disagree (float64): loss "
                         f"{loss_error:.1e}, parameters after the step {worst:.1e}")
    return f"loss {loss_error:.1e}, parameters after the step {worst:.1e}"


def sampler_rates(arch, images, naive_whole):
    """``(cached, naive)`` images per second of ``pixelrnn.sample`` on ``images`` 28x28 images."""
    tinygen.manual_seed(0)
    model = pixelrnn.make_model(arch, SHAPE, LAYERS, HIDDEN)
    uniform = numpy.random.default_rng(0).random((images, *SHAPE[1:]))
    start = time.perf_counter()
    pixelrnn.sample(model, uniform)
    cached = images / (time.perf_counter() - start)
    if naive_whole:
        start = time.perf_counter()
        pixelrnn.sample(model, uniform, cached=False)
        return cached, images / (time.perf_counter() - start)
    x = tinygen.zeros(images, *SHAPE)
    with tinygen.no_grad():
        forward = harness.time_call(lambda: model(x), repeat=5, warmup=1).median
    return cached, images / (forward * SHAPE[1] * SHAPE[2])


def main():
    parser = harness.argument_parser(__doc__, repeat=10)
    parser.add_argument("--archs", default=",".join(pixelrnn.ARCHITECTURES),
                        help="comma-separated architectures (default all three)")
    parser.add_argument("--sample-images", type=int, default=16, help="images per sampler call (default 16)")
    parser.add_argument("--naive-whole", action="store_true", help="run the naive sampler whole (slow)")
    args = parser.parse_args()
    archs = args.archs.split(",")
    x, where = batch_images()
    with harness.limit_threads(args.threads):
        tinygen.set_num_threads(args.threads)
        harness.print_machine()
        print(f"threads: {args.threads}, float32, {LAYERS} layers, h {HIDDEN}, Bernoulli; a training step on "
              f"{where} (median of {args.repeat})\n")
        rows, rates = [], {}
        for arch in archs:
            print(f"{arch}: agreement with torch, float64 (largest relative difference): {check(arch, x)}",
                  flush=True)
            setup = Setup(arch, x)
            steps = {"tinygen": setup.tinygen_step}
            if torch is not None:
                steps["torch"] = setup.torch_step
            timing = harness.time_calls(steps, repeat=args.repeat, rounds=min(5, args.repeat), warmup=1)
            target = TARGET if args.threads == 1 else None
            case = f"{arch} train step b{BATCH}"
            rows.append(harness.Row(case, timing["tinygen"], timing.get("torch"), None, target))
            rates[arch] = sampler_rates(arch, args.sample_images, args.naive_whole)
        print(harness.describe_other_load("after the run"))
    print()
    harness.print_table(rows)
    how = "run whole" if args.naive_whole else "784 x the forward pass"
    print(f"\nsampler, images per second on {args.sample_images} 28x28 images (naive: {how}):")
    for arch, (cached, naive) in rates.items():
        print(f"  {arch:16s} cached {cached:8.2f}   naive {naive:8.4f}   speed-up {cached / naive:6.1f}x")
    if args.threads != 1:
        print(f"(the {TARGET}x target of the train step is for 1 thread)")


if __name__ == "__main__":
    main()
