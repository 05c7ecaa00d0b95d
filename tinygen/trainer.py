"""A DCGAN training run: models, optimizers, data, checkpoints, sample grids and a loss plot.

``tinygen train dcgan`` drives a ``Run``; so can a script or a test::

    run = Run.start("runs/fashion", dataset="fashion-mnist", epochs=5, seed=0)
    run.train()                       # -> "finished"
    run = Run.resume("runs/fashion", epochs=10)
    run.train()

A run folder holds::

    checkpoint.npz             models, optimizers, position in the data, RNG states (atomic)
    samples/step_000500.png    grids of G(fixed noise), so grids are comparable over time
    samples/epoch_001.png
    losses.png                 D's and G's loss per step

Exact resume: the checkpoint is written between two steps and holds everything the next
step reads: both models (with batch-norm running statistics), both Adam states, the
default generator's state (which draws the training noise), and the data generator's
state, now and at the start of the epoch, with the number of batches already done. Resuming
redraws the epoch's shuffle from that state and skips the finished batches, so an
interrupted and resumed run ends with the same weights, bit for bit, as one that never
stopped, on ``cuda`` too (CuPy's draws are seeded from the saved NumPy stream).
"""

import copy
import os
import time
from pathlib import Path

import numpy
from tqdm import tqdm

import tinygen
from tinygen import backend
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.errors import CheckpointError
from tinygen.models import dcgan
from tinygen.random import Generator

CHECKPOINT = "checkpoint.npz"
FORMAT = "tinygen-run"
VERSION = 1
N_SAMPLES = 64  # images in each sample grid (8 x 8)

DEFAULTS = {
    "model": "dcgan",
    "dataset": "fashion-mnist",
    "data_root": None,
    "limit": 0,  # train on the first `limit` images of the split; 0 means all of them
    "epochs": 1,
    "batch_size": 64,
    "device": "cpu",
    "seed": 0,
    "nz": 100,
    "ngf": 64,
    "ndf": 64,
    "lr": 2e-4,
    "beta1": 0.5,
    "beta2": 0.999,
    "sample_every": 500,  # steps between sample grids (0: only at the end of each epoch)
}
# What a resumed run may change; everything else would make it a different run.
RESUMABLE = ("epochs", "device", "sample_every", "data_root")


def _check_config(config):
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"Run: unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    if config["model"] != "dcgan":
        raise ValueError(f"Run: model is {config['model']!r}, expected 'dcgan'")
    for key, low in (("epochs", 1), ("batch_size", 1), ("nz", 1), ("ngf", 1), ("ndf", 1), ("limit", 0),
                     ("seed", 0), ("sample_every", 0)):
        value = config[key]
        if not isinstance(value, (int, numpy.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"Run: {key} is {value!r}, expected an int >= {low}")
    if not config["lr"] > 0:
        raise ValueError(f"Run: lr is {config['lr']!r}, expected a positive number")
    for key in ("beta1", "beta2"):
        if not 0 <= config[key] < 1:
            raise ValueError(f"Run: {key} is {config[key]!r}, expected a number in [0, 1)")
    backend.device(config["device"])  # a malformed device string fails here, before any work


class Run:
    """Everything one training run needs; ``start`` or ``resume`` makes one, ``train`` runs it."""

    def __init__(self, out, config, data=None, state=None):
        self.out = Path(out)
        self.config = config
        if data is None:
            data = load_dataset(config["dataset"], "train", root=config["data_root"])
        if config["limit"]:
            data = data[: config["limit"]]
        self.data = data
        channels, image_size = data.images.shape[1], data.images.shape[2]

        tinygen.manual_seed(config["seed"])
        self.G = dcgan.Generator(config["nz"], config["ngf"], channels, image_size)
        self.D = dcgan.Discriminator(config["ndf"], channels, image_size)
        self.G.apply(dcgan.init_weights)
        self.D.apply(dcgan.init_weights)
        self.fixed_noise = tinygen.randn(N_SAMPLES, config["nz"]).numpy()
        self.G.to(config["device"])
        self.D.to(config["device"])
        self.opt_g, self.opt_d = dcgan.make_optimizers(
            self.G, self.D, lr=config["lr"], betas=(config["beta1"], config["beta2"])
        )
        # The data order has its own stream, so a change to the model leaves it alone.
        self.data_generator = Generator(config["seed"] + 1)
        self.loader = DataLoader(
            data, config["batch_size"], shuffle=True, drop_last=True, generator=self.data_generator,
            value_range=(-1.0, 1.0), device=config["device"],
        )
        if len(self.loader) == 0:
            raise ValueError(
                f"Run: batch_size {config['batch_size']} is larger than the {len(data)} training images"
            )
        self.epoch = 0  # epochs finished
        self.batch = 0  # batches finished in the current epoch
        self.step = 0  # batches finished in all
        self.epoch_start_state = copy.deepcopy(self.data_generator.get_state())
        self.history = {"loss_d": [], "loss_g": [], "d_real": [], "d_fake": []}
        if state is not None:
            self._load_state(state)

    # ------------------------------------------------------------------ making a run
    @classmethod
    def start(cls, out, data=None, **settings):
        """A new run writing to ``out``, which must not hold a checkpoint already.

        ``data`` (an ``ImageDataset``) replaces ``load_dataset(dataset)``, e.g. in tests.
        """
        out = Path(out)
        if (out / CHECKPOINT).exists():
            raise FileExistsError(
                f"{out} already holds a run ({out / CHECKPOINT}); resume it with --resume {out}, "
                "or choose another --out"
            )
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {out} is a file, expected a folder (or a new name)")
        config = {**DEFAULTS, **settings}
        _check_config(config)
        return cls(out, config, data=data)

    @classmethod
    def resume(cls, out, data=None, **changes):
        """The run saved in ``out``, ready to continue; ``changes`` may set only ``RESUMABLE`` keys."""
        out = Path(out)
        state = load_checkpoint(checkpoint_file(out))
        config = dict(state["config"])
        for key, value in changes.items():
            if key not in RESUMABLE and value != config.get(key):
                raise ValueError(
                    f"--{key.replace('_', '-')} is {value!r} but the run in {out} used {config.get(key)!r}; "
                    f"a resumed run keeps its settings (it may change only {', '.join(RESUMABLE)})"
                )
            config[key] = value
        _check_config(config)
        return cls(checkpoint_file(out).parent, config, data=data, state=state)

    # ------------------------------------------------------------------ training
    def train(self, should_stop=lambda: False, max_steps=None, progress=True):
        """Train to ``config["epochs"]``; returns ``"finished"``, or ``"stopped"`` when
        ``should_stop()`` turned true or ``max_steps`` steps were taken (a checkpoint is saved
        either way, between two steps)."""
        self.out.mkdir(parents=True, exist_ok=True)
        steps_taken = 0
        batch_size = self.config["batch_size"]
        while self.epoch < self.config["epochs"]:
            if self.batch == 0:
                self.epoch_start_state = copy.deepcopy(self.data_generator.get_state())
            self.data_generator.set_state(copy.deepcopy(self.epoch_start_state))
            batches = iter(self.loader)
            for _ in range(self.batch):  # after a resume: the same shuffle, minus the batches done
                next(batches)
            bar = tqdm(
                total=len(self.loader), initial=self.batch, disable=not progress, unit="batch",
                desc=f"epoch {self.epoch + 1}/{self.config['epochs']}", dynamic_ncols=True,
            )
            with bar:
                for real, _ in batches:
                    started = time.perf_counter()
                    stats = dcgan.train_step(self.G, self.D, self.opt_g, self.opt_d, real)
                    for key, value in stats.items():
                        self.history[key].append(value)
                    self.batch += 1
                    self.step += 1
                    steps_taken += 1
                    rate = batch_size / (time.perf_counter() - started)
                    bar.set_postfix(loss_d=f"{stats['loss_d']:.3f}", loss_g=f"{stats['loss_g']:.3f}",
                                    img_s=f"{rate:.0f}", refresh=False)
                    bar.update()
                    if self.config["sample_every"] and self.step % self.config["sample_every"] == 0:
                        self.save_samples(f"step_{self.step:06d}")
                    if should_stop() or (max_steps is not None and steps_taken >= max_steps):
                        self.save()
                        return "stopped"
            self.epoch += 1
            self.batch = 0
            self.save_samples(f"epoch_{self.epoch:03d}")
            self.save()
        return "finished"

    # ------------------------------------------------------------------ outputs
    @property
    def checkpoint_path(self):
        return self.out / CHECKPOINT

    @property
    def samples_dir(self):
        return self.out / "samples"

    @property
    def loss_plot_path(self):
        return self.out / "losses.png"

    def sample(self, z):
        """Images ``G(z)`` with batch norm in eval mode (running statistics), as a NumPy array."""
        return generate(self.G, z)

    def save_samples(self, name):
        """Write ``samples/<name>.png``: an 8 x 8 grid of G(fixed noise); returns the path."""
        return save_image(self.sample(self.fixed_noise), self.samples_dir / f"{name}.png")

    def save(self):
        """Write the checkpoint (atomically) and the loss plot."""
        tinygen.save(self._state(), self.checkpoint_path)
        save_loss_plot(self.history, self.loss_plot_path, steps_per_epoch=len(self.loader))

    def _state(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "config": self.config,
            "image": {"channels": self.G.channels, "image_size": self.G.image_size},
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "position": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
            "rng": tinygen.default_generator.get_state(),
            "data_rng": self.data_generator.get_state(),
            "data_rng_epoch_start": self.epoch_start_state,
            "fixed_noise": self.fixed_noise,
            "history": {key: numpy.asarray(values, numpy.float64) for key, values in self.history.items()},
        }

    def _load_state(self, state):
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        position = state["position"]
        self.epoch, self.batch, self.step = position["epoch"], position["batch"], position["step"]
        tinygen.default_generator.set_state(state["rng"])
        self.data_generator.set_state(state["data_rng"])
        self.epoch_start_state = state["data_rng_epoch_start"]
        self.fixed_noise = numpy.asarray(state["fixed_noise"])
        self.history = {key: [float(v) for v in values] for key, values in state["history"].items()}


def checkpoint_file(path):
    """The checkpoint a user means by ``path``: a run folder's ``checkpoint.npz``, or the file itself."""
    path = Path(path)
    return path if path.is_file() else path / CHECKPOINT


def load_checkpoint(path):
    """The dict a ``Run`` saved at ``path``; ``CheckpointError`` if it is anything else."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path} (expected the {CHECKPOINT} a training run writes)")
    state = tinygen.load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a tinygen file but not a training run's checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} is a version {state.get('version')} checkpoint; this tinygen reads version {VERSION}"
        )
    return state


def generator_from_checkpoint(path, device="cpu"):
    """The generator saved in a run's checkpoint (or a run folder), in eval mode on ``device``."""
    path = Path(path)
    state = load_checkpoint(checkpoint_file(path))
    config, image = state["config"], state["image"]
    G = dcgan.Generator(config["nz"], config["ngf"], image["channels"], image["image_size"])
    G.load_state_dict(state["generator"])
    return G.to(device).eval()


def generate(G, z):
    """``G(z)`` for a NumPy batch of noise ``z``, with batch norm in eval mode; NumPy out."""
    was_training = G.training
    G.eval()
    device = next(iter(G.parameters())).device
    with tinygen.no_grad():
        images = G(tinygen.tensor(numpy.asarray(z, dtype=numpy.float32), device=device)).numpy()
    G.train(was_training)
    return images


def slerp(z0, z1, t):
    """Spherical interpolation between noise vectors (rows of ``z0``, ``z1``) at fractions ``t``.

    Gaussian noise lives near a sphere of radius sqrt(nz); a straight line between two points
    cuts through its low-density inside, the great-circle arc stays on it (White, 2016):
    ``slerp(z0, z1, t) = sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1`` with ``cos w = z0.z1/|z0||z1|``.
    """
    unit0 = z0 / numpy.linalg.norm(z0, axis=-1, keepdims=True)
    unit1 = z1 / numpy.linalg.norm(z1, axis=-1, keepdims=True)
    omega = numpy.arccos(numpy.clip((unit0 * unit1).sum(-1, keepdims=True), -1.0, 1.0))
    t = numpy.asarray(t)[:, None]
    sin_omega = numpy.sin(omega)
    if numpy.all(sin_omega > 1e-6):
        return (numpy.sin((1 - t) * omega) * z0 + numpy.sin(t * omega) * z1) / sin_omega
    return (1 - t) * z0 + t * z1  # (nearly) parallel: the arc is a line


def save_loss_plot(history, path, steps_per_epoch=None):
    """A PNG of D's and G's loss per step (faint) with a moving average (solid), written atomically."""
    from matplotlib.figure import Figure  # no pyplot: no display, no global state

    figure = Figure(figsize=(7, 3.5), dpi=100)
    axes = figure.add_subplot()
    for key, color in (("loss_d", "tab:blue"), ("loss_g", "tab:orange")):
        values = numpy.asarray(history[key], dtype=float)
        if values.size == 0:
            continue
        steps = numpy.arange(1, values.size + 1)
        axes.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        window = max(1, min(50, values.size // 10))
        smooth = numpy.convolve(values, numpy.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1:], smooth, color=color, label=f"{key} (mean of {window})")
    axes.set_xlabel("step" + (f" ({steps_per_epoch} per epoch)" if steps_per_epoch else ""))
    axes.set_ylabel("BCE loss")
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        figure.savefig(temporary, format="png")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
