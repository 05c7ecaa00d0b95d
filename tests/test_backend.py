"""The backend switch: device strings, array modules, clear errors when CUDA is missing."""

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


def test_array_module_and_on_device_make_arrays_where_asked():
    assert backend.array_module(backend.CPU) is np
    with backend.on_device(backend.CPU):
        assert isinstance(np.zeros(2), backend.ARRAY_TYPES)
    assert not isinstance([0.0], backend.ARRAY_TYPES)
    backend.synchronize("cpu")  # nothing queued on a CPU: returns at once


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
