"""Train a PixelRNN in tinygen and its twin in PyTorch with one protocol; score both with one evaluator.

The models are ``tinygen.models.pixelrnn``'s (``--arch row-lstm``, ``diagonal-bilstm`` or
``row-baseline``) and the PyTorch twins below: the same layers under the same names, so
both have the same ``state_dict`` keys (the masks are buffers that are not saved). The
protocol, on both sides:

- the training split (``--limit`` images), shuffled every epoch, batches of ``--batch-size``
  (16), the last partial batch dropped, every batch binarized afresh (pixel p/255 is 1 with
  probability p/255: dynamic binarization), for ``--epochs`` epochs or ``--steps`` steps;
- loss: ``-log p(x)`` per image (the BCE of the logits summed over the pixels), averaged
  over the batch; Adam, lr ``--lr`` (1e-3), betas (0.9, 0.999), eps 1e-8; each library's
  default initialisation (both PyTorch's), drawn from ``--seed``;
- ``--threads`` threads (1 by default) for NumPy's BLAS and for PyTorch.

Evaluation is the same code for both: the trained weights (torch's as float32 NumPy arrays)
are loaded into a fresh tinygen model and ``pixelrnn.evaluate`` computes the exact test NLL
on the test split binarized once (``vae.binarize(test.images, 0)``), first ``--eval-limit``
images, in nats per image and bits/dim.

    .venv/bin/python benchmarks/pixelrnn_twin.py --arch row-lstm --limit 640 --epochs 1 --eval-limit 100
    .venv/bin/python benchmarks/pixelrnn_twin.py --arch diagonal-bilstm --steps 3000 --which tinygen \\
        --out /tmp/a.json     # one side per process, each on its own core, then
    .venv/bin/python benchmarks/pixelrnn_twin.py --merge /tmp/a.json /tmp/b.json --out both.json

Without PyTorch the torch half is skipped with a message.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy

import tinygen
from tinygen.data import DataLoader, load_dataset
from tinygen.errors import DatasetNotFoundError
from tinygen.models import pixelrnn
from tinygen.models.pixelrnn.layers import skewed_pixels
from tinygen.optim import Adam

try:
    from benchmarks import harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import harness

torch = harness.torch

BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
SIDES = ("tinygen", "torch")

# ----------------------------------------------------------------------------- the PyTorch twins

if torch is not None:
    nn, functional = torch.nn, torch.nn.functional

    def cell(gates, c_prev):
        """The LSTM cell on gate pre-activations ``(N, 4h, ...)``, blocks i, f, g, o."""
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    class MaskedConv2d(nn.Conv2d):
        def __init__(self, in_channels, out_channels, kernel_size, mask_type):
            kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
            super().__init__(in_channels, out_channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
            mask = torch.from_numpy(pixelrnn.causal_mask(kernel, mask_type))
            self.register_buffer("mask", mask, persistent=False)

        def forward(self, x):
            return functional.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)

    class RowLSTMLayer(nn.Module):
        def __init__(self, channels, hidden):
            super().__init__()
            self.hidden = hidden
            self.input_to_state = MaskedConv2d(channels, 4 * hidden, (1, 3), "B")
            self.state_to_state = nn.Conv2d(hidden, 4 * hidden, (1, 3), padding=(0, 1))
            self.output = nn.Conv2d(hidden, channels, 1)

        def forward(self, x):
            gates = self.input_to_state(x)
            h = gates.new_zeros(x.shape[0], self.hidden, 1, x.shape[3])
            c, rows = h, []
            for r in range(x.shape[2]):
                h, c = cell(gates[:, :, r : r + 1] + self.state_to_state(h), c)
                rows.append(h)
            return x + self.output(torch.cat(rows, 2))

    def skew(x):
        n, channels, height, width = x.shape
        flat = functional.pad(x, (0, height)).reshape(n, channels, height * (width + height))
        return flat[:, :, : height * (width + height - 1)].reshape(n, channels, height, width + height - 1)

    def unskew(x):
        n, channels, height, skewed_width = x.shape
        width = skewed_width - height + 1
        flat = functional.pad(x.reshape(n, channels, height * skewed_width), (0, height))
        return flat.reshape(n, channels, height, width + height)[:, :, :, :width]

    def diagonal_lstm(gates, state_to_state):
        n, four_h, height, width = gates.shape
        inside = torch.from_numpy(skewed_pixels(height, width)).to(gates.dtype)
        h = gates.new_zeros(n, four_h // 4, height, 1)
        c, columns = h, []
        skewed = skew(gates)
        for k in range(skewed.shape[3]):
            h, c = cell(skewed[:, :, :, k : k + 1] + state_to_state(functional.pad(h, (0, 0, 1, 0))), c)
            keep = inside[:, k : k + 1]
            h, c = h * keep, c * keep
            columns.append(h)
        return unskew(torch.cat(columns, 3))

    class DiagonalBiLSTMLayer(nn.Module):
        def __init__(self, channels, hidden):
            super().__init__()
            self.hidden = hidden
            self.input_to_state = nn.Conv2d(channels, 8 * hidden, 1)
            self.state_to_state = nn.Conv2d(hidden, 4 * hidden, (2, 1))
            self.state_to_state_reverse = nn.Conv2d(hidden, 4 * hidden, (2, 1))
            self.output = nn.Conv2d(hidden, channels, 1)

        def forward(self, x):
            left_gates, right_gates = self.input_to_state(x).split(4 * self.hidden, 1)
            left = diagonal_lstm(left_gates, self.state_to_state)
            right = diagonal_lstm(right_gates.flip(3), self.state_to_state_reverse).flip(3)
            return x + self.output(left + functional.pad(right, (0, 0, 1, -1)))

    class PixelRNN(nn.Module):
        def __init__(self, arch, layers, hidden, output):
            super().__init__()
            channels = 2 * hidden
            layer = RowLSTMLayer if arch == "row-lstm" else DiagonalBiLSTMLayer
            self.output = output
            self.conv_in = MaskedConv2d(1, channels, 7, "A")
            self.layers = nn.ModuleList([layer(channels, hidden) for _ in range(layers)])
            self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                      nn.Conv2d(channels, pixelrnn.OUTPUTS[output], 1))

        def forward(self, x):
            features = self.conv_in(x)
            for layer in self.layers:
                features = layer(features)
            return self.head(features)

    class RowBaseline(nn.Module):
        def __init__(self, width, layers, hidden, output):
            super().__init__()
            self.output = output
            self.lstm = nn.LSTM(width, hidden, layers, batch_first=True)
            self.out = nn.Linear(hidden, width * pixelrnn.OUTPUTS[output])

        def forward(self, x):
            n, _, height, width = x.shape
            states, _ = self.lstm(functional.pad(x, (0, 0, 1, -1))[:, 0])
            return self.out(states).reshape(n, height, width, -1).permute(0, 3, 1, 2)


def torch_model(arch, image_shape, layers, hidden, output="bernoulli"):
    """The PyTorch twin of ``pixelrnn.make_model(arch, image_shape, layers, hidden, output)``."""
    if arch == "row-baseline":
        return RowBaseline(image_shape[2], layers, hidden, output)
    return PixelRNN(arch, layers, hidden, output)


def torch_nll(model, x):
    """``pixelrnn.nll`` in torch: ``-log p(x)`` per image, ``(N,)`` nats."""
    logits = model(x)
    if model.output == "bernoulli":
        loss = functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        loss = functional.cross_entropy(logits, torch.round(x[:, 0] * 255).long(), reduction="none")
    return loss.reshape(len(x), -1).sum(1)


# ----------------------------------------------------------------------------- training


def train_tinygen(train, args, log):
    """Train tinygen's model; returns ``(state_dict as NumPy arrays, per-epoch records)``."""
    tinygen.manual_seed(args.seed)
    model = pixelrnn.make_model(args.arch, train.images.shape[1:], args.layers, args.hidden)
    opt = Adam(model.parameters(), lr=args.lr, betas=BETAS, eps=ADAM_EPS)
    loader = DataLoader(train, args.batch_size, shuffle=True, drop_last=True, binarize=True,
                        value_range=(0, 1))
    return _train(model, loader, args, log, "tinygen", lambda x: _tinygen_step(model, opt, x))


def _tinygen_step(model, opt, x):
    loss = pixelrnn.nll(model, x).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def train_torch(train, args, log):
    """Train the torch twin with the same protocol; returns ``(state_dict as NumPy float32, records)``."""
    torch.manual_seed(args.seed)
    model = torch_model(args.arch, train.images.shape[1:], args.layers, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=BETAS, eps=ADAM_EPS)
    images = torch.from_numpy(train.images)
    steps = len(images) // args.batch_size

    def batches():
        order = torch.randperm(len(images))
        for step in range(steps):
            grey = images[order[step * args.batch_size : (step + 1) * args.batch_size]].float() / 255
            yield (torch.rand(grey.shape) < grey).float(), None  # dynamic binarization

    def step(x):
        loss = torch_nll(model, x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    model.train()
    def state():
        return {k: v.detach().numpy().astype(numpy.float32) for k, v in model.state_dict().items()}

    return _train(model, _Batches(batches, steps), args, log, "torch", step, state)


class _Batches:
    """A re-iterable of ``steps`` batches per epoch, as a DataLoader is."""

    def __init__(self, make, steps):
        self.make, self.steps = make, steps

    def __iter__(self):
        return self.make()

    def __len__(self):
        return self.steps


def _train(model, loader, args, log, side, step, state=None):
    records, done = [], 0
    for epoch in range(1, args.epochs + 1):
        start, losses = time.perf_counter(), []
        for x, _ in loader:
            losses.append(step(x))
            done += 1
            if args.steps and done >= args.steps:
                break
        records.append({"epoch": epoch, "steps": len(losses), "train_loss": float(numpy.mean(losses)),
                        "seconds": time.perf_counter() - start})
        log(side, records[-1])
        if args.steps and done >= args.steps:
            break
    if state is None:
        return {k: v.numpy().copy() for k, v in model.state_dict().items()}, records
    return state(), records


def _log(side, record):
    print(f"{side:>7} epoch {record['epoch']}: {record['steps']} steps, train -log p(x) "
          f"{record['train_loss']:8.3f} nats/image, {record['seconds']:7.1f} s", flush=True)


def evaluate(state, args, images):
    """``pixelrnn.evaluate`` of a fresh tinygen model holding ``state``."""
    model = pixelrnn.make_model(args.arch, images.shape[1:], args.layers, args.hidden)
    model.load_state_dict({name: numpy.asarray(value, dtype=numpy.float32) for name, value in state.items()})
    start = time.perf_counter()
    figures = pixelrnn.evaluate(model, images, batch_size=100)
    return {**figures, "images": len(images), "seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------- main


def print_table(report):
    sides = [side for side in SIDES if side in report["results"]]
    print(f"\n{report['dataset']}, {report['protocol']}; test: {report['evaluation']}")
    print("| | " + " | ".join(sides) + " |")
    print("|---|" + "---:|" * len(sides))
    rows = [("steps", lambda r: f"{sum(e['steps'] for e in r['epochs'])}"),
            ("train time, s", lambda r: f"{sum(e['seconds'] for e in r['epochs']):.1f}"),
            ("last epoch train -log p(x)", lambda r: f"{r['epochs'][-1]['train_loss']:.3f}"),
            ("test NLL, nats per image", lambda r: f"{r['eval']['nll']:.3f}"),
            ("test bits/dim", lambda r: f"{r['eval']['bpd']:.4f}")]
    for name, cell_of in rows:
        print(f"| {name} | " + " | ".join(cell_of(report["results"][side]) for side in sides) + " |")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--arch", default="row-lstm", choices=pixelrnn.ARCHITECTURES)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0, help="stop after this many steps in all (0: epochs)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images (default all)")
    parser.add_argument("--eval-limit", type=int, default=1000, help="score the first N test images (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--which", default="both", choices=("tinygen", "torch", "both"))
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="one table from one-side result files")
    return parser.parse_args(argv)



def main(argv=None):
    args = parse_args(argv)
    if args.merge:
        reports = []
        for path in args.merge:
            with open(path) as f:
                reports.append(json.load(f))
        merged = {**reports[0], "results": {}}
        for path, report in zip(args.merge, reports, strict=True):
            if report["protocol"] != merged["protocol"] or report["evaluation"] != merged["evaluation"]:
                raise SystemExit(f"pixelrnn_twin --merge: {path} has another protocol than {args.merge[0]}")
            merged["results"].update(report["results"])
        print_table(merged)
        harness.write_report(merged, args.out)
        return
    sides = list(SIDES) if args.which == "both" else [args.which]
    if "torch" in sides and torch is None:
        print("pixelrnn_twin: torch is not installed; skipping the torch half")
        sides.remove("torch")
    try:
        train = load_dataset(args.dataset, "train")
        test = load_dataset(args.dataset, "test")
    except DatasetNotFoundError as error:
        message = " ".join(str(error).split())
        raise SystemExit(f"pixelrnn_twin: {args.dataset} not found ({message})") from None
    if args.limit:
        train = train[: args.limit]
    images = pixelrnn.eval_images(test.images, "bernoulli")  # the whole split binarized once, then the subset
    images = images[: args.eval_limit] if args.eval_limit else images
    budget = f"{args.steps} steps" if args.steps else f"{args.epochs} epoch(s)"
    report = {
        "benchmark": "pixelrnn_twin", "dataset": args.dataset,
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]) if argv is None else repr(argv),
        "protocol": (f"{args.arch}, {args.layers} layers, h {args.hidden}, bernoulli, {len(train)} training "
                     f"images, dynamic binarization, batch {args.batch_size}, Adam lr {args.lr}, {budget}, "
                     f"seed {args.seed}, {args.threads} thread(s)"),
        "evaluation": (f"exact NLL, first {len(images)} test images binarized once "
                       f"(binarize(test.images, {pixelrnn.TEST_SEED}))"),
        "machine": harness.describe_machine(), "results": {},
    }
    with harness.limit_threads(args.threads):
        for line in report["machine"]:
            print(line)
        print(report["protocol"], flush=True)
        for side in sides:
            state, epochs = {"tinygen": train_tinygen, "torch": train_torch}[side](train, args, _log)
            report["results"][side] = {"epochs": epochs, "eval": evaluate(state, args, images)}
            scores = report["results"][side]["eval"]
            print(f"{side}: test NLL {scores['nll']:.3f} nats ({scores['bpd']:.4f} bits/dim), "
                  f"{math.ceil(scores['seconds'])} s", flush=True)
            harness.write_report(report, args.out)
    print_table(report)
    harness.write_report(report, args.out)


if __name__ == "__main__":
    main()
