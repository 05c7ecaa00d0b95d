#!/usr/bin/env bash
# Everything that needs a GPU, in one call of the lent device machine (CuPy and CUDA torch there):
#   1. the tests marked gpu (tinygen on CuPy against tinygen on NumPy, resume on cuda);
#   2. `tinygen train dcgan --device cuda` on Fashion-MNIST ($TINYGEN_DATA), grids and plot to $OUT;
#   3. the DCGAN step timed against PyTorch on the same GPU;
#   4. every other model trained a few hundred steps with --device cuda;
#   5. the conv kernels' forward + backward against cuDNN at batch 64 and 512;
#   6. with nsys present, the DCGAN step's kernel launches (CUDA API summary).
# Usage there: bash benchmarks/gpu_check.sh  (writes logs under $OUT, default /tmp/gpu_check).
# STEPS picks parts (default 123456): the whole is about 8 minutes, above one device call's
# limit with the start-up, so run STEPS=123 and then STEPS=456 in two calls.
# The data: $TINYGEN_DATA, default ./.gpudata (git-ignored): copy the Fashion-MNIST train and test files
# into .gpudata/fashion-mnist/ here and name .gpudata in the device call's carry list.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" CI=true
OUT=${OUT:-/tmp/gpu_check}
STEPS=${STEPS:-123456}
want() { [[ $STEPS == *$1* ]]; }
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"

if want 1; then
echo "== 1. gpu tests"
timeout "${TEST_S:-240}" python3 -m pytest -q -m gpu -p no:cacheprovider tests \
    2>&1 | tee "$OUT/pytest_gpu.log" | tail -60
fi

if want 2; then
echo "== 2. tinygen train dcgan --device cuda"
SECONDS=0
TINYGEN_DATA=${TINYGEN_DATA:-$PWD/.gpudata} timeout "${TRAIN_S:-150}" python3 -m tinygen train dcgan --device cuda --epochs 1 --limit "${LIMIT:-60000}" \
    --seed 0 --sample-every 0 --out "$OUT/run" 2>&1 | tr '\r' '\n' | tail -6
echo "train exit ${PIPESTATUS[0]} after ${SECONDS}s"
fi

if want 3; then
echo "== 3. DCGAN step on the GPU, tinygen (CuPy) against torch (CUDA)"
timeout "${BENCH_S:-120}" python3 benchmarks/bench_dcgan.py --device cuda --no-breakdown --repeat 10 2>&1 | tail -14
fi

if want 4; then
echo "== 4. every other model on --device cuda (a short run each)"
for model in vae cgan wgan-gp pixelrnn classifier; do
    SECONDS=0
    TINYGEN_DATA=${TINYGEN_DATA:-$PWD/.gpudata} timeout "${MODEL_S:-40}" python3 -m tinygen train "$model" \
        --device cuda --epochs 1 --limit "${MODEL_LIMIT:-6400}" --seed 0 --sample-every 0 \
        --out "$OUT/run-$model" 2>&1 | tr '\r' '\n' | grep -v '^$' | tail -3
    echo "$model exit ${PIPESTATUS[0]} after ${SECONDS}s"
done
fi

if want 5; then
echo "== 5. conv forward + backward against cuDNN, batch 64 and 512"
for batch in 64 512; do
    timeout "${CONV_S:-60}" python3 benchmarks/bench_conv.py --device cuda --batch "$batch" --repeat 10 2>&1 | tail -16
done
fi

if want 6; then
echo "== 6. kernel launches of the DCGAN step"
if command -v nsys >/dev/null; then
    timeout "${NSYS_S:-90}" nsys profile -o "$OUT/dcgan" --force-overwrite true --stats=true \
        python3 benchmarks/bench_dcgan.py --device cuda --no-breakdown --repeat 3 --cases "mnist 28x28x1 b64" \
        2>&1 | grep -E -A14 "cuda_api_sum|CUDA API Statistics" | head -40
else
    echo "nsys is not installed: no launch count"
fi
fi
