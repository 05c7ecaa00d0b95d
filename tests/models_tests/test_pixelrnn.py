"""PixelRNN: masks, causality, exact likelihoods, the cached sampler against the naive one, and the run."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen
import tinygen.trainer
from tests.cli_tests.conftest import tiny_images
from tests.cli_tests.test_trainer import assert_same_run
from tests.data_tests.files import write_idx_split
from tests.test_examples import data_dir, run_example, tiny_fashion_mnist  # noqa: F401  (data_dir: a fixture)
from tinygen import backend
from tinygen.cli import main
from tinygen.data import DATASETS, ImageDataset
from tinygen.errors import ShapeError
from tinygen.models import pixelrnn
from tinygen.nn import init
from tinygen.testing import check_op, gradcheck, gradgradcheck
from tinygen.testing import strategies as tst
from tinygen.trainer import Run

ARCHS = pixelrnn.ARCHITECTURES
OUTPUTS = tuple(pixelrnn.OUTPUTS)
FEW = settings(max_examples=6, deadline=None)  # second-order checks of recurrences: a few examples each


def tiny(arch, output="bernoulli", shape=(4, 5), layers=2, hidden=3, seed=0):
    """A float64 model for ``shape = (H, W)`` images."""
    tinygen.manual_seed(seed)
    return pixelrnn.make_model(arch, (1, *shape), layers=layers, hidden=hidden, output=output).double()


def logits_of(model, x):
    with tinygen.no_grad():
        return model(tinygen.tensor(x)).numpy()


def last_layer(model):
    return model.out if isinstance(model, pixelrnn.RowBaseline) else model.head[3]


# ----------------------------------------------------------------------------- masks


def test_masks_are_the_pictures():
    np.testing.assert_array_equal(pixelrnn.causal_mask(3, "A"), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(pixelrnn.causal_mask(3, "B"), [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(pixelrnn.causal_mask((1, 3), "A"), [[1, 0, 0]])
    np.testing.assert_array_equal(pixelrnn.causal_mask((1, 3), "B"), [[1, 1, 0]])
    np.testing.assert_array_equal(pixelrnn.causal_mask(1, "B"), [[1]])
    seven = pixelrnn.causal_mask(7, "A")
    assert seven.sum() == 3 * 7 + 3 and seven[3, 3] == 0 and seven[:3].all() and not seven[4:].any()
    assert pixelrnn.causal_mask(7, "B").sum() == seven.sum() + 1


@given(tst.masked_conv_configs(max_batch=1, max_channels=2, max_kernel=5, max_size=5))
@settings(max_examples=10, deadline=None)
def test_causal_mask_matches_the_testing_strategies_mask(config):
    mask = pixelrnn.causal_mask(config.kernel_size, config.mask_type)
    np.testing.assert_array_equal(np.broadcast_to(mask, config.weight_shape), config.mask())


def masked_conv_reference(x, weight, mask, bias, dilation):
    """The masked convolution by its formula, one kernel offset at a time."""
    n, _, height, width = x.shape
    (k_h, k_w), (d_h, d_w) = weight.shape[2:], dilation
    p_h, p_w = d_h * (k_h - 1) // 2, d_w * (k_w - 1) // 2
    padded = np.pad(x, ((0, 0), (0, 0), (p_h, p_h), (p_w, p_w)))
    out = np.zeros((n, weight.shape[0], height, width)) + (0 if bias is None else bias[None, :, None, None])
    for u in range(k_h):
        for v in range(k_w):
            window = padded[:, :, u * d_h : u * d_h + height, v * d_w : v * d_w + width]
            out += np.einsum("oc,nchw->nohw", weight[:, :, u, v] * mask[u, v], window)
    return out


@st.composite
def masked_conv_inputs(draw):
    config = draw(tst.masked_conv_configs(max_batch=2, max_channels=2, max_kernel=3, max_size=4))
    x = draw(tst.arrays(config.input_shape))
    weight = draw(tst.arrays(config.weight_shape))
    bias = draw(tst.arrays((config.out_channels,)))
    mask = tinygen.tensor(pixelrnn.causal_mask(config.kernel_size, config.mask_type).astype(np.float64))
    return x, weight, mask, bias, config.dilation


@given(masked_conv_inputs())
@FEW
def test_masked_conv2d_forward_and_two_orders_of_gradients(inputs):
    assert check_op(pixelrnn.masked_conv2d, inputs, reference=masked_conv_reference, order=2)


@pytest.mark.parametrize("kernel, dilation", [((1, 3), 1), (3, 1), (7, 1), ((3, 5), 2), (5, (2, 1))])
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_a_masked_conv_never_sees_later_pixels(kernel, dilation, mask_type):
    tinygen.manual_seed(0)
    conv = pixelrnn.MaskedConv2d(2, 3, kernel, mask_type, dilation=dilation).double()
    x = np.random.default_rng(0).normal(size=(1, 2, 5, 6))
    base = logits_of(conv, x).reshape(3, -1)
    for i in range(30):
        y = x.copy()
        y[0, :, i // 6, i % 6] += 1.0
        out = logits_of(conv, y).reshape(3, -1)
        np.testing.assert_array_equal(out[:, :i], base[:, :i])  # every output before pixel i, bitwise
        assert np.array_equal(out[:, i], base[:, i]) == (mask_type == "A")  # A hides the centre, B sees it


def test_the_mask_is_a_buffer_that_is_not_saved():
    conv = pixelrnn.MaskedConv2d(1, 2, 3, "A")
    assert list(conv.state_dict()) == ["weight", "bias"]
    conv.double()
    assert conv.mask.dtype == np.float64
    assert "mask_type='A'" in repr(conv) and "padding=(1, 1)" in repr(conv)


# ----------------------------------------------------------------------------- skew and the recurrences


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (1, 4), (4, 1), (2, 2)])
def test_skew_shifts_row_r_right_by_r_and_unskew_undoes_it(shape):
    height, width = shape
    x = np.random.default_rng(0).normal(size=(2, 3, height, width))
    skewed = pixelrnn.skew(tinygen.tensor(x)).numpy()
    expected = np.zeros((2, 3, height, width + height - 1))
    for r in range(height):
        expected[:, :, r, r : r + width] = x[:, :, r]
    np.testing.assert_array_equal(skewed, expected)
    np.testing.assert_array_equal(pixelrnn.unskew(tinygen.tensor(skewed)).numpy(), x)
    assert check_op(pixelrnn.skew, (x,), reference=lambda a: expected, order=2)
    assert check_op(pixelrnn.unskew, (expected,), reference=lambda a: x, order=2)


@st.composite
def lstm_gates(draw, kernel, max_side=3):
    n, hidden = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    gates = draw(tst.arrays((n, 4 * hidden, height, width)))
    weight = draw(tst.arrays((4 * hidden, hidden, *kernel), min_value=-1, max_value=1))
    bias = draw(tst.arrays((4 * hidden,), min_value=-1, max_value=1))
    return gates, weight, bias


@given(lstm_gates((1, 3)))
@FEW
def test_row_lstm_gradients_of_two_orders(inputs):
    assert check_op(pixelrnn.row_lstm, inputs, order=2)


@given(lstm_gates((2, 1), max_side=2))
@FEW
def test_diagonal_lstm_gradients_of_two_orders_through_the_skew(inputs):
    assert check_op(pixelrnn.diagonal_lstm, inputs, order=2)


@pytest.mark.parametrize("layer", [pixelrnn.RowLSTMLayer, pixelrnn.DiagonalBiLSTMLayer])
def test_one_layer_step_gradients_of_two_orders(layer):
    tinygen.manual_seed(0)
    module = layer(2, 1).double()
    x = tinygen.tensor(np.random.default_rng(1).normal(size=(1, 2, 2, 3)), requires_grad=True)
    assert gradcheck(module, (x,))
    assert gradgradcheck(module, (x,))


def test_row_lstm_matches_its_formula_row_by_row():
    rng = np.random.default_rng(0)
    gates, weight, bias = rng.normal(size=(2, 8, 3, 4)), rng.normal(size=(8, 2, 1, 3)), rng.normal(size=8)
    h = pixelrnn.row_lstm(tinygen.tensor(gates), tinygen.tensor(weight), tinygen.tensor(bias)).numpy()

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    h_prev, c_prev = np.zeros((2, 2, 4)), np.zeros((2, 2, 4))
    for r in range(3):
        padded = np.pad(h_prev, ((0, 0), (0, 0), (1, 1)))
        state = sum(np.einsum("oc,ncw->now", weight[:, :, 0, v], padded[:, :, v : v + 4]) for v in range(3))
        z = gates[:, :, r] + state + bias[None, :, None]
        i, f, g, o = sigmoid(z[:, 0:2]), sigmoid(z[:, 2:4]), np.tanh(z[:, 4:6]), sigmoid(z[:, 6:8])
        c_prev = f * c_prev + i * g
        h_prev = o * np.tanh(c_prev)
        np.testing.assert_allclose(h[:, :, r], h_prev, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- causality


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_changing_pixel_i_never_changes_the_distribution_of_pixels_up_to_i(arch, output):
    height, width = 4, 5
    model = tiny(arch, output, (height, width))
    x = np.random.default_rng(1).random((2, 1, height, width))
    base = logits_of(model, x).reshape(2, -1, height * width)
    for i in range(height * width):
        y = x.copy()
        y[:, 0, i // width, i % width] = 1.0 - y[:, 0, i // width, i % width] + 0.5  # a different value
        out = logits_of(model, y).reshape(2, -1, height * width)
        np.testing.assert_array_equal(out[:, :, : i + 1], base[:, :, : i + 1], err_msg=f"pixel {i}")
        sees_it = i < height * width - 1 if arch != "row-baseline" else i < (height - 1) * width
        assert not np.array_equal(out[:, :, i + 1 :], base[:, :, i + 1 :]) or not sees_it  # not vacuous


def seen_by(arch, shape, pixel):
    """The input pixels the logit of ``pixel`` depends on (its receptive field), one layer, as a picture."""
    model = tiny(arch, shape=shape, layers=1)
    x = tinygen.tensor(np.random.default_rng(2).random((1, 1, *shape)), requires_grad=True)
    model(x)[0, 0, pixel[0], pixel[1]].backward()
    seen = np.abs(x.grad.numpy()[0, 0]) > 0
    return ["".join("x" if (r, c) == pixel else "#" if seen[r, c] else "." for c in range(shape[1]))
            for r in range(shape[0])]


def test_the_receptive_fields_of_one_layer():
    # Row LSTM: a triangle above the pixel, one column wider per row up (the 1x3 state-to-state
    # convolution), and in its own row what the 7x7 mask A and the 1x3 mask B reach: 4 pixels.
    assert seen_by("row-lstm", (6, 13), (5, 6)) == ["#############",
                                                    "#############",
                                                    "############.",
                                                    "###########..",
                                                    ".#########...",
                                                    "..####x......"]
    # Diagonal BiLSTM: every earlier pixel but the last of the row above, which only the
    # mask-A features of a later pixel of that row would carry (docs/pixelrnn.md).
    assert seen_by("diagonal-bilstm", (6, 13), (5, 6)) == ["#############",
                                                           "#############",
                                                           "#############",
                                                           "#############",
                                                           "############.",
                                                           "######x......"]
    # The row baseline: every pixel of the rows above, none of its own row.
    assert seen_by("row-baseline", (3, 5), (2, 3)) == ["#####", "#####", "...x."]


# ----------------------------------------------------------------------------- likelihood


@pytest.mark.parametrize("output, per_pixel", [("bernoulli", math.log(2)), ("softmax256", math.log(256))])
@pytest.mark.parametrize("arch", ARCHS)
def test_logits_of_zero_give_exactly_d_ln_k_nats_per_image(arch, output, per_pixel):
    model = tiny(arch, output, (4, 5))
    init.zeros_(last_layer(model).weight)
    init.zeros_(last_layer(model).bias)
    x = (np.random.default_rng(0).random((3, 1, 4, 5)) < 0.5).astype(np.float64)
    if output == "softmax256":
        x = np.random.default_rng(0).integers(0, 256, (3, 1, 4, 5)) / 255
    assert np.all(logits_of(model, x) == 0)
    nats = pixelrnn.nll(model, tinygen.tensor(x)).numpy()
    np.testing.assert_allclose(nats, 20 * per_pixel, rtol=1e-14)  # summed per image, not a per-pixel mean
    figures = pixelrnn.evaluate(model, x, batch_size=2)
    assert figures["nll"] == pytest.approx(20 * per_pixel, rel=1e-14)
    assert figures["bpd"] == pytest.approx(per_pixel / math.log(2), rel=1e-14)  # 1 bit, or 8 bits


@pytest.mark.parametrize("arch", ARCHS)
def test_the_probabilities_of_all_binary_images_sum_to_one(arch):
    height, width = 2, 3
    model = tiny(arch, shape=(height, width))
    bits = (np.arange(64)[:, None] >> np.arange(6)) & 1
    images = bits.reshape(64, 1, height, width).astype(np.float64)
    with tinygen.no_grad():
        log_p = -pixelrnn.nll(model, tinygen.tensor(images)).numpy()
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------- sampling


def test_draw_inverts_the_cdf():
    uniform = (np.arange(1000) + 0.5) / 1000
    logits = np.log(np.array([[0.25, 0.5, 0.0, 0.25] + [0.0] * 252]) + 1e-300).repeat(1000, 0)
    levels = pixelrnn.draw(logits, uniform, "softmax256") * 255
    np.testing.assert_array_equal(np.bincount(levels.astype(int), minlength=4)[:4], [250, 500, 0, 250])
    ones = pixelrnn.draw(np.full((1000, 1), math.log(3)), uniform, "bernoulli")  # p = 3/4
    assert ones.sum() == 750 and set(np.unique(ones)) == {0.0, 1.0}
    assert pixelrnn.draw(np.array([[-1e6], [1e6]]), np.array([0.0, 0.9999]), "bernoulli").tolist() == [0, 1]


@pytest.mark.parametrize("shape", [(4, 5), (5, 3)])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_the_cached_sampler_draws_what_the_naive_one_draws(arch, output, shape):
    model = tiny(arch, output, shape)
    uniform = np.random.default_rng(3).random((3, *shape))
    cached, cached_logits = pixelrnn.sample(model, uniform, return_logits=True)
    naive, naive_logits = pixelrnn.sample(model, uniform, cached=False, return_logits=True)
    np.testing.assert_array_equal(cached, naive)
    np.testing.assert_allclose(cached_logits, naive_logits, rtol=0, atol=1e-12)
    # the logits the sampler used are the model's conditionals on the finished image
    np.testing.assert_allclose(logits_of(model, cached), cached_logits, rtol=0, atol=1e-12)
    values = {0.0, 1.0} if output == "bernoulli" else set(np.arange(256) / 255)
    assert set(np.unique(cached)) <= values


@pytest.mark.parametrize("arch", ARCHS)
def test_completions_keep_the_given_rows(arch):
    model = tiny(arch, shape=(4, 5))
    uniform = np.random.default_rng(4).random((2, 4, 5))
    prefix = (np.random.default_rng(5).random((2, 1, 2, 5)) < 0.5).astype(np.float64)
    cached = pixelrnn.sample(model, uniform, prefix=prefix)
    np.testing.assert_array_equal(cached[:, :, :2], prefix)
    np.testing.assert_array_equal(cached, pixelrnn.sample(model, uniform, cached=False, prefix=prefix))


def test_sampling_leaves_the_model_in_training_mode_and_checks_shapes():
    model = tiny("row-lstm")
    pixelrnn.sample(model, np.zeros((1, 2, 2)))
    assert model.training
    with pytest.raises(ShapeError, match=r"uniform has shape \(2, 2\), expected \(n, H, W\)"):
        pixelrnn.sample(model, np.zeros((2, 2)))
    with pytest.raises(ShapeError, match=r"prefix has shape \(1, 1, 3, 2\), expected \(n, 1, R, W\)"):
        pixelrnn.sample(model, np.zeros((1, 2, 2)), prefix=np.zeros((1, 1, 3, 2)))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: pixelrnn.PixelRNN("pixelcnn"), ValueError, "arch is 'pixelcnn', expected 'row-lstm' or"),
        (lambda: pixelrnn.PixelRNN(output="gauss"), ValueError, "output is 'gauss', expected one of bern"),
        (lambda: pixelrnn.PixelRNN(hidden=0), ValueError, "hidden is 0, expected an int >= 1"),
        (lambda: pixelrnn.make_model("rnn", (1, 4, 4)), ValueError, "arch is 'rnn', expected one of row-l"),
        (lambda: pixelrnn.make_model("row-lstm", (3, 4, 4)), ShapeError, r"\(3, 4, 4\), expected \(1, H, W"),
        (lambda: pixelrnn.causal_mask(4, "A"), ValueError, "kernel_size is 4, expected odd sides"),
        (lambda: pixelrnn.causal_mask(3, "C"), ValueError, "mask_type is 'C', expected 'A' or 'B'"),
        (lambda: pixelrnn.MaskedConv2d(1, 1, (1, 2), "B"), ValueError, r"kernel_size is \(1, 2\)"),
    ],
)
def test_bad_arguments_name_themselves(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_bad_inputs_name_their_shapes():
    with pytest.raises(ShapeError, match=r"PixelRNN: input has shape \(2, 3, 4, 4\), expected \(N, 1, H, W"):
        pixelrnn.PixelRNN()(tinygen.zeros(2, 3, 4, 4))
    with pytest.raises(ShapeError, match=r"RowBaseline: input has shape \(2, 1, 4, 5\), expected \(N, 1, H,"):
        pixelrnn.RowBaseline(4)(tinygen.zeros(2, 1, 4, 5))
    with pytest.raises(ShapeError, match=r"row_lstm: weight has shape \(8, 2, 1, 2\), expected \(4h, h, 1,"):
        pixelrnn.row_lstm(tinygen.zeros(1, 8, 2, 2), tinygen.zeros(8, 2, 1, 2))
    with pytest.raises(ShapeError, match=r"diagonal_lstm: gates has shape \(1, 6, 2, 2\), expected \(N, 4h"):
        pixelrnn.diagonal_lstm(tinygen.zeros(1, 6, 2, 2), tinygen.zeros(6, 1, 2, 1))


# ----------------------------------------------------------------------------- the run and the CLI

TINY = {"model": "pixelrnn", "layers": 1, "hidden": 3, "batch_size": 8, "grid": 4}


@pytest.fixture
def squares(monkeypatch):
    """The tiny set of squares; the run's loss and metrics plots (matplotlib, most of a tiny run's
    time, and tested with the run) are skipped."""
    monkeypatch.setattr(tinygen.trainer, "save_history_plot", lambda *args, **kwargs: None)
    monkeypatch.setattr(tinygen.trainer, "save_metrics_plot", lambda *args, **kwargs: None)
    return tiny_images()


@pytest.mark.parametrize("settings", [{"arch": "row-lstm"}, {"arch": "row-baseline"},
                                      {"arch": "diagonal-bilstm", "output": "softmax256"}])
def test_a_run_learns_and_an_interrupted_one_resumes_exactly(tmp_path, squares, settings):
    config, test = {**TINY, **settings}, squares[:8]
    whole = Run.start(tmp_path / "whole", data=squares, test_data=test, epochs=2, **config)
    assert whole.train(progress=False) == "finished"
    names = sorted(p.name for p in whole.samples_dir.iterdir())
    assert names == sorted(f"{kind}epoch_00{e}.png" for e in (1, 2) for kind in ("", "completions_"))
    losses = np.asarray(whole.history["loss"]).reshape(2, -1).mean(1)
    assert losses[1] < losses[0]
    assert [set(line) for line in whole.metrics] == [{"epoch", "step", "test_images", "nll", "bpd"}] * 2
    assert whole.metrics[1]["nll"] < whole.metrics[0]["nll"]
    assert whole.metrics[0]["bpd"] == pytest.approx(whole.metrics[0]["nll"] / (64 * math.log(2)))

    first = Run.start(tmp_path / "split", data=squares, test_data=test, epochs=2, **config)
    first.train(max_steps=4, progress=False)
    tinygen.randn(7)  # the global stream moves on in between
    resumed = Run.resume(tmp_path / "split", data=squares, test_data=test)
    resumed.train(progress=False)
    assert_same_run(whole, resumed)
    assert whole.metrics_path.read_bytes() == resumed.metrics_path.read_bytes()
    grid = "samples/epoch_002.png"
    assert (whole.out / grid).read_bytes() == (resumed.out / grid).read_bytes()


def test_a_three_channel_data_set_is_refused(tmp_path):
    colour = ImageDataset(np.zeros((16, 3, 8, 8), np.uint8), np.zeros(16, np.int64), name="colour")
    with pytest.raises(ShapeError, match=r"images have shape \(3, 8, 8\), expected \(1, H, W\): one channel"):
        Run.start(tmp_path / "run", data=colour, **TINY)


CLI_ARGS = ["--layers", "1", "--hidden", "3", "--batch-size", "8", "--grid", "4", "--quiet"]


@pytest.fixture
def fake_data(monkeypatch, squares):
    """`tinygen train` loads its data through trainer.load_dataset: hand it the tiny set."""
    monkeypatch.setattr(tinygen.trainer, "load_dataset", lambda *args, **kwargs: squares)


def test_train_sample_and_eval_from_the_command_line(tmp_path, capsys, fake_data):
    out = tmp_path / "px"
    argv = ["train", "pixelrnn", "--out", str(out), "--epochs", "1", "--arch", "diagonal-bilstm", *CLI_ARGS]
    assert main(argv) == 0
    assert "epoch 1, 48 test images: nll" in capsys.readouterr().out
    grids = {}
    for flags in ([], ["--naive"]):
        grids[tuple(flags)] = tmp_path / f"grid{len(flags)}.png"
        argv = ["sample", "pixelrnn", "--checkpoint", str(out), "-n", "6", "--nrow", "3", "--seed", "5"]
        assert main([*argv, "--out", str(grids[tuple(flags)]), *flags]) == 0
    assert "wrote 6 samples" in capsys.readouterr().out
    assert grids[()].read_bytes() == grids[("--naive",)].read_bytes()  # the same images from the same seed
    assert main(["eval", "pixelrnn", "--checkpoint", str(out), "--limit", "10", "--batch-size", "4",
                 "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "fashion-mnist test split, the first 10 images" in report and "binarized once (seed 0)" in report
    figures = dict(line.split() for line in report.splitlines() if line.startswith("  "))
    assert set(figures) == {"nll", "bpd"}
    assert float(figures["bpd"]) == pytest.approx(float(figures["nll"]) / (64 * math.log(2)), abs=1e-3)


BAD_COMMAND_LINES = [
    (["train", "pixelrnn", "--arch", "pixelcnn"], "invalid choice: 'pixelcnn'"),
    (["train", "pixelrnn", "--output", "gauss"], "invalid choice: 'gauss'"),
    (["train", "pixelrnn", "--hidden", "0"], "expected an integer >= 1, got 0"),
    (["train", "pixelrnn", "--grid", "-1"], "expected an integer >= 0, got -1"),
    (["sample", "vae", "--checkpoint", "{tmp}/px", "--naive"], "unrecognized arguments: --naive"),
    (["eval", "pixelrnn", "--checkpoint", "{tmp}/px", "--k", "5"], "unrecognized arguments: --k 5"),
    (["sample", "vae", "--checkpoint", "{tmp}/px"], "holds a 'pixelrnn' run, not 'vae'"),
    (["train", "pixelrnn", "--resume", "{tmp}/px", "--arch", "row-baseline"], "--arch is 'row-baseline' but"),
]


def test_bad_pixelrnn_command_lines_are_one_line(tmp_path, capsys, fake_data):
    assert main(["train", "pixelrnn", "--out", str(tmp_path / "px"), "--epochs", "1", "--grid", "0",
                 *CLI_ARGS[:-3], "--quiet"]) == 0
    capsys.readouterr()
    for argv, message in BAD_COMMAND_LINES:
        assert main([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) in (1, 2), argv
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and error.startswith("tinygen") and message in error, (argv, error)


def test_train_pixelrnn_example(data_dir, tmp_path, monkeypatch, capsys):  # noqa: F811  (data_dir: a fixture)
    tiny_fashion_mnist(data_dir, monkeypatch, n=64)
    _, _, digests = write_idx_split(str(data_dir / "fashion-mnist"), "test", n=20)
    for name, digest in digests.items():
        monkeypatch.setitem(DATASETS["fashion-mnist"].sha256, name, digest)
    run_example("train_pixelrnn.py", monkeypatch, "--batch-size", "32", "--layers", "1", "--hidden", "2",
                "--grid", "2", "--eval-limit", "20", "--out", str(tmp_path / "out"))
    out = capsys.readouterr().out
    assert "epoch 1 step 2/2" in out and "test -log p(x)" in out and "bits/dim" in out
    assert (tmp_path / "out" / "epoch_001.png").stat().st_size > 0


# ----------------------------------------------------------------------------- on a GPU


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("arch", ARCHS)
def test_the_models_train_and_sample_on_cuda_as_on_the_cpu(arch):
    x = (np.random.default_rng(0).random((2, 1, 4, 5)) < 0.5).astype(np.float64)
    results = {}
    for device in ("cpu", "cuda"):
        model = tiny(arch).to(device)
        loss = pixelrnn.nll(model, tinygen.tensor(x, device=device)).sum()
        loss.backward()
        grads = [p.grad.numpy() for p in model.parameters()]
        images = pixelrnn.sample(model, np.random.default_rng(1).random((2, 4, 5)))
        results[device] = (loss.item(), grads, images)
    (loss, grads, images), (gpu_loss, gpu_grads, gpu_images) = results["cpu"], results["cuda"]
    assert gpu_loss == pytest.approx(loss, rel=1e-10)
    for grad, gpu_grad in zip(grads, gpu_grads, strict=True):
        np.testing.assert_allclose(gpu_grad, grad, rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(gpu_images, images)
