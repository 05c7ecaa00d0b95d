"""Train DCGAN, cGAN and WGAN-GP in tinygen and in PyTorch with one protocol; score all with one judge.

For each model of ``--models`` and each seed of ``--seeds``:

- **tinygen**: ``tinygen.trainer.Run.start(folder, model=..., dataset="fashion-mnist",
  epochs=E, seed=s, limit=L, sample_every=0)``, then ``run.train(progress=False)``: the
  recipe exactly as ``tinygen train MODEL`` runs it.
- **torch**: ``TorchTwin`` below, the same architecture written in PyTorch. Its modules
  mirror tinygen's layouts module for module, so the ``state_dict`` keys are the same
  (``tests/parity/test_gan_twins_parity.py`` copies tinygen's weights in and checks one
  training step of each to float64 round-off). The protocol is the recipe's, read from
  ``tinygen.trainer.defaults(model)``: the same init (Conv, ConvTranspose and Linear
  weights N(0, 0.02), biases 0, batch-norm scales N(1, 0.02); the cGAN's projection
  embedding N(0, 0.02), its generator's label embedding N(0, 1), PyTorch's and tinygen's
  ``nn.Embedding`` default; layer norm 1 and 0), the same Adam settings (DCGAN and cGAN
  lr 2e-4, betas (0.5, 0.999); WGAN-GP lr 1e-4, betas (0.5, 0.9)), batch 64, the same
  number of steps; the first L training images, shuffled every epoch, the last partial
  batch dropped, pixels scaled to [-1, 1] (``p / 255 * 2 - 1``); the cGAN's fake labels
  drawn uniformly; WGAN-GP with alpha per sample, the gradient norm per sample over all
  of its C*H*W values, lambda 10, one generator step after every 5th critic step (batch).
  ``torch.manual_seed(s)`` seeds its init, data order and noise.

Both are scored by the same judge, the classifier that tinygen keeps in the user cache
(``tinygen.trainer.find_judge``): ``sample_quality(draw, judge, real_features(judge, test),
n=--n)`` with ``draw(n, rng)`` the generator in eval mode (batch norm on its running
statistics) on noise from the numpy ``rng`` that ``sample_quality`` seeds with 0, so both
frameworks are scored on the same noise; the cGAN draws labels ``arange(n) % 10``. Each
run records the domain FID (Frechet distance in the judge's penultimate features, not
comparable with Inception FIDs), the classes covered, the class entropy (ln 10 = 2.303 at
best), the cGAN's class accuracy, the training time and the images per second of the
training steps alone (tinygen's run also writes a grid, evaluates 1000 test images and
saves a checkpoint at each epoch's end: in ``train_seconds``, not in ``step_seconds``).

    .venv/bin/python benchmarks/gan_twins.py --limit 3200 --n 2000 --seeds 0 \\
        --out /tmp/gan_twins_calibration.json --grids /tmp/grids    # 50 steps: time it first
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_twins.py --epochs 1     # the real runs

The JSON (``--out``) is rewritten after every run, so an interrupted invocation keeps what
it finished. The tinygen grids of seed 0 (``samples/epoch_00E.png`` of the run folder)
are copied to ``--grids`` as ``<model>-seed0.png``. Without PyTorch the torch half is
skipped with a message; without the judge nothing is trained.
"""

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy

import tinygen
from tinygen import trainer
from tinygen.data import load_dataset
from tinygen.metrics import real_features, sample_quality
from tinygen.models import dcgan

try:
    from benchmarks import harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import harness

torch = harness.torch

MODELS = ("dcgan", "cgan", "wgan-gp")
FRAMEWORKS = ("tinygen", "torch")
DATASET = "fashion-mnist"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "gan_twins_fashion_mnist.json"
DEFAULT_GRIDS = HERE / "results" / "grids"
LAST = 100  # the training statistics reported are means over the last LAST steps

_Module = torch.nn.Module if torch is not None else object  # the twins exist only with torch


# ----------------------------------------------------------------------------- the torch twins


def torch_discriminator_body(ndf, channels, image_size, norm="batch"):
    """``dcgan.discriminator_body`` in torch: ``(layers, width, base)``, the same modules, the same order."""
    nn = torch.nn
    if norm not in dcgan.NORMS:
        raise ValueError(f"torch_discriminator_body: norm is {norm!r}, expected one of {dcgan.NORMS}")
    base, n = dcgan.image_layout(image_size)
    width, side = ndf, image_size // 2
    layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    for _ in range(n - 1):
        side //= 2
        layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"))
        if norm == "batch":
            layers.append(nn.BatchNorm2d(width * 2))
        elif norm == "layer":
            layers.append(nn.LayerNorm([width * 2, side, side]))
        layers.append(nn.LeakyReLU(0.2))
        width *= 2
    return layers, width, base


class TorchGenerator(_Module):
    """``dcgan.Generator`` in torch: Linear (no bias), BN1d, ReLU, Unflatten, (ConvT, BN2d, ReLU) x (n-1),
    ConvT, Tanh, as ``self.main``."""

    def __init__(self, nz=100, ngf=64, channels=1, image_size=28):
        super().__init__()
        nn = torch.nn
        self.nz = nz
        base, n = dcgan.image_layout(image_size)
        width = ngf * 2 ** (n - 1)
        layers = [nn.Linear(nz, width * base * base, bias=False), nn.BatchNorm1d(width * base * base),
                  nn.ReLU(), nn.Unflatten(1, (width, base, base))]  # fmt: skip
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU()]  # fmt: skip
            width //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


class TorchDiscriminator(_Module):
    """``dcgan.Discriminator(norm=...)`` in torch: the body, Flatten, Linear -> logits ``(N,)``."""

    def __init__(self, ndf=64, channels=1, image_size=28, norm="batch"):
        super().__init__()
        layers, width, base = torch_discriminator_body(ndf, channels, image_size, norm)
        layers += [torch.nn.Flatten(), torch.nn.Linear(width * base * base, 1)]
        self.main = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).reshape(-1)


class TorchConditionalGenerator(_Module):
    """``cgan.ConditionalGenerator`` in torch: ``G(z, y) = Generator(cat([z, Embedding(y)], 1))``."""

    def __init__(self, nz=100, ngf=64, channels=1, image_size=28, classes=10, embed=50):
        super().__init__()
        self.nz, self.classes = nz, classes
        self.embed = torch.nn.Embedding(classes, embed)
        self.net = TorchGenerator(nz + embed, ngf, channels, image_size)

    def forward(self, z, labels):
        return self.net(torch.cat([z, self.embed(labels)], dim=1))


class TorchProjectionDiscriminator(_Module):
    """``cgan.ProjectionDiscriminator`` in torch: ``w . h(x) + b + <V[y], h(x)>``, ``h`` the body's
    features summed over the positions."""

    def __init__(self, ndf=64, channels=1, image_size=28, classes=10):
        super().__init__()
        layers, width, _ = torch_discriminator_body(ndf, channels, image_size)
        self.body = torch.nn.Sequential(*layers)
        self.linear = torch.nn.Linear(width, 1)
        self.project = torch.nn.Embedding(classes, width)

    def forward(self, x, labels):
        h = self.body(x).sum((2, 3))
        return self.linear(h).reshape(-1) + (self.project(labels) * h).sum(1)


def torch_init_weights(m):
    """``dcgan.init_weights`` in torch: conv and linear weights N(0, 0.02), biases 0, BN scales N(1, 0.02)."""
    nn = torch.nn
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def torch_cgan_init_weights(m):
    """``cgan.init_weights`` in torch: DCGAN's, and the projection's class vectors N(0, 0.02)."""
    torch_init_weights(m)
    if isinstance(m, TorchProjectionDiscriminator):
        torch.nn.init.normal_(m.project.weight, 0.0, 0.02)


# ----------------------------------------------------------------------------- the torch steps


def torch_train_step(G, D, opt_g, opt_d, real, z=None, labels=None, fake_labels=None):
    """``dcgan.train_step`` line for line (with ``labels``: the cGAN's), in torch.

    ``z`` (then ``fake_labels``) are drawn from torch's generator unless given.
    """
    batch = real.shape[0]
    if z is None:
        z = torch.randn(batch, G.nz, dtype=real.dtype, device=real.device)
    real_class, fake_class = (), ()
    if labels is not None:
        if fake_labels is None:
            fake_labels = torch.randint(0, G.classes, (batch,), device=real.device)
        real_class, fake_class = (labels,), (fake_labels,)
    ones = torch.ones(batch, dtype=real.dtype, device=real.device)
    zeros = torch.zeros(batch, dtype=real.dtype, device=real.device)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    fake = G(z, *fake_class)

    logits_real = D(real, *real_class)
    logits_fake = D(fake.detach(), *fake_class)
    loss_d = bce(logits_real, ones) + bce(logits_fake, zeros)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()

    loss_g = bce(D(fake, *fake_class), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    with torch.no_grad():
        d_real = torch.sigmoid(logits_real).mean().item()
        d_fake = torch.sigmoid(logits_fake).mean().item()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": d_real, "d_fake": d_fake}


def torch_gradient_penalty(critic, real, fake, alpha=None):
    """``wgan_gp.gradient_penalty`` in torch: ``(mean((|grad D(x_hat)| - 1)^2), norms)``, alpha per sample
    (drawn unless given), the norm per sample over all its non-batch values, differentiable (create_graph)."""
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, *([1] * (real.ndim - 1)), dtype=real.dtype, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake.detach()).detach().requires_grad_()
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = (grad * grad).reshape(n, -1).sum(1).sqrt()
    return ((norms - 1) ** 2).mean(), norms


def torch_critic_step(G, D, opt_d, real, penalty_weight=10.0, z=None, alpha=None):
    """``wgan_gp.critic_step`` in torch; ``z`` (then ``alpha``) drawn from torch's generator unless given."""
    if z is None:
        z = torch.randn(real.shape[0], G.nz, dtype=real.dtype, device=real.device)
    with torch.no_grad():
        fake = G(z)
    score_real, score_fake = D(real).mean(), D(fake).mean()
    penalty, _ = torch_gradient_penalty(D, real, fake, alpha)
    loss = score_fake - score_real + penalty_weight * penalty
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return {"loss_c": loss.item(), "wasserstein": (score_real - score_fake).item(), "penalty": penalty.item()}


def torch_generator_step(G, D, opt_g, batch, dtype, device="cpu", z=None):
    """``wgan_gp.generator_step`` in torch: ``loss_G = -mean D(G(z))``, one Adam step; returns it."""
    if z is None:
        z = torch.randn(batch, G.nz, dtype=dtype, device=device)
    loss = -D(G(z)).mean()
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    return loss.item()


class TorchTwin:
    """The PyTorch copy of tinygen's recipe ``config["model"]`` (a ``trainer.defaults`` dict): the
    modules ``G`` and ``D``, one Adam each, and ``train_step(batch)`` as the recipe's."""

    def __init__(self, config, image_shape, dtype=None):
        self.config, self.model = config, config["model"]
        channels, image_size = image_shape[0], image_shape[1]
        nz, ngf, ndf = config["nz"], config["ngf"], config["ndf"]
        if self.model == "dcgan":
            self.G = TorchGenerator(nz, ngf, channels, image_size)
            self.D = TorchDiscriminator(ndf, channels, image_size)
            init = torch_init_weights
        elif self.model == "cgan":
            self.G = TorchConditionalGenerator(nz, ngf, channels, image_size, config["classes"],
                                               config["embed"])
            self.D = TorchProjectionDiscriminator(ndf, channels, image_size, config["classes"])
            init = torch_cgan_init_weights
        elif self.model == "wgan-gp":
            if config["critic_norm"] == "batch":
                raise ValueError("TorchTwin: a WGAN-GP critic with batch norm is refused, as by the recipe")
            self.G = TorchGenerator(nz, ngf, channels, image_size)
            self.D = TorchDiscriminator(ndf, channels, image_size, norm=config["critic_norm"])
            init = torch_init_weights
        else:
            raise ValueError(f"TorchTwin: no twin of {self.model!r}; expected one of {', '.join(MODELS)}")
        self.G.apply(init)
        self.D.apply(init)
        if dtype is not None:
            self.G.to(dtype)
            self.D.to(dtype)
        betas = (config["beta1"], config["beta2"])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config["lr"], betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config["lr"], betas=betas)
        self.critic_steps = 0
        self.loss_g = math.nan

    def train(self, mode=True):
        self.G.train(mode)
        self.D.train(mode)
        return self

    def train_step(self, batch, z=None, fake_labels=None, alpha=None, z_g=None):
        """One update on ``batch = (images, labels)``, as the recipe's ``train_step``; the draws are torch's
        unless given: ``z`` and the cGAN's ``fake_labels``; WGAN-GP's ``alpha`` and ``z_g`` (G's step)."""
        real, labels = batch
        if self.model == "dcgan":
            return torch_train_step(self.G, self.D, self.opt_g, self.opt_d, real, z=z)
        if self.model == "cgan":
            return torch_train_step(self.G, self.D, self.opt_g, self.opt_d, real, z=z, labels=labels,
                                    fake_labels=fake_labels)
        stats = torch_critic_step(self.G, self.D, self.opt_d, real, self.config["penalty"], z=z, alpha=alpha)
        self.critic_steps += 1
        if self.critic_steps % self.config["n_critic"] == 0:
            self.loss_g = torch_generator_step(self.G, self.D, self.opt_g, real.shape[0], real.dtype,
                                               real.device, z=z_g)
        return {**stats, "loss_g": self.loss_g}

    def draw(self, n, rng):
        """``(images, labels)`` for ``sample_quality``: G in eval mode on noise from the numpy ``rng``
        (as ``GANRecipe.draw``), float32 numpy in [-1, 1]; the cGAN's labels ``arange(n) % classes``."""
        was = self.G.training
        self.G.eval()
        z = torch.from_numpy(rng.standard_normal((n, self.G.nz)).astype(numpy.float32))
        labels = None
        with torch.no_grad():
            if self.model == "cgan":
                labels = numpy.arange(n) % self.G.classes
                images = self.G(z, torch.from_numpy(labels.astype(numpy.int64)))
            else:
                images = self.G(z)
        self.G.train(was)
        return images.numpy(), labels


# ----------------------------------------------------------------------------- training


def _last_means(history):
    """Each statistic's mean over the last LAST steps, NaNs left out (WGAN-GP's loss_g before G's first)."""
    means = {}
    for key, values in history.items():
        tail = [v for v in values[-LAST:] if not math.isnan(v)]
        means[key] = statistics.fmean(tail) if tail else math.nan
    return means


def train_tinygen(model, seed, epochs, limit, folder):
    """``(recipe, record)``: the recipe trained by ``Run`` (steps timed one by one), and its timings."""
    run = trainer.Run.start(folder, model=model, dataset=DATASET, epochs=epochs, seed=seed, limit=limit,
                            sample_every=0)
    step_seconds = [0.0]
    step = run.model.train_step

    def timed_step(batch):
        start = time.perf_counter()
        stats = step(batch)
        step_seconds[0] += time.perf_counter() - start
        return stats

    run.model.train_step = timed_step
    start = time.perf_counter()
    status = run.train(progress=False)
    seconds = time.perf_counter() - start
    if status != "finished":
        raise SystemExit(f"gan_twins: the tinygen {model} run stopped early ({status})")
    images = run.step * run.config["batch_size"]
    record = {"steps": run.step, "train_images": len(run.data), "batch": run.config["batch_size"],
              "train_seconds": seconds, "step_seconds": step_seconds[0],
              "images_per_s": images / step_seconds[0], "run_folder": str(run.out),
              "last_means": _last_means(run.history)}
    return run, record


def train_torch(model, seed, epochs, train):
    """``(twin, record)``: the torch twin trained on ``train`` with the recipe's protocol, and its timings."""
    config = trainer.defaults(model)
    torch.manual_seed(seed)
    twin = TorchTwin(config, train.images.shape[1:])
    images = torch.from_numpy(train.images)  # uint8, as tinygen's DataLoader keeps them
    labels = torch.from_numpy(train.labels.astype(numpy.int64))
    n, batch = len(images), config["batch_size"]
    history, step_seconds, steps = {}, 0.0, 0
    twin.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        for k in range(n // batch):  # drop_last
            index = order[k * batch : (k + 1) * batch]
            real = images[index].float() / 255 * 2 - 1
            started = time.perf_counter()
            stats = twin.train_step((real, labels[index]))
            step_seconds += time.perf_counter() - started
            steps += 1
            for key, value in stats.items():
                history.setdefault(key, []).append(value)
    seconds = time.perf_counter() - start
    record = {"steps": steps, "train_images": n, "batch": batch, "train_seconds": seconds,
              "step_seconds": step_seconds, "images_per_s": steps * batch / step_seconds,
              "last_means": _last_means(history)}
    return twin, record


def score(draw, judge, reference, n):
    """``sample_quality``'s figures of ``n`` drawn images, and the seconds it took."""
    start = time.perf_counter()
    figures = sample_quality(draw, judge, reference, n=n)
    return {**figures, "score_seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------- the report




def judge_accuracy():
    """The judge's test accuracy, from its run's checkpoint (the last evaluation: the whole test split)."""
    state = trainer.load_checkpoint(trainer.judge_dir(DATASET) / trainer.CHECKPOINT)
    last = state["metrics"][-1]
    return {"accuracy": float(last["accuracy"]), "test_images": int(last["test_images"]),
            "epochs": int(last["epoch"]), "folder": str(trainer.judge_dir(DATASET))}


def _spread(values):
    """``(mean, half the range)``: the seeds lie within mean +- spread; None without values."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (max(values) - min(values)) / 2


def summarize(results):
    """One line per (model, framework): each figure's mean and spread over the seeds."""
    rows = []
    for model in MODELS:
        for framework in FRAMEWORKS:
            runs = [r for r in results if r["model"] == model and r["framework"] == framework]
            if not runs:
                continue
            row = {"model": model, "framework": framework, "seeds": [r["seed"] for r in runs],
                   "steps": sorted({r["steps"] for r in runs}), "epochs": runs[0]["epochs"],
                   "limit": runs[0]["limit"]}
            for key in ("fid", "classes_covered", "class_entropy", "class_accuracy", "images_per_s",
                        "train_seconds"):
                mean, spread = _spread([r.get(key) for r in runs])
                row[key] = {"mean": mean, "spread": spread}
            rows.append(row)
    return rows


def format_table(summary):
    def cell(figure, digits):
        if figure["mean"] is None:
            return "-"
        return f"{figure['mean']:.{digits}f} ± {figure['spread']:.{digits}f}"

    header = ["model", "framework", "seeds", "FID", "classes covered", "class entropy", "class accuracy",
              "images/s", "steps", "epochs / limit"]
    lines = []
    for row in summary:
        lines.append([row["model"], row["framework"], ",".join(map(str, row["seeds"])), cell(row["fid"], 2),
                      cell(row["classes_covered"], 1), cell(row["class_entropy"], 3),
                      cell(row["class_accuracy"], 3), cell(row["images_per_s"], 1),
                      "/".join(map(str, row["steps"])), f"{row['epochs']} / {row['limit'] or 'all'}"])
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]

    def join(cells):
        padded = [c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
        padded += [c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
        return "| " + " | ".join(padded) + " |"

    dashes = ["-" * (w + 2) for w in widths[:3]] + ["-" * (w + 1) + ":" for w in widths[3:]]
    rule = "|" + "|".join(dashes) + "|"
    return "\n".join([join(header), rule, *[join(cells) for cells in lines]])



# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each run (default 1)")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N images (default 0: all)")
    parser.add_argument("--which", default="both", choices=("tinygen", "torch", "both"))
    parser.add_argument("--n", type=int, default=10000, help="images scored per run (default 10000)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"the JSON report (default {DEFAULT_OUT})")
    parser.add_argument("--grids", default=str(DEFAULT_GRIDS),
                        help="copy seed 0's tinygen grids here as <model>-seed0.png (default %(default)s)")
    parser.add_argument("--runs", default=None, help="where tinygen's run folders go (default: a temp dir)")
    args = parser.parse_args(argv)
    for name in ("epochs", "n", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.limit < 0 or any(seed < 0 for seed in args.seeds):
        parser.error("--limit and --seeds must be >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    frameworks = list(FRAMEWORKS) if args.which == "both" else [args.which]
    if "torch" in frameworks and torch is None:
        print("gan_twins: torch is not installed; skipping the torch half (pip install torch to run it)")
        frameworks.remove("torch")
        if not frameworks:
            return
    judge = trainer.find_judge(DATASET)
    if judge is None:
        raise SystemExit(
            f"gan_twins: no trained judge in {trainer.judge_dir(DATASET)}; train it first with "
            f"tinygen eval fid (or tinygen.trainer.get_judge({DATASET!r})); nothing run"
        )
    train = load_dataset(DATASET, "train")
    test = load_dataset(DATASET, "test")
    if args.limit:
        train = train[: args.limit]
    runs_dir = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="gan_twins_"))
    stamp = time.strftime("%Y%m%d-%H%M%S")

    with harness.limit_threads(args.threads):
        tinygen.set_num_threads(args.threads)  # tinygen's kernels read OpenBLAS's count; torch's is set above
        report = {
            "benchmark": "gan_twins",
            "dataset": DATASET,
            "command": " ".join([os.path.relpath(sys.executable), *sys.argv]) if argv is None else repr(argv),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": harness.machine_record(args.threads),
            "judge": judge_accuracy(),
            "protocol": {
                "epochs": args.epochs, "limit": args.limit, "train_images": len(train),
                "batch": 64, "drop_last": True, "shuffle": "every epoch", "pixels": "p / 255 * 2 - 1",
                "settings": {model: {k: v for k, v in trainer.defaults(model).items()
                                     if k not in trainer.RUN_SETTINGS or k == "batch_size"}
                             for model in args.models},
                "scored": f"sample_quality(draw, judge, real_features(judge, test), n={args.n}), "
                          "rng default_rng(0), all 10000 test images as the reference",
            },
            "runs_dir": str(runs_dir),
            "results": [],
        }
        for line in harness.describe_machine():
            print(line)
        print(f"judge: {report['judge']['folder']}, test accuracy {report['judge']['accuracy']:.4f}")
        print(f"{DATASET}: {len(train)} training images, {args.epochs} epoch(s), seeds {args.seeds}, "
              f"models {args.models}, {args.threads} thread(s); {args.n} samples scored per run\n",
              flush=True)
        start = time.perf_counter()
        reference = real_features(judge, test)
        print(f"real features of {len(test)} test images: {time.perf_counter() - start:.1f} s", flush=True)

        for model in args.models:
            for seed in args.seeds:
                for framework in frameworks:
                    before = harness._load_counters()
                    if framework == "tinygen":
                        folder = runs_dir / f"{model}-seed{seed}-{stamp}"
                        trained, record = train_tinygen(model, seed, args.epochs, args.limit, folder)
                        draw = trained.model.draw
                    else:
                        trained, record = train_torch(model, seed, args.epochs, train)
                        draw = trained.draw
                    figures = score(draw, judge, reference, args.n)
                    other = harness.other_processes(before, harness._load_counters())
                    result = {"model": model, "framework": framework, "seed": seed, "epochs": args.epochs,
                              "limit": args.limit, **record, **figures,
                              "other_load_cores": None if other is None else other.cores}
                    if framework == "tinygen" and seed == 0:
                        grid = Path(record["run_folder"]) / "samples" / f"epoch_{args.epochs:03d}.png"
                        target = Path(args.grids) / f"{model}-seed0.png"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(grid, target)
                        result["grid"] = str(target)
                    report["results"].append(result)
                    report["summary"] = summarize(report["results"])
                    harness.write_report(report, args.out)
                    shown = ", ".join(f"{k} {result[k]:.4g}" for k in
                                      ("fid", "classes_covered", "class_entropy", "class_accuracy")
                                      if k in result)
                    print(f"{model:>7} {framework:>7} seed {seed}: {record['steps']} steps, "
                          f"{record['train_seconds']:.1f} s ({record['images_per_s']:.1f} images/s in the "
                          "steps), "
                          f"scored in {figures['score_seconds']:.1f} s: {shown}", flush=True)
        print(harness.describe_other_load("after the run"))
    print()
    print(f"{DATASET}, judge test accuracy {report['judge']['accuracy']:.4f}; mean ± half the range over "
          f"the seeds; {args.n} samples per run; domain FID (not comparable with Inception FIDs)")
    print(format_table(report["summary"]))
    busy = [r for r in report["results"] if (r["other_load_cores"] or 0) > harness.BUSY]
    for r in busy:
        print(f"warning: other processes kept {r['other_load_cores']:.2f} cores busy during "
              f"{r['model']}/{r['framework']}/seed {r['seed']}; its time is not trustworthy")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
