"""Train the MLP VAE in tinygen and in PyTorch with one protocol; score both with one evaluator.

The model is ``tinygen.models.vae.VAE`` (arch "mlp", 784-400-20, ReLU, Bernoulli decoder)
and its PyTorch twin below, the same ``nn.Sequential`` layout, so both have the state_dict
keys ``encoder.1.*, mu.*, logvar.*, decoder.0.*, decoder.2.*``. The protocol, on both sides:

- the training split (``--limit`` images), shuffled every epoch, batches of 128, the last
  partial batch dropped, every batch binarized afresh (pixel p/255 is 1 with probability
  p/255: dynamic binarization);
- loss: the negative ELBO per image (BCE of the logits summed over the pixels, plus the
  closed-form KL), averaged over the batch; one reparameterized draw per image;
- Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-8; each library's default initialisation
  (both are PyTorch's Linear init), drawn from ``--seed``;
- ``--epochs`` epochs, ``--threads`` threads (1 by default) for NumPy's BLAS and PyTorch.

Evaluation is the same code for both: the trained weights (torch's converted to float32
NumPy arrays) are loaded into a fresh tinygen ``VAE`` and ``tinygen.models.vae.evaluate``
scores the test split binarized once (``binarize(test.images, 0)``), with tinygen's
generator seeded from ``--seed`` before each call, so both models see the same draws.
It reports ``-ELBO`` and ``-L_k`` (Burda et al.'s bound with ``--k`` draws) in nats per
image and bits/dim, on the first ``--eval-limit`` test images, and (``--full-k``, 1 by
default, 0 to skip) the same with ``k = --full-k`` over the whole test split.

    .venv/bin/python benchmarks/vae_twin.py --epochs 1 --which both
    .venv/bin/python benchmarks/vae_twin.py --epochs 40 --eval-limit 1000 --k 5000 \\
        --out benchmarks/results/vae_twin_fashion_mnist.json
    .venv/bin/python benchmarks/vae_twin.py --which tinygen --out /tmp/a.json   # one side per process,
    .venv/bin/python benchmarks/vae_twin.py --which torch --out /tmp/b.json     # each on its own core,
    .venv/bin/python benchmarks/vae_twin.py --merge /tmp/a.json /tmp/b.json --out both.json  # one table

Without PyTorch the torch half is skipped with a message. ``--dataset mnist`` uses MNIST
where ``load_dataset`` finds its files (``--download`` lets it fetch them).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy

import tinygen
from tinygen.data import DataLoader, load_dataset
from tinygen.errors import DatasetNotFoundError
from tinygen.models import vae as vae_module
from tinygen.optim import Adam

try:
    from benchmarks import harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import harness

torch = harness.torch

LATENT, HIDDEN = 20, 400
BATCH, LR, BETAS, ADAM_EPS = 128, 1e-3, (0.9, 0.999), 1e-8
TEST_SEED = vae_module.TEST_SEED  # the test split's one binarization
SIDES = ("tinygen", "torch")


# ----------------------------------------------------------------------------- the torch twin


def torch_vae(channels, image_size):
    """PyTorch's copy of ``VAE("mlp", 20, (400,))``: the same modules under the same names."""
    nn = torch.nn
    pixels = channels * image_size * image_size

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, HIDDEN), nn.ReLU())
            self.mu = nn.Linear(HIDDEN, LATENT)
            self.logvar = nn.Linear(HIDDEN, LATENT)
            self.decoder = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, pixels),
                                         nn.Unflatten(1, (channels, image_size, image_size)))

        def forward(self, x):
            h = self.encoder(x)
            mu, logvar = self.mu(h), self.logvar(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            return self.decoder(z), mu, logvar

    return TorchVAE()


def torch_negative_elbo(model, x):
    """``vae.negative_elbo`` in torch: ``(loss, recon, kl)``, batch means in nats per image."""
    logits, mu, logvar = model(x)
    batch = x.shape[0]
    recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
    kl = -0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum() / batch
    return recon + kl, recon, kl


# ----------------------------------------------------------------------------- training


def train_tinygen(train, epochs, seed, log):
    """Train tinygen's VAE; returns ``(state_dict as NumPy arrays, per-epoch records)``."""
    tinygen.manual_seed(seed)
    channels, image_size = train.images.shape[1], train.images.shape[2]
    model = vae_module.VAE("mlp", LATENT, (HIDDEN,), "relu", channels=channels, image_size=image_size)
    opt = Adam(model.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS)
    loader = DataLoader(train, BATCH, shuffle=True, drop_last=True, binarize=True, value_range=(0, 1))
    model.train()
    epochs_done = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        totals = numpy.zeros(3)
        for x, _ in loader:
            loss, recon, kl = vae_module.negative_elbo(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals += (loss.item(), recon.item(), kl.item())
        epochs_done.append(_epoch_record(epoch, totals / len(loader), time.perf_counter() - start))
        log("tinygen", epochs_done[-1], epochs)
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}, epochs_done


def train_torch(train, epochs, seed, log):
    """Train the torch twin with the same protocol; returns ``(state_dict as NumPy float32, records)``."""
    torch.manual_seed(seed)
    channels, image_size = train.images.shape[1], train.images.shape[2]
    model = torch_vae(channels, image_size)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS)
    images = torch.from_numpy(train.images)  # uint8, as tinygen's DataLoader keeps them
    n = len(images)
    steps = n // BATCH  # drop_last
    model.train()
    epochs_done = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        totals = numpy.zeros(3)
        order = torch.randperm(n)
        for step in range(steps):
            p = images[order[step * BATCH : (step + 1) * BATCH]].float() / 255
            x = (torch.rand(p.shape) < p).float()  # dynamic binarization
            loss, recon, kl = torch_negative_elbo(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals += (loss.item(), recon.item(), kl.item())
        epochs_done.append(_epoch_record(epoch, totals / steps, time.perf_counter() - start))
        log("torch", epochs_done[-1], epochs)
    state = {k: v.detach().cpu().numpy().astype(numpy.float32) for k, v in model.state_dict().items()}
    return state, epochs_done


def _epoch_record(epoch, means, seconds):
    loss, recon, kl = (float(v) for v in means)
    return {"epoch": epoch, "train_loss": loss, "train_recon": recon, "train_kl": kl, "seconds": seconds}


def _log_epoch(side, record, epochs):
    print(f"{side:>7} epoch {record['epoch']:>3}/{epochs}: train -ELBO {record['train_loss']:8.3f} "
          f"(recon {record['train_recon']:8.3f}, kl {record['train_kl']:6.3f}) nats/image, "
          f"{record['seconds']:6.2f} s", flush=True)


# ----------------------------------------------------------------------------- evaluation


def evaluate(state, images, k, seed, progress):
    """``vae.evaluate`` of a fresh tinygen VAE holding ``state``, tinygen's generator seeded first."""
    channels, image_size = images.shape[1], images.shape[2]
    model = vae_module.VAE("mlp", LATENT, (HIDDEN,), "relu", channels=channels, image_size=image_size)
    model.load_state_dict({name: numpy.asarray(value, dtype=numpy.float32) for name, value in state.items()})
    tinygen.manual_seed(seed)
    start = time.perf_counter()
    result = vae_module.evaluate(model, images, k=k, batch_size=100, progress=progress)
    return {**result, "k": k, "images": len(images), "seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------- the report




def print_table(report):
    """The two sides next to each other, and tinygen/torch for the times."""
    sides = [s for s in SIDES if s in report["results"]]
    results = [report["results"][s] for s in sides]
    ev = report["evaluation"]

    def row(name, values, digits, ratio=False):
        cells = [name] + ["-" if v is None else f"{v:.{digits}f}" for v in values]
        if len(sides) == 2:
            a, b = values
            cells.append(f"{a / b:.2f}x" if ratio and a and b else "")
        return cells

    def metric(key, field):
        return [r.get(key, {}).get(field) for r in results]

    subset = f"first {ev['eval_images']} test images"
    rows = [row("epochs", [r["epochs"] for r in results], 0),
            row("s/epoch (median)", [r["seconds_per_epoch"] for r in results], 2, ratio=True),
            row("train time, s", [r["train_seconds"] for r in results], 1, ratio=True),
            row("last epoch train -ELBO", [r["train_loss"][-1] for r in results], 3),
            row(f"-ELBO, {subset}", metric("eval", "neg_elbo"), 3),
            row(f"-L_{ev['k']}, {subset}", metric("eval", "nll_iwae"), 3),
            row(f"bits/dim of -L_{ev['k']}", metric("eval", "bpd_iwae"), 4),
            row("eval seconds", metric("eval", "seconds"), 1)]
    if ev.get("full_k"):
        full = f"all {ev['test_images']} test images"
        rows += [row(f"-ELBO, {full}", metric("eval_full", "neg_elbo"), 3),
                 row(f"-L_{ev['full_k']}, {full}", metric("eval_full", "nll_iwae"), 3)]
    header = ["", *sides] + (["tinygen/torch"] if len(sides) == 2 else [])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def join(cells):
        padded = [cells[0].ljust(widths[0])]
        padded += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "| " + " | ".join(padded) + " |"

    print()
    print(f"{report['dataset']}, {report['protocol']['train_images']} training images, batch {BATCH}, "
          f"Adam lr {LR}, {report['machine']['threads']} thread(s); nats per image")
    print(join(header))
    print("|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|")
    for cells in rows:
        print(join(cells))
    for side, result in zip(sides, results, strict=True):
        load = result.get("other_load_cores")
        if load is not None and load > harness.BUSY:
            print(f"warning: other processes kept {load:.2f} cores busy while {side} trained; its time is "
                  "not trustworthy")


def merge(paths):
    """One report from reports of one side each (same protocol), for ``--merge``."""
    reports = []
    for path in paths:
        with open(path) as f:
            reports.append(json.load(f))
    merged = dict(reports[0])
    merged["results"] = {}
    merged["merged_from"] = [{"file": path, "command": report["command"]}
                             for path, report in zip(paths, reports, strict=True)]
    for path, report in zip(paths, reports, strict=True):
        for key in ("dataset", "protocol", "evaluation"):
            if report[key] != merged[key]:
                raise SystemExit(f"vae_twin --merge: {path} has another {key} than {paths[0]}")
        for side, result in report["results"].items():
            if side in merged["results"]:
                raise SystemExit(f"vae_twin --merge: two results for {side}")
            merged["results"][side] = result
    return merged


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist"))
    parser.add_argument("--download", action="store_true", help="let load_dataset download a missing set")
    parser.add_argument("--epochs", type=int, default=1, help="epochs on each side (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images (default all)")
    parser.add_argument("--eval-limit", type=int, default=None,
                        help="score the first N test images at k = --k (default all 10000)")
    parser.add_argument("--k", type=int, default=5000, help="importance samples of -L_k (default 5000)")
    parser.add_argument("--full-k", type=int, default=1,
                        help="also score all test images at this k (default 1: the ELBO; 0 skips)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the init, batches and eval draws")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    parser.add_argument("--which", default="both", choices=("tinygen", "torch", "both"))
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                        help="print (and with --out write) one table from one-side result files")
    parser.add_argument("--progress", action="store_true", help="progress bars during the evaluation")
    args = parser.parse_args(argv)
    for name in ("epochs", "k", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    for name in ("limit", "eval_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.full_k < 0:
        parser.error("--full-k must be >= 0")
    return args



def main(argv=None):
    args = parse_args(argv)
    if args.merge:
        report = merge(args.merge)
        print_table(report)
        harness.write_report(report, args.out)
        return
    sides = list(SIDES) if args.which == "both" else [args.which]
    if "torch" in sides and torch is None:
        print("vae_twin: torch is not installed; skipping the torch half (pip install torch to run it)")
        sides.remove("torch")
        if not sides:
            return
    try:
        train = load_dataset(args.dataset, "train", download=args.download)
        test = load_dataset(args.dataset, "test", download=args.download)
    except DatasetNotFoundError as error:
        message = " ".join(str(error).split())
        raise SystemExit(f"vae_twin: {args.dataset} not found, nothing run ({message})") from None
    if args.limit is not None:
        train = train[: args.limit]
    if len(train) < BATCH:
        raise SystemExit(f"vae_twin: {len(train)} training images make no batch of {BATCH} (drop_last)")
    test_binary = vae_module.binarize(test.images, TEST_SEED)  # the whole split once, then the subset
    subset = test_binary[: args.eval_limit] if args.eval_limit is not None else test_binary

    report = {
        "benchmark": "vae_twin",
        "dataset": args.dataset,
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]) if argv is None else repr(argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": None,
        "protocol": {
            "model": f"mlp {math.prod(train.images.shape[1:])}-{HIDDEN}-{LATENT}, ReLU, Bernoulli decoder",
            "train_images": len(train), "batch": BATCH, "drop_last": True, "shuffle": True,
            "binarization": "dynamic (every batch)",
            "optimizer": f"Adam lr {LR} betas {BETAS} eps {ADAM_EPS}",
            "loss": "negative ELBO, BCE summed over pixels + analytic KL, mean over the batch",
            "epochs": args.epochs, "seed": args.seed,
        },
        "evaluation": {
            "evaluator": "vae.evaluate(batch_size=100) of a tinygen VAE holding each side's weights",
            "test_images": len(test_binary), "test_binarization": f"binarize(test.images, {TEST_SEED})",
            "eval_images": len(subset),
            "subset": f"the first {len(subset)} of the {len(test_binary)} test images",
            "k": args.k, "full_k": args.full_k, "eval_seed": args.seed,
        },
        "results": {},
    }
    with harness.limit_threads(args.threads):
        tinygen.set_num_threads(args.threads)  # tinygen's kernels read OpenBLAS's count; torch's is set above
        report["machine"] = harness.machine_record(args.threads)
        for line in harness.describe_machine():
            print(line)
        print(f"{args.dataset}: {len(train)} training images, {args.epochs} epoch(s), seed {args.seed}, "
              f"{args.threads} thread(s); evaluation on {report['evaluation']['subset']} at k={args.k}"
              + (f", and all {len(test_binary)} at k={args.full_k}" if args.full_k else "") + "\n",
              flush=True)
        trainers = {"tinygen": train_tinygen, "torch": train_torch}
        for side in sides:
            before = harness._load_counters()
            start = time.perf_counter()
            state, epochs = trainers[side](train, args.epochs, args.seed, _log_epoch)
            wall_seconds = time.perf_counter() - start
            other = harness.other_processes(before, harness._load_counters())
            result = {
                "epochs": len(epochs),
                "train_loss": [e["train_loss"] for e in epochs],
                "train_recon": [e["train_recon"] for e in epochs],
                "train_kl": [e["train_kl"] for e in epochs],
                "epoch_seconds": [e["seconds"] for e in epochs],
                "seconds_per_epoch": statistics.median(e["seconds"] for e in epochs),
                "mean_seconds_per_epoch": statistics.fmean(e["seconds"] for e in epochs),
                "train_seconds": sum(e["seconds"] for e in epochs),
                "wall_seconds": wall_seconds,  # the epochs plus building the model, optimizer and loader
                "other_load_cores": None if other is None else other.cores,
            }
            print(f"{side}: evaluating on {len(subset)} test images at k={args.k}", flush=True)
            result["eval"] = evaluate(state, subset, args.k, args.seed, args.progress)
            scores = result["eval"]
            print(f"{side}: -ELBO {scores['neg_elbo']:.3f}, -L_{args.k} {scores['nll_iwae']:.3f} nats "
                  f"({scores['seconds']:.1f} s)", flush=True)
            if args.full_k:
                result["eval_full"] = evaluate(state, test_binary, args.full_k, args.seed, args.progress)
                scores = result["eval_full"]
                print(f"{side}: all {len(test_binary)} test images: -ELBO {scores['neg_elbo']:.3f}, "
                      f"-L_{args.full_k} {scores['nll_iwae']:.3f} nats ({scores['seconds']:.1f} s)",
                      flush=True)
            report["results"][side] = result
            harness.write_report(report, args.out)  # after each side: a run that stops keeps what it did
        print(harness.describe_other_load("after the run"))
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print_table(report)
    harness.write_report(report, args.out)


if __name__ == "__main__":
    main()
