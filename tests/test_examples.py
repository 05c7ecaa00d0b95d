"""The examples run end to end, on tiny files in the real formats (never the real data sets)."""

import pathlib
import runpy
import sys

import pytest

import tinygen.data.load
from tests.data_tests.files import tiny_cifar_batches, write_cifar_archive, write_idx_split
from tinygen.data import DATASETS

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty $TINYGEN_DATA; no user cache and no Debian package, whatever this machine has."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("TINYGEN_DATA", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(tinygen.data.load, "DEBIAN_FASHION_MNIST", str(tmp_path / "no-debian"))
    return folder


def tiny_fashion_mnist(folder, monkeypatch, n=128):
    _, _, digests = write_idx_split(str(folder / "fashion-mnist"), "train", n=n)
    for name, digest in digests.items():
        monkeypatch.setitem(DATASETS["fashion-mnist"].sha256, name, digest)


def run_example(name, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_train_dcgan_example(data_dir, tmp_path, monkeypatch, capsys):
    tiny_fashion_mnist(data_dir, monkeypatch)
    run_example("train_dcgan.py", monkeypatch, "--limit", "128", "--out", str(tmp_path / "out"))
    out = capsys.readouterr().out
    assert "epoch 1 step 2/2" in out
    assert (tmp_path / "out" / "epoch_001.png").stat().st_size > 0


def test_train_wgan_gp_example(data_dir, tmp_path, monkeypatch, capsys):
    tiny_fashion_mnist(data_dir, monkeypatch)
    # Batches of 16: 8 critic steps, so the generator steps once (at the 5th) before the last line.
    run_example("train_wgan_gp.py", monkeypatch, "--limit", "128", "--batch-size", "16",
                "--out", str(tmp_path / "out"))
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("epoch 1 step 8/8"))
    assert "critic" in line and "W1 estimate" in line and "penalty" in line
    assert "nan" not in line  # the generator has stepped, so its loss is a number
    assert (tmp_path / "out" / "epoch_001.png").stat().st_size > 0


def test_train_vae_example(data_dir, tmp_path, monkeypatch, capsys):
    tiny_fashion_mnist(data_dir, monkeypatch)
    # The example scores the test split too; 32 images fill its 4 rows of 8 reconstructions.
    _, _, digests = write_idx_split(str(data_dir / "fashion-mnist"), "test", n=32)
    for name, digest in digests.items():
        monkeypatch.setitem(DATASETS["fashion-mnist"].sha256, name, digest)
    run_example("train_vae.py", monkeypatch, "--limit", "128", "--batch-size", "64",
                "--out", str(tmp_path / "out"))
    out = capsys.readouterr().out
    assert "epoch 1 step 2/2" in out
    assert "test -ELBO" in out and "-L_100" in out
    assert (tmp_path / "out" / "epoch_001.png").stat().st_size > 0
    assert (tmp_path / "out" / "reconstructions_001.png").stat().st_size > 0


def test_seed_dcgan_fixed_on_fashion_mnist_padded_to_32(data_dir, tmp_path, monkeypatch, capsys):
    tiny_fashion_mnist(data_dir, monkeypatch)
    run_example("seed_dcgan_fixed.py", monkeypatch, "--batch-size", "32", "--limit", "64",
                "--out", str(tmp_path / "out"))
    out = capsys.readouterr().out
    assert "training on fashion-mnist: 64 images of (1, 32, 32)" in out
    assert "epoch 1 step 2/2" in out
    assert (tmp_path / "out" / "epoch_001.png").exists()


def test_seed_dcgan_fixed_prefers_cifar10(data_dir, tmp_path, monkeypatch, capsys):
    digest = write_cifar_archive(str(data_dir / "cifar-10-python.tar.gz"), tiny_cifar_batches(n=4))
    monkeypatch.setitem(DATASETS["cifar10"].sha256, "cifar-10-python.tar.gz", digest)
    run_example("seed_dcgan_fixed.py", monkeypatch, "--batch-size", "8", "--out", str(tmp_path / "out"))
    out = capsys.readouterr().out
    assert "training on cifar10: 20 images of (3, 32, 32)" in out
    assert "epoch 1 step 2/2" in out


def test_train_mlp_example(monkeypatch, capsys):
    run_example("train_mlp.py", monkeypatch, "--steps", "250")
    assert "step  250" in capsys.readouterr().out
