"""Run a chapter of the learning path (examples/learn/NN_*.py) in this process.

A chapter script has ``main(argv=None)``; ``run_chapter("04", "--out", dir)`` calls it through
``runpy`` as ``python examples/learn/04_convolution.py --out dir`` would, and returns what it
printed. The chapters that train on images read the tiny Fashion-MNIST files of
``tiny_data`` (written in the real IDX format), never the real set: ``no_real_data`` hides
it from every test here.
"""

import runpy
import sys
from pathlib import Path

import pytest

import tinygen.data.download
from tests.data_tests.files import write_idx_split
from tests.test_examples import data_dir, tiny_fashion_mnist  # noqa: F401 (data_dir is a fixture)
from tinygen.data import DATASETS

LEARN = Path(__file__).resolve().parents[2] / "examples" / "learn"


def chapter_path(number):
    """examples/learn/NN_*.py for the chapter number ``NN`` (a two-digit string)."""
    (path,) = LEARN.glob(f"{number}_*.py")
    return path


@pytest.fixture
def run_chapter(monkeypatch, capsys, tmp_path):
    def run(number, *args):
        path = chapter_path(number)
        argv = [str(path), *args]
        if "--out" not in args:
            argv += ["--out", str(tmp_path / f"chapter-{number}")]
        monkeypatch.setattr(sys, "argv", argv)
        runpy.run_path(str(path), run_name="__main__")
        return capsys.readouterr().out

    return run


@pytest.fixture(autouse=True)
def no_real_data(data_dir, monkeypatch):  # noqa: F811 (the imported fixture, used here)
    """No chapter test reads this machine's data sets, or the network: CI has neither."""

    def refuse(urls, path, check):
        raise OSError(f"the learning-path tests never download ({urls[0]})")

    monkeypatch.setattr(tinygen.data.download, "download", refuse)
    return data_dir


@pytest.fixture
def tiny_data(no_real_data, monkeypatch):
    """Fashion-MNIST-format files in the empty $TINYGEN_DATA: 128 training and 32 test images."""
    tiny_fashion_mnist(no_real_data, monkeypatch)
    _, _, digests = write_idx_split(str(no_real_data / "fashion-mnist"), "test", n=32)
    for name, digest in digests.items():
        monkeypatch.setitem(DATASETS["fashion-mnist"].sha256, name, digest)
    return no_real_data
