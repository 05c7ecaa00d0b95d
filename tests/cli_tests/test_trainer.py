"""Training runs: outputs, checkpoints, and resume that is exact to the bit."""

import json

import numpy as np
import pytest

import tinygen
import tinygen.trainer
from tests.cli_tests.conftest import TINY
from tinygen.errors import CheckpointError
from tinygen.models.dcgan import generate, slerp
from tinygen.trainer import Run, generator_from_checkpoint, load_checkpoint


def _arrays(state_dict):
    return {key: value.numpy() for key, value in state_dict.items()}


def _optimizer_arrays(opt):
    state = opt.state_dict()["state"]
    return {(i, name): np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            for i, entry in state.items() for name, value in entry.items()}


def assert_same_run(a, b):
    assert a.model.modules.keys() == b.model.modules.keys()
    assert a.model.optimizers.keys() == b.model.optimizers.keys()
    for name in a.model.modules:
        left, right = _arrays(a.model.modules[name].state_dict()), _arrays(b.model.modules[name].state_dict())
        assert left.keys() == right.keys()
        for key in left:
            np.testing.assert_array_equal(left[key], right[key], err_msg=key)
    for name in a.model.optimizers:
        left, right = _optimizer_arrays(a.model.optimizers[name]), _optimizer_arrays(b.model.optimizers[name])
        assert left.keys() == right.keys()
        for key in left:
            np.testing.assert_array_equal(left[key], right[key], err_msg=str(key))
    assert a.history.keys() == b.history.keys()
    for key in a.history:  # NaN (a WGAN's loss_g before its first generator step) equals NaN here
        np.testing.assert_array_equal(a.history[key], b.history[key], err_msg=key)
    assert a.metrics == b.metrics
    assert (a.epoch, a.batch, a.step) == (b.epoch, b.batch, b.step)


def test_a_run_writes_samples_loss_plot_and_checkpoint(tmp_path, squares):
    run = Run.start(tmp_path / "run", data=squares, epochs=2, **TINY)
    assert run.train(progress=False) == "finished"
    assert (run.epoch, run.batch, run.step) == (2, 0, 2 * (48 // 8))
    for path in (run.checkpoint_path, run.loss_plot_path, run.samples_dir / "epoch_001.png",
                 run.samples_dir / "epoch_002.png"):
        assert path.stat().st_size > 0, path
    state = load_checkpoint(run.checkpoint_path)
    assert state["position"] == {"epoch": 2, "batch": 0, "step": 12}
    assert len(state["history"]["loss_d"]) == 12
    assert np.isfinite(state["history"]["loss_g"]).all()


def test_sample_grids_every_n_steps(tmp_path, squares):
    run = Run.start(tmp_path / "run", data=squares, epochs=1, **{**TINY, "sample_every": 2})
    run.train(progress=False)
    names = sorted(p.name for p in run.samples_dir.iterdir())
    assert names == ["epoch_001.png", "step_000002.png", "step_000004.png", "step_000006.png"]


@pytest.mark.parametrize("stop_after", [1, 4, 6, 7])  # mid-epoch, end of an epoch, first of the next
def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, squares, stop_after):
    whole = Run.start(tmp_path / "whole", data=squares, epochs=2, **TINY)
    whole.train(progress=False)

    first = Run.start(tmp_path / "split", data=squares, epochs=2, **TINY)
    assert first.train(max_steps=stop_after, progress=False) == "stopped"
    tinygen.manual_seed(1234)  # whatever happens to the global stream in between must not matter
    tinygen.randn(10)
    resumed = Run.resume(tmp_path / "split", data=squares)
    assert resumed.step == stop_after
    assert resumed.train(progress=False) == "finished"
    assert_same_run(whole, resumed)


def test_resume_can_extend_the_epochs(tmp_path, squares):
    whole = Run.start(tmp_path / "whole", data=squares, epochs=3, **TINY)
    whole.train(progress=False)
    short = Run.start(tmp_path / "short", data=squares, epochs=1, **TINY)
    short.train(progress=False)
    longer = Run.resume(tmp_path / "short", data=squares, epochs=3)
    longer.train(progress=False)
    assert_same_run(whole, longer)


def test_should_stop_saves_between_steps(tmp_path, squares):
    run = Run.start(tmp_path / "run", data=squares, epochs=1, **TINY)
    calls = []
    assert run.train(should_stop=lambda: calls.append(1) or len(calls) >= 3, progress=False) == "stopped"
    assert load_checkpoint(run.checkpoint_path)["position"]["step"] == 3


def test_start_refuses_a_folder_that_holds_a_run(tmp_path, squares):
    Run.start(tmp_path / "run", data=squares, epochs=1, **TINY).train(max_steps=1, progress=False)
    before = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a run"):
        Run.start(tmp_path / "run", data=squares, **TINY)
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == before  # nothing lost


def test_resume_refuses_changed_settings_and_missing_runs(tmp_path, squares):
    Run.start(tmp_path / "run", data=squares, epochs=1, **TINY).train(max_steps=1, progress=False)
    with pytest.raises(ValueError, match="--batch-size is 16 but the run .* used 8"):
        Run.resume(tmp_path / "run", data=squares, batch_size=16)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        Run.resume(tmp_path / "nothing", data=squares)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        Run.resume(tmp_path / "junk.npz", data=squares)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epochs": 0}, "epochs is 0, expected an int >= 1"),
        ({"batch_size": 2.5}, "batch_size is 2.5"),
        ({"lr": -1.0}, "lr is -1.0"),
        ({"beta1": 1.0}, "beta1 is 1.0"),
        ({"model": "gan"}, "model is 'gan', expected one of dcgan, cgan, wgan-gp, vae, classifier"),
        ({"device": "tpu"}, "tpu"),
        ({"batch_size": 100}, "larger than the 48 training images"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path, squares, settings, message):
    with pytest.raises(ValueError, match=message):
        Run.start(tmp_path / "run", data=squares, **{**TINY, **settings})


def test_unknown_setting_is_a_type_error(tmp_path, squares):
    with pytest.raises(TypeError, match="unknown setting.*epoch"):
        Run.start(tmp_path / "run", data=squares, epoch=3)


def test_generator_from_checkpoint_rebuilds_the_trained_generator(tmp_path, squares):
    run = Run.start(tmp_path / "run", data=squares, epochs=1, **TINY)
    run.train(progress=False)
    G = generator_from_checkpoint(tmp_path / "run")
    z = np.random.default_rng(0).standard_normal((5, 8))
    np.testing.assert_array_equal(G(tinygen.tensor(z.astype(np.float32))).numpy(), generate(run.model.G, z))


def test_slerp_stays_on_the_arc_and_hits_the_ends():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal((2, 1, 100))
    t = np.linspace(0, 1, 9)
    path = slerp(z0, z1, t)
    np.testing.assert_allclose(path[0], z0[0], atol=1e-12)
    np.testing.assert_allclose(path[-1], z1[0], atol=1e-12)
    # with |z0| == |z1| the norm stays constant along the arc
    z1 = z1 / np.linalg.norm(z1) * np.linalg.norm(z0)
    np.testing.assert_allclose(np.linalg.norm(slerp(z0, z1, t), axis=1), np.linalg.norm(z0), rtol=1e-12)


# ---------------------------------------------------------------------------------- any model
VAE_TINY = {"model": "vae", "latent": 2, "hidden": (16,), "batch_size": 8, "sample_every": 0, "eval_k": 4}


def test_a_vae_run_writes_grids_metrics_and_trains(tmp_path, squares):
    test = squares[:16]
    run = Run.start(tmp_path / "vae", data=squares, test_data=test, epochs=3, **VAE_TINY)
    assert run.train(progress=False) == "finished"
    names = sorted(p.name for p in run.samples_dir.iterdir())
    assert names == sorted(f"{kind}epoch_00{e}.png" for e in (1, 2, 3)
                           for kind in ("", "reconstructions_", "interpolation_", "manifold_"))
    lines = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert lines[0]["test_images"] == 16 and lines[0]["k"] == 4.0
    assert lines[-1]["nll_iwae"] < lines[0]["nll_iwae"]  # it learns
    assert (run.out / "metrics.png").stat().st_size > 0
    losses = np.asarray(run.history["loss"]).reshape(3, -1).mean(1)
    assert losses[-1] < losses[0]
    assert set(run.history) == {"loss", "recon", "kl"}


@pytest.mark.parametrize("settings", [{}, {"objective": "iwae", "k": 3}, {"arch": "conv", "width": 2}])
def test_an_interrupted_vae_run_resumes_exactly(tmp_path, squares, settings):
    test = squares[:8]
    config = {**VAE_TINY, **settings}
    whole = Run.start(tmp_path / "whole", data=squares, test_data=test, epochs=2, **config)
    whole.train(progress=False)
    first = Run.start(tmp_path / "split", data=squares, test_data=test, epochs=2, **config)
    first.train(max_steps=4, progress=False)
    tinygen.randn(7)  # the global stream moves on in between
    resumed = Run.resume(tmp_path / "split", data=squares, test_data=test)
    resumed.train(progress=False)
    assert_same_run(whole, resumed)
    assert whole.metrics_path.read_bytes() == resumed.metrics_path.read_bytes()


def test_evaluation_leaves_the_training_stream_alone(tmp_path, squares):
    run = Run.start(tmp_path / "vae", data=squares, test_data=squares[:8], **VAE_TINY)
    before = tinygen.default_generator.get_state()
    first = run.evaluate()
    assert tinygen.default_generator.get_state() == before
    assert run.evaluate() == first  # its own stream: the same figures every time


def test_a_checkpoint_every_few_minutes_survives_a_crash(tmp_path, squares):
    run = Run.start(tmp_path / "run", data=squares, epochs=1, **{**TINY, "checkpoint_every": 1e-9})
    steps = []

    def crash_at_step_three():
        steps.append(1)
        if len(steps) == 3:
            raise RuntimeError("the machine went away")
        return False

    with pytest.raises(RuntimeError):
        run.train(should_stop=crash_at_step_three, progress=False)
    assert load_checkpoint(run.checkpoint_path)["position"]["step"] == 2  # saved after step 2
    assert Run.resume(tmp_path / "run", data=squares).step == 2


def as_version_1(state):
    """A version 2 DCGAN checkpoint written back in version 1's layout (the one before models by name)."""
    added = ("checkpoint_every", "eval_limit")
    config = {key: value for key, value in state["config"].items() if key not in added}
    return {
        "format": "tinygen-run", "version": 1, "config": config,
        "image": {"channels": state["image_shape"][0], "image_size": state["image_shape"][1]},
        "generator": state["models"]["generator"], "discriminator": state["models"]["discriminator"],
        "opt_g": state["optimizers"]["generator"], "opt_d": state["optimizers"]["discriminator"],
        "position": state["position"], "rng": state["rng"], "data_rng": state["data_rng"],
        "data_rng_epoch_start": state["data_rng_epoch_start"], "fixed_noise": state["fixed"]["noise"],
        "history": state["history"],
    }


def test_a_version_1_checkpoint_loads_and_resumes_exactly(tmp_path, squares):
    whole = Run.start(tmp_path / "whole", data=squares, epochs=2, **TINY)
    whole.train(progress=False)
    old = Run.start(tmp_path / "old", data=squares, epochs=2, **TINY)
    old.train(max_steps=3, progress=False)
    tinygen.save(as_version_1(load_checkpoint(old.checkpoint_path)), old.checkpoint_path)
    assert tinygen.load(old.checkpoint_path)["version"] == 1
    resumed = Run.resume(tmp_path / "old", data=squares)
    resumed.train(progress=False)
    assert_same_run(whole, resumed)


@pytest.mark.parametrize("version, message", [(3, "written by a newer tinygen"), ("x", "an unknown")])
def test_a_checkpoint_of_another_version_is_one_clear_error(tmp_path, squares, version, message):
    run = Run.start(tmp_path / "run", data=squares, epochs=1, **TINY)
    run.train(max_steps=1, progress=False)
    state = load_checkpoint(run.checkpoint_path)
    tinygen.save({**state, "version": version}, run.checkpoint_path)
    with pytest.raises(CheckpointError, match=message):
        Run.resume(tmp_path / "run", data=squares)


def test_resume_refuses_another_model(tmp_path, squares):
    Run.start(tmp_path / "run", data=squares, epochs=1, **TINY).train(max_steps=1, progress=False)
    with pytest.raises(ValueError, match="a 'dcgan' run, not 'vae'; resume it with tinygen train dcgan"):
        Run.resume(tmp_path / "run", data=squares, model="vae")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"hidden": (0,)}, "hidden is \\(0,\\), expected one or more ints >= 1"),
        ({"objective": "mle"}, "objective is 'mle', expected one of elbo, iwae"),
        ({"lr": 0}, "lr is 0, expected a positive number"),
        ({"nz": 8}, "unknown setting\\(s\\) nz"),  # a DCGAN setting means nothing to the VAE
        ({"checkpoint_every": -1}, "checkpoint_every is -1, expected a number >= 0"),
    ],
)
def test_bad_vae_settings_name_the_setting(tmp_path, squares, settings, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Run.start(tmp_path / "run", data=squares, test_data=squares, **{**VAE_TINY, **settings})


# ---------------------------------------------------------------------------------- GAN variants
GAN_TINY = {
    "cgan": {"model": "cgan", "nz": 8, "ngf": 4, "ndf": 4, "embed": 3, "batch_size": 8, "sample_every": 0},
    "wgan-gp": {"model": "wgan-gp", "nz": 8, "ngf": 4, "ndf": 4, "n_critic": 3, "batch_size": 8,
                "sample_every": 0},
}


@pytest.mark.parametrize("model", ["cgan", "wgan-gp"])
@pytest.mark.parametrize("stop_after", [4, 7])  # mid-schedule of the critic, and in the second epoch
def test_an_interrupted_gan_variant_resumes_exactly(tmp_path, squares, model, stop_after):
    whole = Run.start(tmp_path / "whole", data=squares, epochs=2, **GAN_TINY[model])
    whole.train(progress=False)
    first = Run.start(tmp_path / "split", data=squares, epochs=2, **GAN_TINY[model])
    first.train(max_steps=stop_after, progress=False)
    tinygen.randn(3)
    resumed = Run.resume(tmp_path / "split", data=squares)
    resumed.train(progress=False)
    assert_same_run(whole, resumed)
    assert whole.model.state_dict() == resumed.model.state_dict()


def test_gan_variants_learn_on_a_tiny_set(tmp_path, squares):
    cgan_run = Run.start(tmp_path / "cgan", data=squares, epochs=3, **{**GAN_TINY["cgan"], "lr": 1e-3})
    cgan_run.train(progress=False)
    loss_d = np.asarray(cgan_run.history["loss_d"])
    assert loss_d[-6:].mean() < loss_d[:6].mean()  # D learns to tell real pairs from fake ones
    names = sorted(p.name for p in cgan_run.samples_dir.iterdir())
    assert names == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]

    wgan = Run.start(tmp_path / "wgan", data=squares, epochs=3, **{**GAN_TINY["wgan-gp"], "lr": 1e-3})
    wgan.train(progress=False)
    estimate = np.asarray(wgan.history["wasserstein"])
    assert estimate[-6:].mean() > estimate[:6].mean()  # the critic's estimate of W1 grows as it learns
    assert set(wgan.history) == {"loss_c", "wasserstein", "penalty", "loss_g"}


def test_a_gan_run_scores_itself_once_the_judge_is_trained(tmp_path, squares):
    run = Run.start(tmp_path / "dcgan", data=squares, test_data=squares[:24], epochs=1, **TINY)
    run.train(progress=False)
    assert not run.metrics_path.exists()  # no judge yet: no figures, and no classifier trained by surprise
    judge = Run.start(tinygen.trainer.judge_dir("fashion-mnist"), model="classifier", data=squares,
                      test_data=squares[:24], epochs=1, batch_size=16, eval_limit=0)
    judge.train(progress=False)
    run = Run.resume(tmp_path / "dcgan", data=squares, test_data=squares[:24], epochs=2)
    run.train(progress=False)
    (line,) = [json.loads(text) for text in run.metrics_path.read_text().splitlines()]
    assert line["epoch"] == 2 and line["test_images"] == 24
    assert line["fid"] >= 0 and 1 <= line["classes_covered"] <= 10


def test_wgan_gp_refuses_a_batch_norm_critic(tmp_path, squares):
    with pytest.raises(ValueError, match="critic_norm is 'batch': batch norm makes each sample's gradient"):
        Run.start(tmp_path / "run", data=squares, **{**GAN_TINY["wgan-gp"], "critic_norm": "batch"})


def test_cgan_refuses_labels_beyond_its_classes(tmp_path, squares):
    with pytest.raises(ValueError, match="labels go up to 9, expected 0 .. classes-1 = 4"):
        Run.start(tmp_path / "run", data=squares, **{**GAN_TINY["cgan"], "classes": 5})
