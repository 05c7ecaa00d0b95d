"""Every CUDA source compiles with nvcc, for float and double, on a machine without a GPU.

The kernels are ``backend.CudaSource`` constants beside their NumPy twins; this test finds
every one in the package, lays each out as CuPy lays out an ``ElementwiseKernel``
(``backend.translation_unit``) and compiles them for sm_90, so that a syntax or type error in
a CUDA twin fails CI even where no GPU can run it. Skipped where nvcc is not installed.
"""

import importlib
import pkgutil
import shutil
import subprocess

import pytest

import tinygen
from tinygen import backend

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="needs nvcc (the CUDA compiler)")


def cuda_sources():
    """Every ``CudaSource`` defined at module level anywhere in tinygen, by name."""
    found = {}
    for info in pkgutil.walk_packages(tinygen.__path__, "tinygen."):
        if info.name.endswith("__main__"):  # running it would run the CLI
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, backend.CudaSource):
                found[value.name] = value
    return found


def compile_with_nvcc(text, folder):
    source = folder / "kernels.cu"
    source.write_text(text)
    return subprocess.run([NVCC, "-arch=sm_90", "-c", str(source), "-o", str(folder / "kernels.o")],
                          capture_output=True, text=True, timeout=300)


def test_the_kernels_are_found():
    assert {"tinygen_adam", "tinygen_amsgrad", "tinygen_bn_forward", "tinygen_bn_grad_x",
            "tinygen_col2im", "tinygen_lstm_forward", "tinygen_lstm_backward",
            "tinygen_leaky_relu", "tinygen_im2col"} <= set(cuda_sources())


def test_a_translation_unit_reads_as_cupy_lays_out_the_kernel():
    source = backend.CudaSource("T x, raw T w, int32 n", "T y", "y = x * w[i % n];", "demo")
    text = backend.translation_unit(source, "double")
    assert "typedef double T;" in text
    assert "const T& x = x_array[i];" in text and "T& y = y_array[i];" in text and "const T* w" in text


@needs_nvcc
@pytest.mark.parametrize("dtype", ["float", "double"])
def test_every_cuda_source_compiles(tmp_path, dtype):
    text = "\n".join(backend.translation_unit(source, dtype) for source in cuda_sources().values())
    done = compile_with_nvcc(text, tmp_path)
    assert done.returncode == 0, done.stderr


@needs_nvcc
def test_a_broken_source_fails_to_compile(tmp_path):
    """The check can fail: a type error in a body is reported by nvcc."""
    source = backend.CudaSource("T x", "T y", "y = x + undefined_name;", "tinygen_broken")
    done = compile_with_nvcc(backend.translation_unit(source), tmp_path)
    assert done.returncode != 0 and "undefined_name" in done.stderr
