"""The backend switch: device strings, array modules, clear errors when CUDA is missing, batch chunks."""

import numpy as np
import pytest

import tinygen
from tinygen import backend
from tinygen.errors import DeviceError


@pytest.mark.parametrize("spec, text", [("cpu", "cpu"), ("cuda", "cuda:0"), ("cuda:1", "cuda:1")])
def test_device_strings_parse(spec, text):
    assert str(backend.Device(spec)) == text
    assert backend.Device(spec) == text


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:0", "", 3])
def test_bad_device_strings_are_rejected_by_name(spec):
    with pytest.raises(DeviceError, match="device"):
        backend.Device(spec)


def test_get_array_module_and_device_of_numpy():
    a = np.ones(3)
    assert backend.get_array_module(a) is np
    assert backend.device_of(a) == "cpu"
    assert backend.to_device(a, "cpu") is a


@pytest.mark.skipif(backend.cuda_available(), reason="checks the message shown when CUDA is missing")
def test_cuda_without_cupy_or_gpu_says_what_is_missing():
    with pytest.raises(DeviceError, match="CuPy|GPU"):
        tinygen.zeros(2, device="cuda")
    with pytest.raises(DeviceError, match="CuPy|GPU"):
        tinygen.ones(2).to("cuda")


def test_twin_uses_the_xp_version_on_numpy():
    calls = []

    def _double(xp, a):
        calls.append(xp)
        return a * 2

    double = backend.twin(_double, cuda=lambda a: pytest.fail("CUDA twin called for a NumPy array"))
    np.testing.assert_array_equal(double(np.ones(2)), [2.0, 2.0])
    assert calls == [np]


# ----------------------------------------------------------------------------- batch chunks


def test_map_batch_covers_the_batch_in_order_in_chunks_of_bounded_size(monkeypatch):
    monkeypatch.setattr(backend, "CHUNK_BYTES", 1000)
    chunks = list(backend.map_batch(lambda rows: rows, 23, 300, np.zeros(1)))  # 3 items fit in 1000 bytes
    assert [(c.start, c.stop) for c in chunks] == [(i, min(i + 3, 23)) for i in range(0, 23, 3)]
    assert list(backend.map_batch(lambda rows: rows, 5, 1, np.zeros(1))) == [slice(0, 5)]
    assert list(backend.map_batch(lambda rows: rows, 2, 5000, np.zeros(1))) == [slice(0, 1), slice(1, 2)]
    assert list(backend.map_batch(pytest.fail, 0, 1, np.zeros(1))) == []
    # any other array (CuPy's on a GPU) is one chunk, whatever its size
    assert list(backend.map_batch(lambda rows: rows, 23, 300, object())) == [slice(0, 23)]


# ----------------------------------------------------------------------------- on a GPU


gpu = pytest.mark.gpu


@gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
def test_ops_on_cuda_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    results = []
    for device in ("cpu", "cuda"):
        x = tinygen.tensor(a, device=device, requires_grad=True)
        w = tinygen.tensor(b, device=device, requires_grad=True)
        loss = tinygen.nn.functional.log_softmax((x @ w).tanh(), 1).sum()
        loss.backward()
        assert x.device == device
        results.append((loss.item(), x.grad.numpy(), w.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-10)


@gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
def test_mixing_devices_names_them():
    with pytest.raises(DeviceError, match="cpu, cuda:0"):
        tinygen.ones(2) + tinygen.ones(2, device="cuda")
