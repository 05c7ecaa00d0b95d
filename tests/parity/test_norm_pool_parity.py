"""batch_norm, layer_norm, pooling and embedding against PyTorch: values, every gradient and
the running statistics (float64 to round-off, float32 within float32 tolerance), and the
modules' ``state_dict`` keys and ``repr``."""

import numpy as np
import pytest

import tinygen
from tinygen.kernels.batch_norm import batch_norm
from tinygen.kernels.embedding import embedding
from tinygen.kernels.layer_norm import layer_norm
from tinygen.kernels.pool import avg_pool2d, max_pool2d
from tinygen.nn.modules.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from tinygen.nn.modules.pooling import AvgPool2d, MaxPool2d
from tinygen.nn.modules.sparse import Embedding

torch = pytest.importorskip("torch")
import torch.nn.functional as torchF  # noqa: E402

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape)


def distinct(*shape):
    """Values with no ties (max pooling's gradient jumps at ties)."""
    return RNG.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0


# Each fn gets (F, *tensors requiring grad, *constants); F maps op names to one library's ops.
OURS = {
    "batch_norm": batch_norm,
    "layer_norm": layer_norm,
    "max_pool2d": max_pool2d,
    "avg_pool2d": avg_pool2d,
    "embedding": embedding,
}
THEIRS = {name: getattr(torchF, name) for name in OURS}

# (name, inputs requiring grad, constants, fn, indices of constants that are running statistics)
# fmt: off
CASES = [
    ("bn2d_train", [randn(4, 3, 5, 5) * 2 + 1, randn(3), randn(3)], [randn(3), np.abs(randn(3)) + 0.5],
     lambda F, x, w, b, rm, rv: F["batch_norm"](x, rm, rv, w, b, training=True, momentum=0.2)),
    ("bn1d_train_3d", [randn(4, 3, 6), randn(3), randn(3)], [randn(3), np.abs(randn(3)) + 0.5],
     lambda F, x, w, b, rm, rv: F["batch_norm"](x, rm, rv, w, b, training=True)),
    ("bn1d_train_2d_no_affine", [randn(6, 4)], [randn(4), np.abs(randn(4)) + 0.5],
     lambda F, x, rm, rv: F["batch_norm"](x, rm, rv, training=True, eps=1e-3)),
    ("bn_train_no_stats", [randn(5, 2, 3, 2), randn(2)], [],
     lambda F, x, w: F["batch_norm"](x, None, None, w, None, training=True)),
    ("bn2d_eval", [randn(4, 3, 5, 5), randn(3), randn(3)], [randn(3), np.abs(randn(3)) + 0.5],
     lambda F, x, w, b, rm, rv: F["batch_norm"](x, rm, rv, w, b, training=False)),
    ("layer_norm", [randn(4, 3, 5), randn(3, 5), randn(3, 5)], [],
     lambda F, x, w, b: F["layer_norm"](x, (3, 5), w, b)),
    ("layer_norm_plain", [randn(2, 7)], [], lambda F, x: F["layer_norm"](x, [7], eps=1e-3)),
    ("max_pool", [distinct(2, 3, 9, 8)], [],
     lambda F, x: F["max_pool2d"](x, 3, 2, 1)
        + F["max_pool2d"](x, (2, 3), 2, (1, 0), 2, ceil_mode=True).sum()),
    ("max_pool_overlap_indices", [distinct(2, 2, 7, 7)], [],
     lambda F, x: F["max_pool2d"](x, 3, 1, 1, return_indices=True)[0]),
    ("avg_pool", [randn(2, 3, 9, 8)], [],
     lambda F, x: F["avg_pool2d"](x, 3, 2, 1) + F["avg_pool2d"](x, 3, 2, 1, True, False).sum()
        + F["avg_pool2d"](x, (2, 3), 2, (1, 1), True, True, 5).sum()),
    ("embedding", [randn(7, 4)], [np.array([[0, 3, 3, 6], [2, 3, 0, 1]])],
     lambda F, w, idx: F["embedding"](idx, w) + F["embedding"](idx, w, padding_idx=3) * 2),
    ("embedding_scale_grad_by_freq", [randn(7, 4)], [np.array([[0, 3, 3, 6], [2, 3, 0, 3]])],
     lambda F, w, idx: F["embedding"](idx, w, scale_grad_by_freq=True)
        + F["embedding"](idx, w, padding_idx=3, scale_grad_by_freq=True) * 2),
    ("embedding_max_norm", [randn(7, 4) * 2], [np.array([[0, 3, 3, 6], [2, 3, 0, 1]])],
     lambda F, w, idx: F["embedding"](idx, w, max_norm=2.5, norm_type=3) * 2
        + F["embedding"](idx, w, padding_idx=3, max_norm=1.5, scale_grad_by_freq=True)),
]
# fmt: on


def run(lib, case, dtype):
    _, floats, constants, fn = case
    to = tinygen.tensor if lib is tinygen else torch.tensor
    tensors = [to(a.astype(dtype), requires_grad=True) for a in floats]
    fixed = [to(a.astype(dtype) if a.dtype.kind == "f" else a) for a in constants]
    out = fn(OURS if lib is tinygen else THEIRS, *tensors, *fixed)
    weights = np.linspace(-1, 1, int(np.prod(out.shape))).reshape(out.shape).astype(dtype)
    (out * to(weights)).sum().backward()
    value = out.detach().numpy() if lib is torch else out.numpy()
    return [value] + [t.grad.numpy() for t in tensors] + [c.numpy() for c in fixed]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-10, 1e-12), (np.float32, 1e-4, 1e-5)])
def test_matches_torch(case, dtype, rtol, atol):
    ours, theirs = run(tinygen, case, dtype), run(torch, case, dtype)
    names = ["output"] + [f"gradient of input {i}" for i in range(len(case[1]))]
    names += [f"constant {i} (running statistics are updated in place)" for i in range(len(case[2]))]
    for name, a, b in zip(names, ours, theirs, strict=True):
        assert a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{case[0]}: {name}")


def test_max_pool_indices_match_torch():
    x = distinct(2, 3, 8, 9)
    for args in [(3, 2, 1), (2, 2, 0, 1, True), ((3, 2), (1, 2), (1, 1), (2, 1), True)]:
        _, ours = max_pool2d(tinygen.tensor(x), *args, return_indices=True)
        _, theirs = torchF.max_pool2d(torch.tensor(x), *args, return_indices=True)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_batch_norm_second_order_matches_torch():
    """A gradient penalty through batch norm: d/dw of |d(out)/dx|^2."""
    x0, w0, v0 = randn(4, 3, 2, 2), randn(3), randn(4, 3, 2, 2)
    results = []
    for lib, to, fn in ((tinygen, tinygen.tensor, batch_norm), (torch, torch.tensor, torchF.batch_norm)):
        x, w, v = to(x0, requires_grad=True), to(w0, requires_grad=True), to(v0)
        out = (fn(x, None, None, w, None, training=True) ** 3 * v).sum()
        grad = lib.autograd.grad if lib is torch else lib.grad
        (g,) = grad(out, [x], create_graph=True)
        (g * g).sum().backward()
        results.append((w.grad.numpy(), x.grad.numpy()))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11)


MODULES = [
    (lambda nn: nn.BatchNorm2d(3), BatchNorm2d, (3,), {}),
    (
        lambda nn: nn.BatchNorm1d(4, momentum=None, affine=False),
        BatchNorm1d,
        (4,),
        dict(momentum=None, affine=False),
    ),
    (
        lambda nn: nn.BatchNorm1d(4, track_running_stats=False),
        BatchNorm1d,
        (4,),
        dict(track_running_stats=False),
    ),
    (lambda nn: nn.BatchNorm2d(4, bias=False), BatchNorm2d, (4,), dict(bias=False)),
    (lambda nn: nn.LayerNorm((3, 4)), LayerNorm, ((3, 4),), {}),
    (lambda nn: nn.LayerNorm(3, elementwise_affine=False), LayerNorm, (3,), dict(elementwise_affine=False)),
    (lambda nn: nn.MaxPool2d((2, 3), 1), MaxPool2d, ((2, 3), 1), {}),
    (
        lambda nn: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        AvgPool2d,
        (3, 2, 1),
        dict(count_include_pad=False),
    ),
    (lambda nn: nn.Embedding(10, 3, padding_idx=-2), Embedding, (10, 3), dict(padding_idx=-2)),
    (
        lambda nn: nn.Embedding(10, 3, max_norm=1, norm_type=float("inf"), scale_grad_by_freq=True),
        Embedding,
        (10, 3),
        dict(max_norm=1, norm_type=float("inf"), scale_grad_by_freq=True),
    ),
    (
        lambda nn: nn.Embedding(4, 2, padding_idx=0, max_norm=2.5, norm_type=2),
        Embedding,
        (4, 2),
        dict(padding_idx=0, max_norm=2.5, norm_type=2),
    ),
]


@pytest.mark.parametrize("make_torch, ours, args, kwargs", MODULES)
def test_modules_state_dict_and_repr(make_torch, ours, args, kwargs):
    theirs, mine = make_torch(torch.nn), ours(*args, **kwargs)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    assert repr(mine) == repr(theirs)
    for key, value in theirs.state_dict().items():
        assert mine.state_dict()[key].shape == tuple(value.shape), key
        if key != "weight" or not isinstance(mine, Embedding):
            np.testing.assert_array_equal(mine.state_dict()[key].numpy(), value.numpy(), err_msg=key)


@pytest.mark.parametrize("norm_type", [2.0, 1, float("inf"), 3, 0.5, 0, float("-inf"), -1])
@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_embedding_max_norm_matches_torch(norm_type, padding_idx, scale_grad_by_freq, dtype, rtol):
    """The renormalised weight (in place), the output and the weight gradient, for every p."""
    weight = (randn(8, 5) * 1.5).astype(dtype)
    index = np.array([[2, 5, 5, 0], [7, 2, 5, 3]])  # rows 1, 4 and 6 are not looked up
    norms = np.linalg.norm(weight[np.unique(index)].astype(np.float64), ord=norm_type, axis=1)
    # some rows above, some not, and none within round-off of the threshold (where the two
    # libraries' norms could fall on either side of it): halfway between two middle norms
    middle = np.sort(norms)[len(norms) // 2 - 1 : len(norms) // 2 + 1]
    max_norm = 3.5 if norm_type == 0 else float(middle.mean())
    grad_out = randn(2, 4, 5).astype(dtype)
    results = []
    for lib, to, fn in ((tinygen, tinygen.tensor, embedding), (torch, torch.tensor, torchF.embedding)):
        w = to(weight.copy(), requires_grad=True)
        out = fn(to(index), w, padding_idx, max_norm, norm_type, scale_grad_by_freq)
        (out * to(grad_out)).sum().backward()
        value = out.detach().numpy() if lib is torch else out.numpy()
        results.append((w.detach().numpy() if lib is torch else w.numpy(), value, w.grad.numpy()))
    renormed = ~np.isclose(results[1][0], weight, rtol=0, atol=0).all(axis=1)
    assert renormed.any() and not renormed.all() and not renormed[[1, 4, 6]].any()  # the case is mixed
    for name, ours, theirs in zip(("weight", "output", "weight gradient"), *results, strict=True):
        assert ours.dtype == theirs.dtype, name
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * 1e-2, err_msg=name)


def test_embedding_module_with_options_matches_torch():
    theirs = torch.nn.Embedding(8, 5, padding_idx=2, max_norm=1.2, norm_type=3, scale_grad_by_freq=True)
    theirs.double()
    weight = theirs.weight.detach().numpy().copy() * 2
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(weight))
    mine = Embedding(8, 5, padding_idx=2, max_norm=1.2, norm_type=3, scale_grad_by_freq=True,
                     _weight=tinygen.tensor(weight))  # fmt: skip
    assert repr(mine) == repr(theirs)
    for index in (np.array([[2, 5, 5, 0], [7, 2, 5, 3]]), np.array([1, 1, 2])):
        grad_out = randn(*index.shape, 5)
        out_mine, out_theirs = mine(tinygen.tensor(index)), theirs(torch.tensor(index))
        (out_mine * tinygen.tensor(grad_out)).sum().backward()
        (out_theirs * torch.tensor(grad_out)).sum().backward()
        np.testing.assert_allclose(out_mine.numpy(), out_theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_module_training_then_eval_matches_torch(momentum):
    theirs, mine = torch.nn.BatchNorm2d(3, momentum=momentum), BatchNorm2d(3, momentum=momentum)
    theirs.double(), mine.double()
    for _ in range(3):
        x = randn(4, 3, 3, 3) * 3 + 2
        np.testing.assert_allclose(
            mine(tinygen.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-12
        )
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(mine.state_dict()[key].numpy(), value.numpy(), rtol=1e-12, err_msg=key)
    theirs.eval(), mine.eval()
    x = randn(2, 3, 3, 3)
    np.testing.assert_allclose(
        mine(tinygen.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-12
    )


@pytest.mark.parametrize("freeze", [True, False])
def test_embedding_from_pretrained_matches_torch(freeze):
    weight = randn(6, 3)
    options = dict(freeze=freeze, padding_idx=1, max_norm=1.5)
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(weight), **options)
    mine = Embedding.from_pretrained(tinygen.tensor(weight), **options)
    assert repr(mine) == repr(theirs)
    assert mine.weight.requires_grad == theirs.weight.requires_grad == (not freeze)
    index = np.array([[1, 4, 4], [0, 5, 1]])
    out_mine, out_theirs = mine(tinygen.tensor(index)), theirs(torch.tensor(index))
    np.testing.assert_allclose(out_mine.numpy(), out_theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    if not freeze:
        grad_out = randn(2, 3, 3)
        (out_mine * tinygen.tensor(grad_out)).sum().backward()
        (out_theirs * torch.tensor(grad_out)).sum().backward()
        np.testing.assert_allclose(mine.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)
