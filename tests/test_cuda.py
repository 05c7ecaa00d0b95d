"""The same kernels, models and runs on a GPU (CuPy) as on the CPU (NumPy).

Every test here carries the ``gpu`` marker and is skipped without CuPy and a CUDA
device. In float64, CuPy's results differ from NumPy's only by the order of the
additions (cuBLAS against OpenBLAS, CUB's reductions against NumPy's), so outputs and
every gradient are compared to round-off.
"""

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as F
from tests.cli_tests.conftest import TINY, tiny_images
from tests.cli_tests.test_trainer import assert_same_run
from tests.test_examples import data_dir, run_example, tiny_fashion_mnist  # noqa: F401  (data_dir: a fixture)
from tinygen import backend, nn, optim
from tinygen.cli import main
from tinygen.kernels import batch_norm, im2col, lstm_cell
from tinygen.models import dcgan
from tinygen.ops import reduce
from tinygen.optim import adam
from tinygen.testing import gradcheck, gradgradcheck
from tinygen.trainer import Run

GPU = "cuda"  # the device every test compares with the CPU

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device"),
]


def assert_close(gpu, cpu, what=""):
    """Equal to float64 round-off, relative to the largest value of the CPU result."""
    scale = max(float(np.abs(cpu).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-11 * scale, err_msg=what)


def forward_backward(device, fn, arrays, params=()):
    """``fn``'s outputs and the gradients of a random projection of them, on ``device``.

    Float arrays become tensors that require grad; integer arrays stay plain indices.
    ``params`` are module parameters, moved to ``device`` by the caller; their grads come too.
    """
    inputs = [tinygen.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
    for p in params:
        p.grad = None
    outputs = fn(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    rng = np.random.default_rng(1)
    loss = sum((o * tinygen.tensor(rng.standard_normal(o.shape), device=device)).sum() for o in outputs)
    loss.backward()
    assert all(o.device == backend.device(device) for o in outputs)
    wrt = [x for x in inputs if x.requires_grad] + list(params)
    return [o.numpy() for o in outputs] + [x.grad.numpy() for x in wrt]


def assert_same_on_both(fn, arrays, module=None):
    """``fn(*arrays)`` forward and backward on the CPU, then on the GPU: the same numbers."""
    params = list(module.parameters()) if module is not None else []
    cpu = forward_backward("cpu", fn, arrays, params)
    if module is not None:
        module.to(GPU)
    gpu = forward_backward(GPU, fn, arrays, params)
    assert len(cpu) == len(gpu)
    for i, (g, c) in enumerate(zip(gpu, cpu, strict=True)):
        assert_close(g, c, f"result {i}")


def on(x, array):
    """``array`` as a constant tensor on ``x``'s device."""
    return tinygen.tensor(array, device=x.device)


def randn(*shape, seed=0):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape)


TARGETS = np.random.default_rng(0).uniform(size=(8, 3))
KERNELS = {
    "conv2d groups stride dilation": (
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
        [randn(2, 4, 9, 8), randn(6, 2, 3, 3, seed=1), randn(6, seed=2)],
    ),
    "conv2d channels last": (  # 32 channels per group: the pixel-major column layout
        lambda x, w: F.conv2d(x, w, stride=2, padding=1),
        [randn(3, 32, 7, 6), randn(8, 32, 4, 4, seed=1)],
    ),
    "conv_transpose2d output_padding": (
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        [randn(2, 4, 5, 5), randn(4, 3, 4, 4, seed=1), randn(3, seed=2)],
    ),
    "conv_transpose2d groups dilation": (
        lambda x, w: F.conv_transpose2d(x, w, stride=2, groups=2, dilation=2),
        [randn(2, 4, 4, 3), randn(4, 3, 3, 3, seed=1)],
    ),
    "batch_norm eval (N, C)": (
        lambda x, w, b: F.batch_norm(x, on(x, np.arange(5.0)), on(x, np.full(5, 2.0)), w, b),
        [randn(6, 5), randn(5, seed=1), randn(5, seed=2)],
    ),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1), [randn(2, 3, 9, 8)]),
    "max_pool2d dilation ceil": (
        lambda x: F.max_pool2d(x, 2, 2, 0, dilation=2, ceil_mode=True), [randn(2, 3, 9, 8)],
    ),
    "avg_pool2d": (
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [randn(2, 3, 9, 8)],
    ),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (4, 5), w, b), [randn(3, 4, 5), randn(4, 5), randn(4, 5)]),
    "embedding padding_idx": (
        lambda w, i: F.embedding(i, w, padding_idx=1),
        [randn(7, 3), np.array([[0, 1, 2, 2], [6, 1, 0, 5]])],
    ),
    "embedding scale_grad_by_freq": (
        lambda w, i: F.embedding(i, w, scale_grad_by_freq=True),
        [randn(7, 3), np.array([[0, 3, 3, 3], [6, 1, 0, 5]])],
    ),
    "linear": (F.linear, [randn(4, 6), randn(3, 6), randn(3)]),
    "lstm_cell": (
        lambda x, h, c, w_ih, w_hh, b_ih, b_hh: F.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh),
        [randn(4, 3), randn(4, 5), randn(4, 5, seed=1),
         randn(20, 3), randn(20, 5), randn(20), randn(20, seed=1)],
    ),
    "bce_with_logits": (
        lambda x: F.binary_cross_entropy_with_logits(x, on(x, TARGETS)),
        [randn(8, 3)],
    ),
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t), [randn(8, 5), np.array([0, 4, 1, 1, 3, 2, 0, 4])]),
    "log_softmax tanh leaky_relu": (
        lambda x: F.leaky_relu(F.log_softmax(x.tanh(), 1), 0.2), [randn(5, 7)],
    ),
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernel_on_gpu_matches_cpu(name):
    fn, arrays = KERNELS[name]
    assert_same_on_both(fn, arrays)


@pytest.mark.parametrize(
    "shape, groups, kernel, stride, padding, dilation",
    [((2, 4, 7, 6), 2, (3, 3), (2, 1), (1, 1), (1, 2)),  # channels first, groups, dilation
     ((3, 32, 5, 6), 1, (4, 4), (2, 2), (1, 1), (1, 1)),  # channels last
     ((1, 34, 6, 5), 2, (2, 3), (1, 2), (0, 2), (2, 1)),
     ((2, 3, 9, 9), 3, (3, 2), (3, 2), (2, 1), (1, 1))],
)  # fmt: skip
def test_im2col_and_col2im_cuda_twins_are_the_xp_versions_to_the_bit(
    shape, groups, kernel, stride, padding, dilation
):
    cupy = backend.cupy
    out_size = im2col.conv_output_size(shape[2:], kernel, stride, padding, dilation)
    x = cupy.asarray(randn(*shape))
    cols_t = im2col.im2col(x, kernel, out_size, stride, padding, dilation, groups)
    for size in (out_size, (out_size[0] - 1, out_size[1])):  # and fewer rows, as output_padding asks
        got = im2col.im2col(x, kernel, size, stride, padding, dilation, groups)
        expected = im2col._im2col(cupy, x, kernel, size, stride, padding, dilation, groups)
        assert got.shape == expected.shape and got.strides == expected.strides
        np.testing.assert_array_equal(got.get(), expected.get())
    cols_t += cupy.asarray(np.random.default_rng(2).standard_normal(cols_t.shape))  # any values
    expected = im2col._col2im(cupy, cols_t, shape, kernel, out_size, stride, padding, dilation)
    got = im2col.col2im(cols_t, shape, kernel, out_size, stride, padding, dilation)
    np.testing.assert_array_equal(got.get(), expected.get())
    rows = cupy.full((4, *shape[1:]), np.nan)  # ``out=``: a view, written in full
    im2col.col2im(cols_t, shape, kernel, out_size, stride, padding, dilation, out=rows[1 : 1 + shape[0]])
    np.testing.assert_array_equal(rows[1 : 1 + shape[0]].get(), expected.get())
    assert np.isnan(rows[0].get()).all()


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_cuda_twin_matches_the_xp_version(amsgrad, dtype):
    cupy = backend.cupy
    arrays = [cupy.asarray(randn(5, 4, seed=s).astype(dtype)) for s in range(4)]
    arrays[3] = abs(arrays[3])  # the moments' second is >= 0
    max_sq = cupy.asarray(abs(randn(5, 4, seed=9)).astype(dtype)) if amsgrad else None
    options = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, step=3)
    fused = [a.copy() for a in arrays] + [None if max_sq is None else max_sq.copy()]
    adam._adam_step(cupy, *arrays, max_sq, **options)
    adam.adam_step(*fused, **options)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for got, expected in zip(fused, [*arrays, max_sq], strict=True):
        if expected is not None:
            assert got.dtype == dtype
            np.testing.assert_allclose(got.get(), expected.get(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1, maximize=True, amsgrad=True),
])  # fmt: skip
def test_adam_steps_on_gpu_match_cpu(make):
    results = []
    for device in ("cpu", GPU):
        param = nn.Parameter(tinygen.tensor(randn(6, 3), device=device))
        opt = make([param])
        for step in range(4):
            param.grad = tinygen.tensor(randn(6, 3, seed=step + 1), device=device)
            opt.step()
        results.append(param.numpy())
    assert_close(results[1], results[0])


def test_batch_norm_cuda_twins_match_the_xp_versions():
    cupy = backend.cupy
    a, b = cupy.asarray(randn(4, 3, 10)), cupy.asarray(randn(4, 3, 10, seed=1))
    for args in ((a,), (a, b)):
        assert_close(reduce.channel_sum(*args).get(), reduce._channel_sum(cupy, *args).get())
    rows, other = a.reshape(4, 30), b.reshape(4, 30)
    per_channel = [cupy.asarray(randn(3, seed=s)) for s in range(3)]
    for bias in (per_channel[1], None):
        expected = batch_norm._bn_forward(cupy, rows, per_channel[0], bias, 10)
        assert_close(batch_norm.bn_forward(rows, per_channel[0], bias, 10).get(), expected.get())
    expected = batch_norm._bn_grad_x(cupy, other, rows, *per_channel, 10)
    assert_close(batch_norm.bn_grad_x(other, rows, *per_channel, 10).get(), expected.get())
    column_major = cupy.asfortranarray(other)  # dy may come in any memory order
    assert_close(batch_norm.bn_grad_x(column_major, rows, *per_channel, 10).get(), expected.get())


def test_batch_norm_training_updates_the_same_running_statistics():
    norm = nn.BatchNorm2d(3).double()
    assert_same_on_both(norm, [randn(4, 3, 5, 5)], module=norm)  # second call runs on the GPU
    reference = nn.BatchNorm2d(3).double()
    forward_backward("cpu", reference, [randn(4, 3, 5, 5)], list(reference.parameters()))
    forward_backward("cpu", reference, [randn(4, 3, 5, 5)], list(reference.parameters()))
    for key, value in reference.state_dict().items():
        ours = norm.state_dict()[key]
        assert ours.device == backend.device(GPU)
        assert_close(ours.numpy(), value.numpy(), key)


@pytest.mark.parametrize("bidirectional, proj_size", [(False, 0), (True, 0), (True, 3)])
def test_lstm_on_gpu_matches_cpu(bidirectional, proj_size):
    tinygen.manual_seed(0)
    lstm = nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=bidirectional, proj_size=proj_size)
    lstm.double()

    def run(x, h0, c0):
        output, (h, c) = lstm(x, (h0, c0))
        return output, h, c

    layers = 2 * (2 if bidirectional else 1)
    arrays = [randn(3, 7, 4), randn(layers, 3, proj_size or 6), randn(layers, 3, 6, seed=1)]
    assert_same_on_both(run, arrays, module=lstm)


def test_gradcheck_and_gradgradcheck_run_on_gpu_tensors():
    x = tinygen.tensor(randn(2, 2, 5, 5), device=GPU, requires_grad=True)
    w = tinygen.tensor(randn(3, 2, 3, 3, seed=1), device=GPU, requires_grad=True)
    assert gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), (x, w))
    assert gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), (x, w.transpose(0, 1)))


def test_random_draws_on_gpu_follow_the_seed_and_the_saved_state():
    tinygen.manual_seed(5)
    first = [tinygen.randn(3, 4, device=GPU), tinygen.rand(5, device=GPU, dtype=tinygen.float32),
             tinygen.randint(0, 9, (6,), device=GPU)]
    assert first[0].device == backend.device(GPU) and first[1].dtype == np.float32
    assert first[2].dtype == np.int64 and 0 <= int(first[2].numpy().min()) and int(first[2].numpy().max()) < 9
    state = tinygen.default_generator.get_state()
    after = tinygen.randn(1000, device=GPU).numpy()
    assert abs(after.mean()) < 0.2 and 0.8 < after.std() < 1.2

    tinygen.manual_seed(5)
    again = [tinygen.randn(3, 4, device=GPU), tinygen.rand(5, device=GPU, dtype=tinygen.float32),
             tinygen.randint(0, 9, (6,), device=GPU)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    tinygen.default_generator.set_state(state)
    np.testing.assert_array_equal(tinygen.randn(1000, device=GPU).numpy(), after)


def test_dropout_on_gpu_keeps_a_fraction_and_scales():
    tinygen.manual_seed(0)
    x = tinygen.ones(200, 100, device=GPU)
    y = F.dropout(x, 0.3).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02


def _dcgan_pair(device):
    tinygen.manual_seed(3)
    G = dcgan.Generator(nz=8, ngf=4, channels=1, image_size=28).apply(dcgan.init_weights).double().to(device)
    D = dcgan.Discriminator(ndf=4, channels=1, image_size=28).apply(dcgan.init_weights).double().to(device)
    return G, D, *dcgan.make_optimizers(G, D)


def test_dcgan_training_steps_on_gpu_match_cpu():
    real, z = np.tanh(randn(6, 1, 28, 28)), [randn(6, 8, seed=s) for s in range(3)]
    results = {}
    for device in ("cpu", GPU):
        G, D, opt_g, opt_d = _dcgan_pair(device)
        batch = tinygen.tensor(real, device=device)
        losses = [dcgan.train_step(G, D, opt_g, opt_d, batch, tinygen.tensor(zz, device=device)) for zz in z]
        results[device] = losses, {**G.state_dict(), **{"D." + k: v for k, v in D.state_dict().items()}}
    (cpu_losses, cpu_state), (gpu_losses, gpu_state) = results["cpu"], results[GPU]
    for ours, theirs in zip(gpu_losses, cpu_losses, strict=True):
        for key in theirs:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9), key
    for key, value in cpu_state.items():
        assert gpu_state[key].device == backend.device(GPU)
        assert_close(gpu_state[key].numpy(), value.numpy(), key)


@pytest.mark.parametrize("stop_after", [4, 7])
def test_gpu_run_resumes_to_the_same_weights(tmp_path, stop_after):
    squares = tiny_images()
    whole = Run.start(tmp_path / "whole", data=squares, epochs=2, device=GPU, **TINY)
    assert whole.train(progress=False) == "finished"
    assert next(iter(whole.G.parameters())).device == backend.device(GPU)
    first = Run.start(tmp_path / "split", data=squares, epochs=2, device=GPU, **TINY)
    assert first.train(max_steps=stop_after, progress=False) == "stopped"
    tinygen.manual_seed(1234)
    tinygen.randn(10, device=GPU)
    resumed = Run.resume(tmp_path / "split", data=squares)
    assert resumed.train(progress=False) == "finished"
    assert_same_run(whole, resumed)
    assert (tmp_path / "whole" / "samples" / "epoch_002.png").stat().st_size > 0


def test_cli_samples_on_gpu_from_a_gpu_run(tmp_path):
    run = Run.start(tmp_path / "run", data=tiny_images(), epochs=1, device=GPU, **TINY)
    run.train(progress=False)
    grid, walk = tmp_path / "grid.png", tmp_path / "walk.png"
    sample = ["sample", "dcgan", "--checkpoint", str(tmp_path / "run"), "--device", GPU]
    assert main([*sample, "-n", "8", "--out", str(grid)]) == 0
    assert main([*sample, "--interpolate", "--out", str(walk)]) == 0
    assert grid.stat().st_size > 0 and walk.stat().st_size > 0


@pytest.mark.parametrize("example, args", [
    ("train_dcgan.py", ["--limit", "128"]),
    ("seed_dcgan_fixed.py", ["--batch-size", "32", "--limit", "64"]),
])  # fmt: skip
def test_examples_run_on_gpu(example, args, data_dir, tmp_path, monkeypatch, capsys):  # noqa: F811
    tiny_fashion_mnist(data_dir, monkeypatch)
    run_example(example, monkeypatch, *args, "--device", GPU, "--out", str(tmp_path / "out"))
    assert "epoch 1 step 2/2" in capsys.readouterr().out
    assert (tmp_path / "out" / "epoch_001.png").stat().st_size > 0


@pytest.mark.parametrize("model", ["dcgan", "wgan-gp", "vae", "pixelrnn"])
def test_a_gpu_training_step_copies_nothing_from_the_host(model, monkeypatch):
    """No ``cupy.asarray``/``cupy.array`` of host data inside a step (after the first): every
    Python number stays a kernel argument (ops/number.py). Written without a GPU to run it on:
    it counts the CuPy calls that copy host data, not the driver's copies."""
    from tests.ops_tests.test_number import tiny_config
    from tinygen.models import registry

    cupy = backend.cupy
    tinygen.manual_seed(0)
    recipe = registry.MODELS[model](tiny_config(model), (1, 8, 8)).to(GPU)
    rng = np.random.default_rng(0)
    batch = (tinygen.tensor(rng.uniform(0, 1, (8, 1, 8, 8)).astype(np.float32)).to(GPU),
             tinygen.tensor(rng.integers(0, 10, 8)).to(GPU))
    recipe.train_step(batch)
    copies = []
    for name in ("asarray", "array"):
        original = getattr(cupy, name)

        def counting(value, *args, _original=original, **kwargs):
            if not isinstance(value, cupy.ndarray):
                copies.append(type(value).__name__)
            return _original(value, *args, **kwargs)

        monkeypatch.setattr(cupy, name, counting)
    for _ in range(5):
        recipe.train_step(batch)
    assert copies == [], f"{model}: host-to-device copies of {copies}"


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 7), (1, 3, 2, 6)])  # (N, H, *spatial)
def test_lstm_step_kernels_match_their_xp_versions(shape):
    """The one-kernel LSTM step forward and backward against the xp versions, on the same arrays."""
    cupy = backend.cupy
    rng = np.random.default_rng(0)
    n, hidden, *spatial = shape
    z = rng.normal(size=(n, 4, hidden, *spatial))
    c_prev, grad_h, grad_c = (rng.normal(size=shape) for _ in range(3))
    scale, shift = lstm_cell.scale_and_shift(np, z.dtype, len(shape))
    results = {}
    for device, xp in (("cpu", np), (GPU, cupy)):
        acts = xp.asarray(z * scale)
        c, tanh_c, h = (xp.empty(shape) for _ in range(3))
        on = [xp.asarray(a) for a in (c_prev, grad_h, grad_c)]
        lstm_cell.activate_and_update(acts, xp.asarray(scale), xp.asarray(shift), on[0], c, tanh_c, h)
        grad_gates = xp.empty_like(acts)
        grad_c_prev = lstm_cell.cell_backward(acts, on[0], tanh_c, h, on[1], on[2], grad_gates,
                                              xp.asarray(scale * scale), xp.asarray(shift))
        results[device] = [backend.to_device(a, "cpu") for a in (acts, c, tanh_c, h, grad_gates, grad_c_prev)]
    names = ("acts", "c", "tanh_c", "h", "grad_gates", "grad_c_prev")
    for name, gpu, cpu in zip(names, results[GPU], results["cpu"], strict=True):
        assert_close(gpu, cpu, name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_leaky_relu_kernel_gives_the_xp_versions_bits(dtype):
    from tinygen.ops import activation

    x = np.random.default_rng(0).normal(size=(4, 3, 5)).astype(dtype)
    x[0, 0, :2] = 0.0, -0.0
    expected = activation._leaky_relu_scale(np, x, 0.2)
    got = activation.leaky_relu_scale(backend.cupy.asarray(x), 0.2)
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(ours.get(), theirs)
