"""The ``tinygen`` command: train a model, sample from a checkpoint.

    tinygen train dcgan --dataset fashion-mnist --epochs 5 --out runs/fashion --seed 0
    tinygen train dcgan --resume runs/fashion --epochs 10        # continue, exactly
    tinygen sample dcgan --checkpoint runs/fashion -n 64 --out grid.png
    tinygen sample dcgan --checkpoint runs/fashion --interpolate --out walk.png

Ctrl-C during training saves a checkpoint between two steps and exits (status 130);
``--resume`` picks it up. Every error is one line on stderr and a non-zero status: 2 for a
bad command line, 1 for anything else (missing data, an unreadable checkpoint, ...).
"""

import argparse
import signal
import sys
from pathlib import Path

import numpy

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """A bad command line, reported as one line with status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``tinygen train: error: ...``) instead of the usage block."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


_positive.__name__ = "positive int"  # argparse names the type in "invalid ... value" errors
_non_negative.__name__ = "non-negative int"


def build_parser():
    parser = Parser(prog="tinygen", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser("train", help="train a model (writes samples, a loss plot, checkpoints)")
    train.add_argument("model", choices=["dcgan"])
    train.add_argument("--dataset", help="fashion-mnist (default), mnist or cifar10")
    train.add_argument("--data-root", help="a folder holding the data set's files (searched first)")
    train.add_argument("--limit", type=_non_negative, help="train on the first N images only (default: all)")
    train.add_argument("--epochs", type=_positive, help="epochs in all, counting those done (default 1)")
    train.add_argument("--batch-size", type=_positive, help="default 64")
    train.add_argument("--device", help="cpu (default), cuda or cuda:N")
    train.add_argument("--seed", type=_non_negative, help="default 0; fixes the whole run")
    train.add_argument("--nz", type=_positive, help="noise size (default 100)")
    train.add_argument("--ngf", type=_positive, help="generator width (default 64)")
    train.add_argument("--ndf", type=_positive, help="discriminator width (default 64)")
    train.add_argument("--lr", type=float, help="Adam learning rate (default 2e-4)")
    train.add_argument("--sample-every", type=_non_negative, help="steps between sample grids (default 500)")
    where = train.add_mutually_exclusive_group()
    where.add_argument("--out", help="run folder to create (default runs/dcgan-<dataset>)")
    where.add_argument("--resume", metavar="RUN", help="continue the run saved in this folder")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    sample = commands.add_parser("sample", help="write a grid of samples from a checkpoint")
    sample.add_argument("model", choices=["dcgan"])
    sample.add_argument("--checkpoint", required=True, help="a run folder or its checkpoint.npz")
    sample.add_argument("-n", type=_positive, default=64, help="number of images (default 64)")
    sample.add_argument("--nrow", type=_positive, default=8, help="images per row (default 8)")
    sample.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
    sample.add_argument("--seed", type=_non_negative, default=0, help="default 0")
    sample.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    sample.add_argument(
        "--interpolate", action="store_true",
        help="each row walks the noise space between two random points (spherical interpolation)",
    )
    return parser


def _train(args):
    from tinygen.trainer import Run

    names = ("dataset", "data_root", "limit", "epochs", "batch_size", "device", "seed", "nz", "ngf", "ndf",
             "lr", "sample_every")
    settings = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.resume:
        run = Run.resume(args.resume, **settings)
        print(f"resuming {run.out} at epoch {run.epoch + 1}, step {run.step}", file=sys.stderr)
    else:
        out = args.out or f"runs/dcgan-{settings.get('dataset', 'fashion-mnist')}"
        run = Run.start(out, **settings)

    interrupted = []

    def on_interrupt(signum, frame):  # finish the step in flight, then save and stop
        interrupted.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # a background job (nohup) ignores Ctrl-C: keep it so
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        outcome = run.train(should_stop=lambda: bool(interrupted), progress=not args.quiet)
    finally:
        signal.signal(signal.SIGINT, previous)

    print(f"sample grids: {run.samples_dir}/")
    print(f"loss plot:    {run.loss_plot_path}")
    print(f"checkpoint:   {run.checkpoint_path}")
    if outcome == "stopped":
        print(f"interrupted at epoch {run.epoch + 1}, step {run.step}; continue with: "
              f"tinygen train dcgan --resume {run.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _sample(args):
    from tinygen.data import save_image
    from tinygen.trainer import generate, generator_from_checkpoint, slerp

    G = generator_from_checkpoint(args.checkpoint, device=args.device)
    rng = numpy.random.default_rng(args.seed)
    if args.interpolate:
        rows = max(1, args.n // args.nrow)
        ends = rng.standard_normal((2, rows, G.nz))
        t = numpy.linspace(0.0, 1.0, args.nrow)
        z = numpy.concatenate([slerp(ends[0][[r]], ends[1][[r]], t) for r in range(rows)])
    else:
        z = rng.standard_normal((args.n, G.nz))
    path = save_image(generate(G, z), Path(args.out), nrow=args.nrow)
    print(f"wrote {len(z)} samples to {path}")
    return 0


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from tinygen.errors import CheckpointError, DataFormatError, DatasetNotFoundError

    try:
        args = build_parser().parse_args(argv)
        return _train(args) if args.command == "train" else _sample(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tinygen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (DatasetNotFoundError, DataFormatError, CheckpointError, ValueError, TypeError, OSError) as error:
        print(f"tinygen: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def entry_point():
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
