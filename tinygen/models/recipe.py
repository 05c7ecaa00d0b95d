"""``Recipe``: what a model tells the one training run, and ``Setting``, one of its knobs.

A model module under ``tinygen/models/`` exports one ``Recipe`` subclass; ``registry.MODELS``
lists them and the command line is built from it. The run (``tinygen/trainer.py``) owns the
loop, checkpoints, resume, signals, progress, grids, plots and metrics files; a recipe owns
the math and never writes a file. This is Keras's single ``train_step`` override over one
explicit loop, with Chainer's save-by-name (``model:NAME``, ``optimizer:NAME``)::

    class MyModel(Recipe):
        name = "mine"
        settings = {"width": Setting(64, "layer width", low=1)}

        def __init__(self, config, image_shape):          # build on the CPU, draw the init
            super().__init__(config, image_shape)
            self.modules = {"net": Net(config["width"])}
            self.optimizers = {"net": Adam(self.modules["net"].parameters())}

        def train_step(self, batch):                        # exactly one batch per call
            images, labels = batch
            ...
            return {"loss": loss.item()}

Everything random a step needs comes from tinygen's default generator, which the run seeds,
checkpoints and restores: so ``train_step`` consuming one batch per call is all a recipe does
for bit-exact resume. A model with an inner schedule keeps its counter in ``state_dict``.
"""

import dataclasses
import numbers


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its default, a line of help, and what values it takes.

    ``kind`` is ``"int"`` (with ``low``, inclusive), ``"float"`` (with ``low``, inclusive),
    ``"positive"`` (a float > 0), ``"fraction"`` (a float in [0, 1)), ``"choice"`` (one of
    ``choices``), ``"widths"`` (a tuple of ints >= 1, written ``200,200`` on the command
    line), ``"flag"`` (True or False) or ``"str"`` (any string, checked elsewhere).
    """

    default: object
    help: str
    kind: str = "int"
    low: float = 0
    choices: tuple = ()

    def check(self, owner, key, value):
        """``value`` in its normal form (widths as a tuple), or a ValueError naming ``key``."""
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < self.low:
                raise ValueError(f"{owner}: {key} is {value!r}, expected an int >= {self.low}")
            return int(value)
        if self.kind in ("float", "positive", "fraction"):
            is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if self.kind == "positive" and not (is_number and value > 0):
                raise ValueError(f"{owner}: {key} is {value!r}, expected a positive number")
            if self.kind == "fraction" and not (is_number and 0 <= value < 1):
                raise ValueError(f"{owner}: {key} is {value!r}, expected a number in [0, 1)")
            if self.kind == "float" and not (is_number and value >= self.low):
                raise ValueError(f"{owner}: {key} is {value!r}, expected a number >= {self.low}")
            return float(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{owner}: {key} is {value!r}, expected one of {', '.join(self.choices)}")
            return value
        if self.kind == "widths":
            widths = tuple(value) if isinstance(value, (list, tuple)) else (value,)
            if not widths or any(isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1
                                 for w in widths):
                raise ValueError(f"{owner}: {key} is {value!r}, expected one or more ints >= 1")
            return tuple(int(w) for w in widths)
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise ValueError(f"{owner}: {key} is {value!r}, expected True or False")
            return value
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{owner}: {key} is {value!r}, expected a string")
        return value

    def parse(self, text):
        """The value of ``text`` from a command line (argparse's ``type``); ValueError if malformed."""
        if self.kind == "int":
            return int(text)
        if self.kind in ("float", "positive", "fraction"):
            return float(text)
        if self.kind == "widths":
            return tuple(int(part) for part in text.split(","))
        return text


def check_count(owner, name, value):
    """``value`` as an int >= 1, or a clear error naming ``name`` (a layer width, a size, k)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {name} is {value}, expected an int >= 1")
    return int(value)


def check_settings(owner, table, values):
    """Every entry of ``values`` checked against ``table`` (unknown names are a TypeError)."""
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise TypeError(f"{owner}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(table)}")
    return {key: table[key].check(owner, key, value) for key, value in values.items()}


class Recipe:
    """A model as the training run sees it. Subclasses set the class attributes and the methods.

    Class attributes:

    - ``name``, ``summary``: the registry key (``tinygen train NAME``) and one line for ``tinygen models``.
    - ``settings``: the model's own ``Setting`` table (its ``tinygen train`` flags);
      ``run_defaults`` changes defaults of the run's settings (e.g. ``batch_size``).
    - ``sample_settings``, ``eval_settings``: the flags of ``tinygen sample NAME`` and ``tinygen eval NAME``.
    - ``value_range``, ``binarize``: how the loader presents images (``DataLoader``'s arguments);
      ``value_range`` is also the range of the images the grids show.
    - ``uses_test_split``: ``fixed_inputs`` needs the test split (held-out images to reconstruct),
      so the run loads it at the start; otherwise it is loaded when ``evaluate`` first needs it.
    - ``panels``, ``metric_panels``: ``(label, keys)`` per panel of the history and metrics plots;
      keys not named get a panel each.
    - ``eval_protocol``: one line saying how ``evaluate`` treats the data (binarization, ...).

    Methods beyond the step: ``check_data`` refuses a training set the model cannot use,
    ``can_evaluate`` says whether ``evaluate`` has what it needs yet (a GAN's judge), and
    ``state_dict``/``load_state_dict`` carry the recipe's own state (a critic's counter).

    Attributes an instance sets: ``modules`` and ``optimizers``, dicts by name (the
    checkpoint's keys). An optimizer built before ``to(device)`` keeps working: ``Module.to``
    moves parameters in place.
    """

    name = ""
    summary = ""
    settings = {}
    run_defaults = {}
    sample_settings = {}
    eval_settings = {}
    value_range = (0.0, 1.0)
    binarize = False
    uses_test_split = False
    panels = ()
    metric_panels = ()
    eval_protocol = ""

    def __init__(self, config, image_shape):
        self.config = config
        self.image_shape = tuple(image_shape)
        self.modules = {}
        self.optimizers = {}

    @classmethod
    def check_config(cls, config):
        """Checks across settings, after each one is checked alone; raise ValueError to refuse."""

    def check_data(self, data):
        """Refuse a training set the model cannot use (labels out of range, ...) with a ValueError."""

    def to(self, device):
        for module in self.modules.values():
            module.to(device)
        return self

    def train(self, mode=True):
        for module in self.modules.values():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def device(self):
        module = next(iter(self.modules.values()))
        return next(iter(module.parameters())).device

    def train_step(self, batch):
        """One update on ``batch = (images, labels)``; returns a dict of Python floats."""
        raise NotImplementedError(f"{type(self).__name__}.train_step")

    def fixed_inputs(self, test, n):
        """NumPy arrays by name that the sample grids reuse all run long (drawn once, saved)."""
        return {}

    def grids(self, fixed):
        """``{kind: images}`` to write as grids; kind ``""`` is the main grid (``samples/<name>.png``),
        another is written as ``samples/<kind>_<name>.png``. Images are NumPy ``(N, C, H, W)``."""
        return {}

    def sample(self, n, rng, nrow=8, **options):
        """``n`` images for ``tinygen sample`` (a NumPy ``(n, C, H, W)`` array), drawn from ``rng``."""
        raise NotImplementedError(f"{type(self).__name__}.sample")

    def can_evaluate(self):
        """Whether ``evaluate`` has what it needs now (a GAN's judge may not be trained yet)."""
        return True

    def evaluate(self, test, progress=False, **options):
        """Figures on the test split (an ImageDataset) as a dict of floats; none by default."""
        return {}

    def state_dict(self):
        """State of the recipe's own beyond modules and optimizers (a counter, ...)."""
        return {}

    def load_state_dict(self, state):
        pass
