"""Training runs: outputs, checkpoints, and resume that is exact to the bit."""

import numpy as np
import pytest

import tinygen
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
    assert a.history == b.history
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
        ({"model": "gan"}, "model is 'gan', expected one of dcgan, vae"),
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
