"""Draw every figure of the learning path, from the code the chapters run.

    python examples/learn/figures.py                  # into docs/images/learn/
    python examples/learn/figures.py --out /tmp/figs  # somewhere else
    python examples/learn/figures.py --only 04 08     # some chapters only

Each chapter script in this folder that has pictures defines ``draw_figures(out)``, which
writes its PNGs into the folder ``out`` and returns their paths. This script imports each
chapter in turn and calls it, so a figure is always drawn by the code its page describes
and cannot drift from it. ``make figures`` runs this.
"""

import argparse
import importlib.util
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parents[1] / "docs" / "images" / "learn"


def chapters():
    """The chapter scripts, in reading order: ``01_autodiff.py``, ``02_...``."""
    return sorted(path for path in HERE.glob("[0-9][0-9]_*.py"))


def load(path):
    """Import a chapter script as a module (its ``main`` does not run)."""
    spec = importlib.util.spec_from_file_location(f"chapter_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs")
    parser.add_argument("--only", nargs="+", metavar="NN", help="chapter numbers to draw")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for path in chapters():
        if args.only and path.name[:2] not in args.only:
            continue
        module = load(path)
        if not hasattr(module, "draw_figures"):
            continue
        start = time.perf_counter()
        paths = module.draw_figures(args.out)
        print(f"{path.name}: {len(paths)} figure(s) in {time.perf_counter() - start:.1f} s")
        drawn.extend(paths)
    for figure in drawn:
        print(f"  {figure}")
    return drawn


if __name__ == "__main__":
    main()
