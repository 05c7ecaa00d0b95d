"""save/load: nested round trips with dtypes, no pickle, atomic writes, clear errors on bad files."""

import os
import zipfile

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen import backend, serialization
from tinygen.errors import CheckpointError
from tinygen.nn.modules.container import Sequential
from tinygen.nn.modules.linear import Linear
from tinygen.optim.adam import Adam
from tinygen.serialization import load, save


def test_nested_round_trip_keeps_types_and_dtypes(tmp_path):
    obj = {
        "tensors": [
            tinygen.tensor(np.arange(6, dtype=dtype).reshape(2, 3)) for dtype in (np.float16, np.float32)
        ],
        "count": tinygen.tensor(np.array(7, dtype=np.int64)),  # 0-d int64, like num_batches_tracked
        "mask": tinygen.tensor(np.array([True, False])),
        "array": np.arange(4, dtype=np.uint8),
        "empty": np.zeros((0, 3), dtype=np.float64),
        "scalar": np.float32(2.5),
        "python": (None, True, 3, 2.5, float("inf"), "naïve ✓", 2**100),
        "nested": {1: {"deep": [[], {}, ()]}, "k": [1, [2, [3]]]},
    }
    save(obj, tmp_path / "ckpt.npz")
    back = load(tmp_path / "ckpt.npz")
    assert list(back) == list(obj)
    for ours, theirs in zip(back["tensors"], obj["tensors"], strict=True):
        assert isinstance(ours, tinygen.Tensor) and ours.dtype == theirs.dtype and ours.device == "cpu"
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert back["count"].dtype == np.int64 and back["count"].shape == () and back["count"].item() == 7
    assert back["mask"].dtype == np.bool_
    assert type(back["array"]) is np.ndarray and back["array"].dtype == np.uint8
    assert back["empty"].shape == (0, 3)
    assert type(back["scalar"]) is np.float32 and back["scalar"] == 2.5
    assert back["python"] == obj["python"] and isinstance(back["python"], tuple)
    assert back["nested"] == obj["nested"]  # int keys stay ints, tuples stay tuples


def test_training_checkpoint_round_trip(tmp_path):
    model = Sequential(Linear(3, 4), Linear(4, 2))
    opt = Adam(model.parameters(), lr=0.01)
    model(tinygen.randn(5, 3)).sum().backward()
    opt.step()
    rng_state = tinygen.default_generator.get_state()
    save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "rng": rng_state},
        tmp_path / "c",
    )
    back = load(tmp_path / "c")
    assert back["epoch"] == 3 and back["rng"] == rng_state
    fresh = Sequential(Linear(3, 4), Linear(4, 2))
    fresh.load_state_dict(back["model"])
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    fresh_opt = Adam(fresh.parameters())
    fresh_opt.load_state_dict(back["optimizer"])
    assert fresh_opt.param_groups[0]["lr"] == 0.01 and fresh_opt.state_dict()["state"][0]["step"] == 1


def test_path_is_used_exactly_as_given(tmp_path):
    """Unlike numpy.savez, no ".npz" is appended: load takes the same path save was given."""
    save({"a": 1}, tmp_path / "model.ckpt")
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt"]
    assert load(str(tmp_path / "model.ckpt")) == {"a": 1}
    assert zipfile.is_zipfile(tmp_path / "model.ckpt")  # still an ordinary .npz inside


def test_file_holds_no_pickle(tmp_path):
    save({"w": tinygen.ones(2)}, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["__tinygen__", "t0"]
        assert all(archive[name].dtype != object for name in archive.files)


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        ({"a": [1, {"b": {1, 2}}]}, "obj\\['a'\\]\\[1\\]\\['b'\\] is a set"),
        ({"model": Linear(2, 2)}, "obj\\['model'\\] is a Linear"),
        ({"x": {(1, 2): 3}}, "obj\\['x'\\] has a key \\(1, 2\\) of type tuple"),
        ({"objs": np.array([None, 1])}, "obj\\['objs'\\] is an array of Python objects"),
        (b"bytes", "obj is a bytes"),
    ],
)
def test_unsupported_objects_name_their_key_path(tmp_path, obj, where):
    with pytest.raises(TypeError, match=where):
        save(obj, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save({"epoch": 1, "w": tinygen.ones(3)}, path)
    before = path.read_bytes()

    def crash_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(serialization.numpy, "savez", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save({"epoch": 2, "w": tinygen.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]  # no temp file left
    assert load(path)["epoch"] == 1


def test_failed_rename_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save({"epoch": 1}, path)

    def no_rename(src, dst):
        raise KeyboardInterrupt  # e.g. Ctrl-C between writing and renaming

    monkeypatch.setattr(serialization.os, "replace", no_rename)
    with pytest.raises(KeyboardInterrupt):
        save({"epoch": 2}, path)
    monkeypatch.undo()
    assert load(path) == {"epoch": 1} and os.listdir(tmp_path) == ["c.npz"]


def test_truncated_and_corrupted_files_give_a_clear_error(tmp_path):
    path = tmp_path / "c.npz"
    save({"w": tinygen.ones(1000)}, path)
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "garbage": b"\x80\x04not a zip at all",
        "flipped": data[:200] + bytes([data[200] ^ 0xFF]) + data[201:],  # caught by the zip CRC
    }
    for name, content in cases.items():
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(content)
        with pytest.raises(
            CheckpointError, match="not a readable tinygen checkpoint|not a tinygen checkpoint"
        ):
            load(bad)
    assert issubclass(CheckpointError, ValueError)


def test_other_files_are_rejected(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a tinygen checkpoint \\(no __tinygen__ entry\\)"):
        load(tmp_path / "plain.npz")
    np.save(tmp_path / "array.npy", np.zeros(2))
    with pytest.raises(CheckpointError):
        load(tmp_path / "array.npy")
    save({"w": np.zeros(1)}, tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        meta = archive["__tinygen__"]
    np.savez(tmp_path / "pickled.npz", __tinygen__=meta, t0=np.array([None, print]))  # pickle inside
    with pytest.raises(CheckpointError, match="allow_pickle=False"):
        load(tmp_path / "pickled.npz")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load(tmp_path / "missing.npz")


DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_, np.complex64]


@given(
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_shape_and_dtype_round_trips(tmp_path_factory, shape, dtype, seed):
    values = np.random.default_rng(seed).standard_normal(shape) * 100
    array = np.asarray(values).astype(dtype)  # a 0-d array, not a NumPy scalar
    path = tmp_path_factory.mktemp("ckpt") / "c.npz"
    save({"t": tinygen.tensor(array), "a": array}, path)
    back = load(path)
    for result in (back["t"].numpy(), back["a"]):
        assert result.dtype == array.dtype and result.shape == array.shape
        np.testing.assert_array_equal(result, array)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
def test_cuda_tensors_are_saved_and_come_back_on_the_cpu(tmp_path):
    values = np.arange(6.0).reshape(2, 3)
    save(
        {"t": tinygen.tensor(values, device="cuda"), "a": tinygen.tensor(values, device="cuda").data},
        tmp_path / "c",
    )
    back = load(tmp_path / "c")
    assert back["t"].device == "cpu" and type(back["a"]) is np.ndarray
    np.testing.assert_array_equal(back["t"].numpy(), values)
    np.testing.assert_array_equal(back["a"], values)
