"""The ``tinygen`` command: what it writes, and one clear line for every error."""

import os
import signal

import numpy as np
import pytest

import tinygen.trainer
from tests.cli_tests.conftest import tiny_images
from tinygen.cli import main
from tinygen.models import dcgan

TINY_ARGS = ["--nz", "8", "--ngf", "4", "--ndf", "4", "--batch-size", "8", "--sample-every", "0", "--quiet"]


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    """`tinygen train` loads its data through trainer.load_dataset: hand it the tiny set."""
    seen = []

    def fake_load_dataset(name, split, root=None, download=True):
        seen.append((name, split, root))
        return tiny_images()

    monkeypatch.setattr(tinygen.trainer, "load_dataset", fake_load_dataset)
    return seen


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_train_then_sample(tmp_path, capsys, tiny_data):
    out = tmp_path / "run"
    assert main(["train", "dcgan", "--out", str(out), "--epochs", "1", *TINY_ARGS]) == 0
    printed = capsys.readouterr().out
    assert str(out / "checkpoint.npz") in printed and str(out / "losses.png") in printed
    assert tiny_data == [("fashion-mnist", "train", None)]
    assert (out / "samples" / "epoch_001.png").exists()

    grid = tmp_path / "grid.png"
    argv = ["sample", "dcgan", "--checkpoint", str(out), "-n", "12", "--nrow", "4", "--out", str(grid)]
    assert main(argv) == 0
    assert grid.stat().st_size > 0
    walk = tmp_path / "walk.png"
    assert main(["sample", "dcgan", "--checkpoint", str(out / "checkpoint.npz"), "--interpolate",
                 "--out", str(walk)]) == 0
    assert "wrote 64 samples" in capsys.readouterr().out


def test_resume_continues_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dcgan", "--out", str(out), "--epochs", "1", *TINY_ARGS]) == 0
    assert main(["train", "dcgan", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert (out / "samples" / "epoch_002.png").exists()
    assert "resuming" in capsys.readouterr().err


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path, capsys, monkeypatch):
    steps = []

    def step_then_interrupt(*args, **kwargs):
        steps.append(1)
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C in the middle of a step
        return real_step(*args, **kwargs)

    real_step = dcgan.train_step
    monkeypatch.setattr(dcgan, "train_step", step_then_interrupt)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (not nohup)
    out = tmp_path / "run"
    try:
        assert main(["train", "dcgan", "--out", str(out), "--epochs", "3", *TINY_ARGS]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back
    finally:
        signal.signal(signal.SIGINT, before)
    assert "--resume" in capsys.readouterr().err
    state = tinygen.trainer.load_checkpoint(out / "checkpoint.npz")
    assert state["position"]["step"] == 2  # the step in flight finished; the next never started


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "gan"], "invalid choice: 'gan'"),
        (["train", "dcgan", "--epochs", "0"], "expected an integer >= 1, got 0"),
        (["train", "dcgan", "--batch-size", "x"], "invalid positive int value: 'x'"),
        (["train", "dcgan", "--out", "a", "--resume", "b"], "not allowed with argument"),
        (["train", "dcgan", "--lr", "-1", "--out", "{tmp}/r"], "lr is -1.0"),
        (["train", "dcgan", "--device", "gpu", "--out", "{tmp}/r"], "gpu"),
        (["train", "dcgan", "--resume", "{tmp}/missing"], "no checkpoint at"),
        (["sample", "dcgan"], "the following arguments are required: --checkpoint"),
        (["sample", "dcgan", "--checkpoint", "{tmp}/missing"], "no checkpoint at"),
        (["sample", "dcgan", "--checkpoint", "{tmp}/junk.npz"], "junk.npz"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_command_lines_exit_non_zero_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    status = main([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    assert status in (1, 2)
    error = one_error_line(capsys)
    assert error.startswith("tinygen")
    assert message in error


def test_an_existing_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dcgan", "--out", str(out), "--epochs", "1", *TINY_ARGS]) == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert main(["train", "dcgan", "--out", str(out), *TINY_ARGS]) == 1
    assert "already holds a run" in one_error_line(capsys)
    assert (out / "checkpoint.npz").read_bytes() == before


def test_resume_with_a_changed_setting_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dcgan", "--out", str(out), "--epochs", "1", *TINY_ARGS]) == 0
    capsys.readouterr()
    assert main(["train", "dcgan", "--resume", str(out), "--batch-size", "16"]) == 1
    assert "keeps its settings" in one_error_line(capsys)


def test_sample_is_reproducible_by_seed(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "dcgan", "--out", str(out), "--epochs", "1", *TINY_ARGS]) == 0
    paths = [tmp_path / f"{name}.png" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("1", "1", "2"), strict=True):
        assert main(["sample", "dcgan", "--checkpoint", str(out), "--seed", seed, "--out", str(path)]) == 0
    a, b, c = (np.frombuffer(p.read_bytes(), np.uint8) for p in paths)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


VAE_ARGS = ["--latent", "2", "--hidden", "16", "--batch-size", "8", "--sample-every", "0", "--eval-k", "2",
            "--eval-limit", "8", "--quiet"]


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path, capsys, monkeypatch):
    steps = []
    real_step = dcgan.train_step

    def step_then_terminate(*args, **kwargs):
        steps.append(1)
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler preempting the job
        return real_step(*args, **kwargs)

    monkeypatch.setattr(dcgan, "train_step", step_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    assert main(["train", "dcgan", "--out", str(out), "--epochs", "3", *TINY_ARGS]) == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before  # handler put back
    assert "tinygen train dcgan --resume" in capsys.readouterr().err
    assert tinygen.trainer.load_checkpoint(out / "checkpoint.npz")["position"]["step"] == 2


def test_models_lists_every_registered_model(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == ["dcgan", "cgan", "wgan-gp", "vae", "classifier", "pixelrnn"]


def test_each_model_has_its_own_flags(capsys):
    for argv in (["train", "vae", "--help"], ["train", "dcgan", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    vae_help, dcgan_help = capsys.readouterr().out.split("usage: tinygen train dcgan")
    assert "--latent" in vae_help and "--nz" not in vae_help and "(default 128)" in vae_help
    assert "--nz" in dcgan_help and "--latent" not in dcgan_help and "(default 64)" in dcgan_help


def test_train_sample_and_eval_a_vae(tmp_path, capsys):
    out = tmp_path / "vae"
    assert main(["train", "vae", "--out", str(out), "--epochs", "1", *VAE_ARGS]) == 0
    printed = capsys.readouterr().out
    assert "epoch 1, 8 test images: neg_elbo" in printed and str(out / "metrics.jsonl") in printed
    for flags in ([], ["--interpolate"], ["--manifold", "--nrow", "5"]):
        grid = tmp_path / f"grid{len(flags)}.png"
        assert main(["sample", "vae", "--checkpoint", str(out), "--out", str(grid), *flags]) == 0
        assert grid.stat().st_size > 0
    assert "wrote 25 samples" in capsys.readouterr().out
    assert main(["eval", "vae", "--checkpoint", str(out), "--k", "3", "--limit", "10", "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "fashion-mnist test split, the first 10 images, seed 0" in report
    assert "binarized once" in report
    figures = dict(line.split() for line in report.splitlines() if line.startswith("  "))
    assert set(figures) == {"neg_elbo", "nll_iwae", "bpd_elbo", "bpd_iwae", "k"} and figures["k"] == "3.0000"
    assert float(figures["nll_iwae"]) <= float(figures["neg_elbo"]) + 5  # as tight a bound, up to noise


def test_eval_of_a_dcgan_trains_the_judge_then_scores_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(tinygen.trainer.JUDGE, "batch_size", 16)
    out = tmp_path / "run"
    assert main(["train", "dcgan", "--out", str(out), "--epochs", "1", *TINY_ARGS]) == 0
    capsys.readouterr()
    assert main(["eval", "dcgan", "--checkpoint", str(out), "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "judge: the fashion-mnist classifier trained now (3 epochs)" in report
    assert "  fid " in report and "  classes_covered " in report


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "vae", "--nz", "3"], "unrecognized arguments: --nz 3"),
        (["train", "vae", "--arch", "rnn"], "invalid choice: 'rnn'"),
        (["train", "vae", "--hidden", "a,b"], "invalid comma-separated ints value: 'a,b'"),
        (["train", "vae", "--hidden", "0", "--out", "{tmp}/r"], "hidden is (0,)"),
        (["train", "vae", "--eval-k", "0"], "expected an integer >= 1, got 0"),
        (["eval", "vae", "--checkpoint", "{tmp}/missing"], "no checkpoint at"),
        (["eval", "vae", "--checkpoint", "{tmp}/dcgan"], "a 'dcgan' run, not 'vae'; use tinygen eval dcgan"),
        (["sample", "vae", "--checkpoint", "{tmp}/dcgan"], "holds a 'dcgan' run, not 'vae'"),
        (["sample", "dcgan", "--checkpoint", "{tmp}/dcgan", "--manifold"], "unrecognized arguments"),
        (["train", "vae", "--resume", "{tmp}/dcgan"], "holds a 'dcgan' run, not 'vae'"),
        (["sample", "vae", "--checkpoint", "{tmp}/vae", "--manifold"], "--manifold needs latent 2"),
    ],
)
def test_bad_model_command_lines_are_one_line(tmp_path, capsys, argv, message):
    assert main(["train", "dcgan", "--out", str(tmp_path / "dcgan"), "--epochs", "1", *TINY_ARGS]) == 0
    vae_argv = ["train", "vae", "--out", str(tmp_path / "vae"), "--epochs", "1", *VAE_ARGS, "--latent", "3"]
    assert main(vae_argv) == 0
    capsys.readouterr()
    status = main([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    assert status in (1, 2)
    error = one_error_line(capsys)
    assert error.startswith("tinygen") and message in error


CGAN_ARGS = ["--nz", "8", "--ngf", "4", "--ndf", "4", "--embed", "3", "--batch-size", "8",
             "--sample-every", "0", "--quiet"]


def test_cgan_samples_a_class_and_eval_fid_scores_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(tinygen.trainer.JUDGE, "batch_size", 16)
    out = tmp_path / "cgan"
    assert main(["train", "cgan", "--out", str(out), "--epochs", "1", *CGAN_ARGS]) == 0
    grid = tmp_path / "three.png"
    argv = ["sample", "cgan", "--checkpoint", str(out), "--class", "3", "-n", "16", "--out", str(grid)]
    assert main(argv) == 0
    assert grid.stat().st_size > 0 and "wrote 16 samples" in capsys.readouterr().out
    assert main(["eval", "fid", "--checkpoint", str(out), "-n", "40", "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "trained now" in report and "not comparable with Inception FIDs" in report
    figures = dict(line.split() for line in report.splitlines() if line.startswith("  "))
    assert set(figures) == {"fid", "classes_covered", "class_entropy", "class_accuracy"}
    assert main(["eval", "cgan", "--checkpoint", str(out), "-n", "40", "--quiet"]) == 0
    assert "judge: the fashion-mnist classifier found in" in capsys.readouterr().out  # the cached one


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "cgan", "--checkpoint", "{tmp}/cgan", "--class", "12"], "--class is 12, expected 0 .. 9"),
        (["eval", "fid", "--checkpoint", "{tmp}/vae"], "holds a 'vae' run; eval fid scores a GAN's samples"),
        (["train", "wgan-gp", "--critic-norm", "batch", "--out", "{tmp}/w"], "critic_norm is 'batch'"),
        (["train", "wgan-gp", "--critic-norm", "group"], "invalid choice: 'group'"),
        (["train", "cgan", "--class", "3"], "unrecognized arguments: --class 3"),
    ],
)
def test_bad_gan_command_lines_are_one_line(tmp_path, capsys, argv, message):
    assert main(["train", "cgan", "--out", str(tmp_path / "cgan"), "--epochs", "1", *CGAN_ARGS]) == 0
    assert main(["train", "vae", "--out", str(tmp_path / "vae"), "--epochs", "1", *VAE_ARGS]) == 0
    capsys.readouterr()
    status = main([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    assert status in (1, 2)
    error = one_error_line(capsys)
    assert error.startswith("tinygen") and message in error
