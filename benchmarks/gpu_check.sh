#!/usr/bin/env bash
# Everything that needs a GPU, in one call of the lent device machine (CuPy and CUDA torch there):
#   1. the tests marked gpu (tinygen on CuPy against tinygen on NumPy, resume on cuda);
#   2. `tinygen train dcgan --device cuda` on Fashion-MNIST ($TINYGEN_DATA), grids and plot to $OUT;
#   3. the DCGAN step timed against PyTorch on the same GPU.
# Usage there: bash benchmarks/gpu_check.sh  (writes logs under $OUT, default /tmp/gpu_check).
# The data: $TINYGEN_DATA, default ./.gpudata (git-ignored): copy the Fashion-MNIST train files
# into .gpudata/fashion-mnist/ here and name .gpudata in the device call's carry list.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" CI=true
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"

echo "== 1. gpu tests"
timeout "${TEST_S:-240}" python3 -m pytest -q -m gpu -p no:cacheprovider \
    tests/test_cuda.py tests/test_backend.py tests/test_serialization.py tests/nn_tests/test_module.py \
    tests/optim_tests/test_optim.py 2>&1 | tee "$OUT/pytest_gpu.log" | tail -60

echo "== 2. tinygen train dcgan --device cuda"
SECONDS=0
TINYGEN_DATA=${TINYGEN_DATA:-$PWD/.gpudata} timeout "${TRAIN_S:-150}" python3 -m tinygen train dcgan --device cuda --epochs 1 --limit "${LIMIT:-60000}" \
    --seed 0 --sample-every 0 --out "$OUT/run" 2>&1 | tr '\r' '\n' | tail -6
echo "train exit ${PIPESTATUS[0]} after ${SECONDS}s"

echo "== 3. DCGAN step on the GPU, tinygen (CuPy) against torch (CUDA)"
timeout "${BENCH_S:-120}" python3 benchmarks/bench_dcgan.py --device cuda --no-breakdown --repeat 10 2>&1 | tail -14
