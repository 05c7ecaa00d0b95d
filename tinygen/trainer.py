"""One training run for every model: data, checkpoints, exact resume, grids, plots and metrics.

``tinygen train MODEL`` drives a ``Run``; so can a script or a test::

    run = Run.start("runs/fashion", model="dcgan", dataset="fashion-mnist", epochs=5, seed=0)
    run.train()                       # -> "finished"
    run = Run.resume("runs/fashion", epochs=10)
    run.train()

The model is a ``Recipe`` from ``tinygen.models.MODELS`` (see ``tinygen/models/recipe.py``):
it builds its modules and optimizers by name and takes one batch per ``train_step``. The run
owns everything else. A run folder holds::

    checkpoint.npz             modules and optimizers by name, position in the data, RNG states (atomic)
    samples/step_000500.png    the model's grids of its fixed inputs, so grids compare over time
    samples/epoch_001.png      (a model with several grids adds samples/<kind>_epoch_001.png)
    losses.png                 every quantity train_step returns, per step, a panel per scale
    metrics.jsonl, metrics.png the model's evaluation on the test split at each epoch's end

Exact resume: the checkpoint is written between two steps and holds everything the next
step reads: the modules (with batch-norm running statistics), the optimizers' states, the
recipe's own state, the default generator's state (which draws all of a step's noise), and
the data generator's state, now and at the start of the epoch, with the number of batches
already done. Resuming redraws the epoch's shuffle (and binarization) from that state and
skips the finished batches, so an interrupted and resumed run ends with the same weights,
bit for bit, as one that never stopped, on ``cuda`` too (CuPy's draws are seeded from the
saved NumPy stream). Evaluation draws from a stream of its own and leaves the training
stream as it found it. A checkpoint is saved at each epoch's end, every ``checkpoint_every``
minutes, and when ``should_stop()`` turns true (the CLI's Ctrl-C and SIGTERM).
"""

import contextlib
import copy
import json
import os
import time
from pathlib import Path

import numpy
from tqdm import tqdm

import tinygen
from tinygen import backend
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.data.load import cache_dir
from tinygen.errors import CheckpointError
from tinygen.models import dcgan
from tinygen.models.recipe import Setting, check_settings
from tinygen.models.registry import get_model
from tinygen.plots import save_history_plot, save_metrics_plot
from tinygen.random import Generator

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
FORMAT = "tinygen-run"
VERSION = 2  # 1: the DCGAN-only run (generator/discriminator/opt_g/opt_d), read and upgraded
N_SAMPLES = 64  # images in each sample grid (8 x 8)

# The run's own settings; each model adds its own (Recipe.settings) and may change these defaults.
RUN_SETTINGS = {
    "model": Setting("dcgan", "the model (see tinygen models)", kind="str"),
    "dataset": Setting("fashion-mnist", "fashion-mnist, mnist or cifar10", kind="str"),
    "data_root": Setting(None, "a folder holding the data set's files (searched first)", kind="str"),
    "limit": Setting(0, "train on the first N images only (0: all)", low=0),
    "epochs": Setting(1, "epochs in all, counting those done", low=1),
    "batch_size": Setting(64, "images per step", low=1),
    "device": Setting("cpu", "cpu, cuda or cuda:N", kind="str"),
    "seed": Setting(0, "fixes the whole run", low=0),
    "sample_every": Setting(500, "steps between sample grids (0: only at each epoch's end)", low=0),
    "checkpoint_every": Setting(10.0, "minutes between checkpoints inside an epoch (0: only at its end)",
                                kind="float"),
    "eval_limit": Setting(1000, "test images evaluated at each epoch's end (0: all)", low=0),
}
# What a resumed run may change; everything else would make it a different run.
RESUMABLE = ("epochs", "device", "sample_every", "data_root", "checkpoint_every", "eval_limit")


def defaults(model):
    """Every setting of a ``model`` run with its default: the run's (as the model changes them),
    then the model's own."""
    recipe = get_model(model)
    run = {key: setting.default for key, setting in RUN_SETTINGS.items()}
    return {**run, **recipe.run_defaults, "model": model,
            **{key: setting.default for key, setting in recipe.settings.items()}}


def check_config(config):
    """``config`` with each setting checked and in normal form; one-line errors naming the setting."""
    recipe = get_model(config.get("model"))
    table = {**RUN_SETTINGS, **recipe.settings}
    config = check_settings("Run", table, config)
    backend.device(config["device"])  # a malformed device string fails here, before any work
    recipe.check_config(config)
    return config


@contextlib.contextmanager
def own_random_stream(seed):
    """Draw from a stream seeded with ``seed`` inside the block; the default generator's state
    is put back after it, so what happens inside changes nothing that training draws."""
    saved = copy.deepcopy(tinygen.default_generator.get_state())
    tinygen.manual_seed(seed)
    try:
        yield
    finally:
        tinygen.default_generator.set_state(saved)


class Run:
    """Everything one training run needs; ``start`` or ``resume`` makes one, ``train`` runs it."""

    def __init__(self, out, config, data=None, test_data=None, state=None):
        self.out = Path(out)
        self.config = config
        recipe = get_model(config["model"])
        if data is None:
            data = load_dataset(config["dataset"], "train", root=config["data_root"])
        if config["limit"]:
            data = data[: config["limit"]]
        self.data, self._test_data = data, test_data

        tinygen.manual_seed(config["seed"])
        image_shape = state["image_shape"] if state is not None else data.images.shape[1:]
        self.model = recipe(config, image_shape)
        self.model.check_data(data)
        self.fixed = self.model.fixed_inputs(self.test_data if recipe.uses_test_split else None, N_SAMPLES)
        self.model.to(config["device"])
        # The data order (and binarization) has its own stream, so a change to the model leaves it alone.
        self.data_generator = Generator(config["seed"] + 1)
        self.loader = DataLoader(
            data, config["batch_size"], shuffle=True, drop_last=True, generator=self.data_generator,
            value_range=recipe.value_range, binarize=recipe.binarize, device=config["device"],
        )
        if len(self.loader) == 0:
            raise ValueError(
                f"Run: batch_size {config['batch_size']} is larger than the {len(data)} training images"
            )
        self.epoch = 0  # epochs finished
        self.batch = 0  # batches finished in the current epoch
        self.step = 0  # batches finished in all
        self.epoch_start_state = copy.deepcopy(self.data_generator.get_state())
        self.history = {}  # key -> one float per step, as train_step returned them
        self.metrics = []  # one dict per evaluation: epoch, step, test_images and the model's figures
        if state is not None:
            self._load_state(state)

    # ------------------------------------------------------------------ making a run
    @classmethod
    def start(cls, out, data=None, test_data=None, **settings):
        """A new run writing to ``out``, which must not hold a checkpoint already.

        ``data`` and ``test_data`` (``ImageDataset``) replace ``load_dataset(dataset, split)``, e.g. in tests.
        """
        out = Path(out)
        if (out / CHECKPOINT).exists():
            raise FileExistsError(
                f"{out} already holds a run ({out / CHECKPOINT}); resume it with --resume {out}, "
                "or choose another --out"
            )
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {out} is a file, expected a folder (or a new name)")
        model = settings.get("model", RUN_SETTINGS["model"].default)
        config = check_config({**defaults(model), **settings})
        return cls(out, config, data=data, test_data=test_data)

    @classmethod
    def resume(cls, out, data=None, test_data=None, **changes):
        """The run saved in ``out``, ready to continue; ``changes`` may set only ``RESUMABLE`` keys."""
        out = Path(out)
        state = load_checkpoint(checkpoint_file(out))
        config = dict(state["config"])
        if changes.get("model", config["model"]) != config["model"]:
            raise ValueError(
                f"{out} holds a {config['model']!r} run, not {changes['model']!r}; resume it with "
                f"tinygen train {config['model']} --resume {out}"
            )
        for key, value in changes.items():
            if key not in RESUMABLE and value != config.get(key):
                raise ValueError(
                    f"--{key.replace('_', '-')} is {value!r} but the run in {out} used {config.get(key)!r}; "
                    f"a resumed run keeps its settings (it may change only {', '.join(RESUMABLE)})"
                )
            config[key] = value
        config = check_config(config)
        return cls(checkpoint_file(out).parent, config, data=data, test_data=test_data, state=state)

    @property
    def test_data(self):
        """The data set's test split, loaded when first needed."""
        if self._test_data is None:
            self._test_data = load_dataset(self.config["dataset"], "test", root=self.config["data_root"])
        return self._test_data

    # ------------------------------------------------------------------ training
    def train(self, should_stop=lambda: False, max_steps=None, progress=True):
        """Train to ``config["epochs"]``; returns ``"finished"``, or ``"stopped"`` when
        ``should_stop()`` turned true or ``max_steps`` steps were taken (a checkpoint is saved
        either way, between two steps)."""
        self.out.mkdir(parents=True, exist_ok=True)
        steps_taken = 0
        batch_size = self.config["batch_size"]
        every = self.config["checkpoint_every"] * 60
        last_save = time.monotonic()
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
                for batch in batches:
                    started = time.perf_counter()
                    stats = self.model.train_step(batch)
                    for key, value in stats.items():
                        self.history.setdefault(key, []).append(value)
                    self.batch += 1
                    self.step += 1
                    steps_taken += 1
                    rate = batch_size / (time.perf_counter() - started)
                    shown = {key: f"{value:.3f}" for key, value in stats.items()}
                    bar.set_postfix(**shown, img_s=f"{rate:.0f}", refresh=False)
                    bar.update()
                    if self.config["sample_every"] and self.step % self.config["sample_every"] == 0:
                        self.save_samples(f"step_{self.step:06d}")
                    if should_stop() or (max_steps is not None and steps_taken >= max_steps):
                        self.save()
                        return "stopped"
                    if every and time.monotonic() - last_save >= every:
                        self.save()
                        last_save = time.monotonic()
            self.epoch += 1
            self.batch = 0
            self.save_samples(f"epoch_{self.epoch:03d}")
            self.evaluate_epoch(progress)
            self.save()
            last_save = time.monotonic()
        return "finished"

    def evaluate(self, test=None, progress=False, **options):
        """The model's figures on ``test`` (default: the run's test split, first ``eval_limit`` images),
        drawn from a stream of their own (seed + 2), so they are repeatable and training is untouched."""
        if not self.model.can_evaluate():
            return {}
        test = self.test_data if test is None else test
        if self.config["eval_limit"]:
            test = test[: self.config["eval_limit"]]
        self.model.eval()
        try:
            with own_random_stream(self.config["seed"] + 2):
                return self.model.evaluate(test, progress=progress, **options)
        finally:
            self.model.train()

    def evaluate_epoch(self, progress=False):
        """Evaluate at an epoch's end: print the figures and keep them for ``metrics.jsonl``."""
        figures = self.evaluate(progress=progress)
        if not figures:
            return
        n = min(len(self.test_data), self.config["eval_limit"] or len(self.test_data))
        self.metrics = [line for line in self.metrics if line["epoch"] != self.epoch]
        self.metrics.append({"epoch": self.epoch, "step": self.step, "test_images": n, **figures})
        shown = ", ".join(f"{key} {value:.4g}" for key, value in figures.items())
        print(f"epoch {self.epoch}, {n} test images: {shown}", flush=True)

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

    @property
    def metrics_path(self):
        return self.out / METRICS

    def save_samples(self, name):
        """Write the model's grids of its fixed inputs: ``samples/<name>.png`` and
        ``samples/<kind>_<name>.png``; returns the main grid's path (None if the model has none)."""
        self.model.eval()
        try:
            grids = self.model.grids(self.fixed)
        finally:
            self.model.train()
        paths = {}
        for kind, images in grids.items():
            path = self.samples_dir / (f"{kind}_{name}.png" if kind else f"{name}.png")
            paths[kind] = save_image(images, path, value_range=self.model.value_range)
        return paths.get("")

    def save(self):
        """Write the checkpoint (atomically), the loss plot, and the metrics file and plot."""
        tinygen.save(self._state(), self.checkpoint_path)
        recipe = type(self.model)
        save_history_plot(self.history, self.loss_plot_path, recipe.panels, steps_per_epoch=len(self.loader))
        if self.metrics:
            write_lines(self.metrics, self.metrics_path)
            save_metrics_plot(self.metrics, self.out / "metrics.png", recipe.metric_panels)

    def _state(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "config": self.config,
            "image_shape": tuple(self.model.image_shape),
            "models": {name: module.state_dict() for name, module in self.model.modules.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.model.optimizers.items()},
            "recipe": self.model.state_dict(),
            "position": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
            "rng": tinygen.default_generator.get_state(),
            "data_rng": self.data_generator.get_state(),
            "data_rng_epoch_start": self.epoch_start_state,
            "fixed": self.fixed,
            "history": {key: numpy.asarray(values, numpy.float64) for key, values in self.history.items()},
            "metrics": self.metrics,
        }

    def _load_state(self, state):
        _load_modules(self.model, state)
        for name, opt in self.model.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        position = state["position"]
        self.epoch, self.batch, self.step = position["epoch"], position["batch"], position["step"]
        tinygen.default_generator.set_state(state["rng"])
        self.data_generator.set_state(state["data_rng"])
        self.epoch_start_state = state["data_rng_epoch_start"]
        self.fixed = {name: numpy.asarray(value) for name, value in state["fixed"].items()}
        self.history = {key: [float(v) for v in values] for key, values in state["history"].items()}
        self.metrics = [dict(line) for line in state["metrics"]]


def _load_modules(model, state):
    """Load the saved modules into a recipe's, by name; a missing name is a CheckpointError."""
    missing = sorted(set(model.modules) - set(state["models"]))
    if missing:
        raise CheckpointError(f"the checkpoint has no module {', '.join(missing)} for model {model.name!r}")
    for name, module in model.modules.items():
        module.load_state_dict(state["models"][name])
    model.load_state_dict(state["recipe"])


def write_lines(records, path):
    """``records`` (dicts) as JSON lines at ``path``, written to a temporary file and renamed over it."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text("".join(json.dumps(record) + "\n" for record in records))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def checkpoint_file(path):
    """The checkpoint a user means by ``path``: a run folder's ``checkpoint.npz``, or the file itself."""
    path = Path(path)
    return path if path.is_file() else path / CHECKPOINT


def load_checkpoint(path):
    """The dict a ``Run`` saved at ``path`` (a version 1 DCGAN run upgraded); else ``CheckpointError``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path} (expected the {CHECKPOINT} a training run writes)")
    state = tinygen.load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a tinygen file but not a training run's checkpoint")
    version = state.get("version")
    if version == 1:
        return _upgrade_version_1(state)
    if version != VERSION:
        written_by = "a newer" if isinstance(version, int) and version > VERSION else "an unknown"
        raise CheckpointError(
            f"{path} is a version {version!r} checkpoint, written by {written_by} tinygen; "
            f"this tinygen reads versions 1 to {VERSION}"
        )
    return state


def _upgrade_version_1(state):
    """A version 1 checkpoint (DCGAN only, fixed keys) in version 2's layout (modules by name)."""
    image = state["image"]
    config = {**{key: s.default for key, s in RUN_SETTINGS.items() if key not in state["config"]},
              **state["config"]}
    return {
        "format": FORMAT, "version": VERSION, "config": config,
        "image_shape": (image["channels"], image["image_size"], image["image_size"]),
        "models": {"generator": state["generator"], "discriminator": state["discriminator"]},
        "optimizers": {"generator": state["opt_g"], "discriminator": state["opt_d"]},
        "recipe": {}, "position": state["position"], "rng": state["rng"], "data_rng": state["data_rng"],
        "data_rng_epoch_start": state["data_rng_epoch_start"], "fixed": {"noise": state["fixed_noise"]},
        "history": state["history"], "metrics": [],
    }


def model_from_checkpoint(path, device="cpu"):
    """``(recipe, state)``: the model saved in a run's checkpoint (or run folder), in eval mode on ``device``.

    Building the recipe draws its initialisation from a stream of its own, so the default
    generator is left as it was.
    """
    state = load_checkpoint(checkpoint_file(path))
    config = check_config(dict(state["config"]))
    with own_random_stream(0):
        model = get_model(config["model"])(config, state["image_shape"])
    _load_modules(model, state)
    model.to(device).eval()
    return model, state


def generator_from_checkpoint(path, device="cpu"):
    """The DCGAN generator saved in a run's checkpoint (or a run folder), in eval mode on ``device``."""
    model, _ = model_from_checkpoint(path, device)
    if not isinstance(model, dcgan.DCGAN):
        raise CheckpointError(f"{path} holds a {model.name!r} run, expected a 'dcgan' one")
    return model.G


def evaluate_checkpoint(path, device="cpu", limit=0, seed=0, data_root=None, progress=False, **options):
    """``(model, test, figures)``: a saved model evaluated on its data set's test split (first ``limit``
    images, 0: all), drawing from a stream seeded with ``seed``; ``options`` go to ``Recipe.evaluate``."""
    model, state = model_from_checkpoint(path, device)
    config = state["config"]
    test = load_dataset(config["dataset"], "test", root=data_root or config["data_root"])
    if limit:
        test = test[:limit]
    with own_random_stream(seed):
        figures = model.evaluate(test, progress=progress, **options)
    return model, test, figures


# ---------------------------------------------------------------------------------- the judge
JUDGE = {"epochs": 3, "eval_limit": 0}  # the judge's run: 3 epochs, accuracy on the whole test split


def judge_dir(dataset):
    """Where the classifier that scores GANs on ``dataset`` lives: a run folder in the user cache."""
    return Path(cache_dir()) / "classifiers" / dataset


def _finished_judge(dataset, device):
    """``(network, test accuracy)`` of the cached classifier of ``dataset``, if it trained to the end."""
    path = judge_dir(dataset) / CHECKPOINT
    if not path.exists():
        return None
    model, state = model_from_checkpoint(path, device)
    if state["position"]["epoch"] < state["config"]["epochs"]:
        return None  # a training that was interrupted: get_judge resumes it
    return model.net, state["metrics"][-1]["accuracy"]


def find_judge(dataset, device="cpu"):
    """The cached classifier network of ``dataset``, trained to the end, or None."""
    found = _finished_judge(dataset, device)
    return None if found is None else found[0]


def get_judge(dataset, device="cpu", data_root=None, progress=True):
    """``(network, accuracy, how)``: the cached classifier of ``dataset``, trained there first if missing
    (or resumed, if its training was interrupted); ``how`` says which, for the user."""
    folder = judge_dir(dataset)
    if (folder / CHECKPOINT).exists():
        found = _finished_judge(dataset, device)
        if found is not None:  # trained to the end: no need to load the training data
            return found[0].eval(), found[1], f"found in {folder}"
        run = Run.resume(folder, device=device, data_root=data_root)
        run.train(progress=progress)
        how = f"training resumed and finished in {folder}"
    else:
        run = Run.start(folder, model="classifier", dataset=dataset, data_root=data_root, device=device,
                        **JUDGE)
        run.train(progress=progress)
        how = f"trained now ({run.epoch} epochs) and saved in {folder}"
    accuracy = run.metrics[-1]["accuracy"]
    return run.model.net.eval(), accuracy, how
