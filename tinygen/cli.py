"""The ``tinygen`` command: train any registered model, sample from it, evaluate it.

    tinygen models                                                 # what can be trained
    tinygen train dcgan --dataset fashion-mnist --epochs 5 --out runs/fashion --seed 0
    tinygen train dcgan --resume runs/fashion --epochs 10          # continue, exactly
    tinygen sample dcgan --checkpoint runs/fashion -n 64 --out grid.png
    tinygen sample dcgan --checkpoint runs/fashion --interpolate --out walk.png
    tinygen train vae --epochs 10 --out runs/vae
    tinygen eval vae --checkpoint runs/vae --k 5000 --limit 1000

Each model's own flags appear in ``tinygen train MODEL --help`` (and ``sample``/``eval``):
the parsers are built from ``tinygen.models.MODELS``. Ctrl-C or SIGTERM during training
saves a checkpoint between two steps and exits (status 130 or 143); ``--resume`` picks it up.
Every error is one line on stderr and a non-zero status: 2 for a bad command line, 1 for
anything else (missing data, an unreadable checkpoint, ...).
"""

import argparse
import signal
import sys
from pathlib import Path

import numpy

EXIT_ERROR, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """A bad command line, reported as one line with status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``tinygen train: error: ...``) instead of the usage block,
    and no flag may be abbreviated (``--class`` must not quietly mean ``--classes``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _counter(low):
    def parse(text):
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text}")
        return value

    parse.__name__ = "positive int" if low == 1 else "non-negative int" if low == 0 else "int"
    return parse  # argparse names the type in "invalid ... value" errors


def _add_setting(parser, key, setting, default):
    """A ``--key`` flag for one ``Setting``; its default shows in the help, the value is None if not given."""
    flags = ["--" + key.replace("_", "-")]
    if len(key) == 1:
        flags.insert(0, "-" + key)  # -n and --n, -k and --k
    if setting.kind == "flag":
        parser.add_argument(*flags, action="store_true", default=None, help=setting.help)
        return
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    help_text = setting.help if default is None else f"{setting.help} (default {shown})"
    if setting.kind == "choice":
        parser.add_argument(*flags, choices=setting.choices, help=help_text)
        return
    if setting.kind == "int":
        kind = _counter(setting.low)
    else:
        name = {"widths": "comma-separated ints", "str": "str"}.get(setting.kind, "number")
        kind = _named(setting.parse, name)
    parser.add_argument(*flags, type=kind, metavar=key.upper(), help=help_text)


def _named(parse, name):
    def wrapped(text):
        return parse(text)

    wrapped.__name__ = name
    return wrapped


def _model_parsers(commands, command, help_text, extra=()):
    """``tinygen COMMAND MODEL``: one sub-parser per registered model (and per ``(name, help)`` of
    ``extra``); returns ``{name: parser}``."""
    from tinygen.models import MODELS

    parser = commands.add_parser(command, help=help_text)
    models = parser.add_subparsers(dest="model", required=True, parser_class=Parser, metavar="MODEL")
    named = [(name, recipe.summary) for name, recipe in MODELS.items()] + list(extra)
    return {name: models.add_parser(name, help=summary) for name, summary in named}


def build_parser():
    from tinygen.models import MODELS
    from tinygen.models.gan import GANRecipe
    from tinygen.trainer import RUN_SETTINGS, defaults

    parser = Parser(prog="tinygen", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands.add_parser("models", help="list the models tinygen can train")

    trains = _model_parsers(commands, "train", "train a model (samples, plots, metrics, checkpoints)")
    for name, train in trains.items():
        recipe, values = MODELS[name], defaults(name)
        for key, setting in {**RUN_SETTINGS, **recipe.settings}.items():
            if key != "model":
                _add_setting(train, key, setting, values[key])
        where = train.add_mutually_exclusive_group()
        where.add_argument("--out", help=f"run folder to create (default runs/{name}-<dataset>)")
        where.add_argument("--resume", metavar="RUN", help="continue the run saved in this folder")
        train.add_argument("--quiet", action="store_true", help="no progress bar")

    samples = _model_parsers(commands, "sample", "write a grid of samples from a checkpoint")
    for name, sample in samples.items():
        _add_checkpoint_flags(sample)
        sample.add_argument("-n", type=_counter(1), default=64, help="number of images (default 64)")
        sample.add_argument("--nrow", type=_counter(1), default=8, help="images per row (default 8)")
        sample.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
        for key, setting in MODELS[name].sample_settings.items():
            _add_setting(sample, key, setting, setting.default)

    fid = ("fid", "the domain FID and class coverage of any GAN's checkpoint (as eval dcgan/cgan/wgan-gp)")
    evaluates = _model_parsers(commands, "eval", "evaluate a checkpoint on the test split", [fid])
    for name, evaluate in evaluates.items():
        _add_checkpoint_flags(evaluate)
        evaluate.add_argument("--limit", type=_counter(0), default=0,
                              help="the first N test images only (default: all)")
        evaluate.add_argument("--data-root", help="a folder holding the data set's files (searched first)")
        evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
        table = GANRecipe.eval_settings if name == "fid" else MODELS[name].eval_settings
        for key, setting in table.items():
            _add_setting(evaluate, key, setting, setting.default)
    return parser


def _add_checkpoint_flags(parser):
    parser.add_argument("--checkpoint", required=True, help="a run folder or its checkpoint.npz")
    parser.add_argument("--seed", type=_counter(0), default=0, help="default 0")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")


def _given(args, table):
    return {key: getattr(args, key) for key in table if getattr(args, key, None) is not None}


def _models(args):
    from tinygen.models import MODELS

    for name, recipe in MODELS.items():
        print(f"{name:11s} {recipe.summary}")
    return 0


def _train(args):
    from tinygen.models import MODELS
    from tinygen.trainer import RUN_SETTINGS, Run

    settings = {**_given(args, RUN_SETTINGS), **_given(args, MODELS[args.model].settings)}
    settings["model"] = args.model
    if args.resume:
        run = Run.resume(args.resume, **settings)
        print(f"resuming {run.out} at epoch {run.epoch + 1}, step {run.step}", file=sys.stderr)
    else:
        out = args.out or f"runs/{args.model}-{settings.get('dataset', RUN_SETTINGS['dataset'].default)}"
        run = Run.start(out, **settings)

    received = []

    def on_signal(signum, frame):  # finish the step in flight, then save and stop
        received.append(signum)
        # a second Ctrl-C stops at once; a second SIGTERM ends the process
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:  # a background job (nohup) ignores Ctrl-C: keep it so
            signal.signal(signum, on_signal)
    try:
        outcome = run.train(should_stop=lambda: bool(received), progress=not args.quiet)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    print(f"sample grids: {run.samples_dir}/")
    print(f"loss plot:    {run.loss_plot_path}")
    if run.metrics:
        print(f"metrics:      {run.metrics_path}")
    print(f"checkpoint:   {run.checkpoint_path}")
    if outcome == "stopped":
        print(f"interrupted at epoch {run.epoch + 1}, step {run.step}; continue with: "
              f"tinygen train {args.model} --resume {run.out}", file=sys.stderr)
        return 128 + (received[0] if received else signal.SIGINT)
    return 0


def _check_model(model, args):
    if model.name != args.model:
        raise ValueError(f"{args.checkpoint} holds a {model.name!r} run, not {args.model!r}; "
                         f"use tinygen {args.command} {model.name}")


def _sample(args):
    from tinygen.data import save_image
    from tinygen.trainer import model_from_checkpoint

    model, _ = model_from_checkpoint(args.checkpoint, device=args.device)
    _check_model(model, args)
    options = _given(args, type(model).sample_settings)
    images = model.sample(args.n, numpy.random.default_rng(args.seed), nrow=args.nrow, **options)
    path = save_image(images, Path(args.out), nrow=args.nrow, value_range=model.value_range)
    print(f"wrote {len(images)} samples to {path}")
    return 0


def _eval(args):
    from tinygen.models.gan import GANRecipe
    from tinygen.trainer import evaluate_checkpoint, get_judge, model_from_checkpoint

    model, state = model_from_checkpoint(args.checkpoint)
    if args.model == "fid":
        if not isinstance(model, GANRecipe):
            raise ValueError(f"{args.checkpoint} holds a {model.name!r} run; eval fid scores a GAN's samples")
    else:
        _check_model(model, args)
    options = _given(args, type(model).eval_settings)
    if isinstance(model, GANRecipe):  # the judge: found in the user cache, or trained there now
        dataset = state["config"]["dataset"]
        judge, accuracy, how = get_judge(dataset, args.device, args.data_root, progress=not args.quiet)
        print(f"judge: the {dataset} classifier {how}; test accuracy {accuracy:.4f}")
        options["judge"] = judge
    model, test, figures = evaluate_checkpoint(args.checkpoint, args.device, args.limit, args.seed,
                                               args.data_root, progress=not args.quiet, **options)
    config = state["config"]
    subset = f"the first {len(test)}" if args.limit else f"all {len(test)}"
    epoch = state["position"]["epoch"]
    print(f"{model.name} from {args.checkpoint}, epoch {epoch}: {config['dataset']} test split, "
          f"{subset} images, seed {args.seed}")
    if model.eval_protocol:
        print(model.eval_protocol)
    if not figures:
        print(f"{model.name} has no evaluation figures yet")
    for key, value in figures.items():
        print(f"  {key:10s} {value:.4f}")
    return 0


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from tinygen.errors import CheckpointError, DataFormatError, DatasetNotFoundError

    try:
        args = build_parser().parse_args(argv)
        return {"models": _models, "train": _train, "sample": _sample, "eval": _eval}[args.command](args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tinygen: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except (DatasetNotFoundError, DataFormatError, CheckpointError, ValueError, TypeError, OSError) as error:
        print(f"tinygen: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def entry_point():
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
