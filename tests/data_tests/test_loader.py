"""ImageDataset and DataLoader: shapes, dtypes, pixel mapping, shuffling, seeding, binarisation, errors."""

import numpy as np
import pytest

import tinygen
from tinygen.data import DataLoader, ImageDataset
from tinygen.errors import DTypeError, ShapeError


def dataset(n=10, channels=1, size=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8)
    return ImageDataset(images, rng.integers(0, 10, n), name="toy", split="test")


def collect(loader):
    return [(images.numpy().copy(), labels.numpy().copy()) for images, labels in loader]


# ----------------------------------------------------------------------------- ImageDataset

U8 = np.zeros((2, 1, 4, 4), np.uint8)  # two blank images


def test_dataset_indexing_and_repr():
    ds = dataset(n=10)
    image, label = ds[3]
    assert image.shape == (1, 4, 4) and image.dtype == np.uint8 and isinstance(label, int)
    np.testing.assert_array_equal(image, ds.images[3])
    sub = ds[2:5]
    assert isinstance(sub, ImageDataset) and len(sub) == 3
    assert (sub.name, sub.split, sub.classes) == ("toy", "test", ds.classes)
    picked = ds[np.array([9, 0])]
    np.testing.assert_array_equal(picked.labels, ds.labels[[9, 0]])
    assert len(ds[ds.labels < 5]) == int((ds.labels < 5).sum())
    assert ds[np.int64(-1)][1] == ds.labels[-1]
    assert repr(ds) == "ImageDataset(name='toy', split='test', images=(10, 1, 4, 4))"


def test_dataset_adds_channel_axis_and_default_classes():
    ds = ImageDataset(np.zeros((3, 5, 5), np.uint8), np.array([0, 2, 1], np.uint8))
    assert ds.images.shape == (3, 1, 5, 5) and ds.labels.dtype == np.int64
    assert ds.classes == ("0", "1", "2") and ds.name == "custom" and ds.split == "train"


@pytest.mark.parametrize(
    "images, labels, classes, error, message",
    [
        (U8.astype(np.float32), [0, 1], None, DTypeError, "float32 array, expected a numpy uint8"),
        ([[0]], [0], None, DTypeError, "images is a list"),
        (np.zeros((2, 4), np.uint8), [0, 1], None, ShapeError, r"shape \(2, 4\), expected \(N, C, H, W\)"),
        (None, [0], None, ShapeError, r"labels has shape \(1,\), expected \(2,\)"),
        (None, [0.5, 1.0], None, DTypeError, "labels has dtype float64"),
        (None, [0, -1], None, ValueError, "negative value -1"),
        (None, [0, 3], ("a", "b"), ValueError, "up to 3, but there are only 2 classes"),
    ],
)
def test_dataset_bad_arguments(images, labels, classes, error, message):
    images = U8 if images is None else images
    with pytest.raises(error, match=message):
        ImageDataset(images, labels, classes)


# ----------------------------------------------------------------------------- DataLoader


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_shapes_dtypes_and_len(drop_last, sizes):
    ds = dataset(n=10, channels=3)
    loader = DataLoader(ds, batch_size=4, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(images) for images, _ in batches] == sizes
    for images, labels in batches:
        assert isinstance(images, tinygen.Tensor) and isinstance(labels, tinygen.Tensor)
        assert images.shape[1:] == (3, 4, 4) and images.dtype == np.float32 and labels.dtype == np.int64
        assert images.device == "cpu" and not images.requires_grad


def test_order_without_shuffle_and_pixel_mapping():
    ds = dataset(n=7)
    (images, labels), *_ = collect(DataLoader(ds, batch_size=7))
    np.testing.assert_array_equal(labels, ds.labels)
    np.testing.assert_array_equal(images, ds.images.astype(np.float32) / 255)
    (images, _), *_ = collect(DataLoader(ds, batch_size=7, value_range=(-1, 1)))
    np.testing.assert_allclose(images, ds.images / 127.5 - 1, atol=1e-6)
    edges = ImageDataset(np.array([0, 255], np.uint8).reshape(2, 1, 1, 1), [0, 1])
    (images, _), *_ = collect(DataLoader(edges, batch_size=2, value_range=(-1, 1)))
    assert images.ravel().tolist() == [-1.0, 1.0]  # exactly the ends of the range


def test_float64_dtype():
    images, _ = next(iter(DataLoader(dataset(), batch_size=3, dtype=tinygen.float64, binarize=True)))
    assert images.dtype == np.float64


def test_shuffle_visits_every_example_once_per_epoch_and_reshuffles():
    ds = ImageDataset(np.zeros((23, 1, 1, 1), np.uint8), np.arange(23))  # label k on example k
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=tinygen.Generator(1))
    epochs = [np.concatenate([labels for _, labels in collect(loader)]) for _ in range(2)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(23))
    assert epochs[0].tolist() != epochs[1].tolist()
    assert epochs[0].tolist() != list(range(23))


def test_same_seed_same_batches_bit_for_bit():
    ds = dataset(n=30)
    kwargs = dict(batch_size=8, shuffle=True, binarize=True, value_range=(-1, 1))
    first = collect(DataLoader(ds, generator=tinygen.Generator(7), **kwargs))
    second = collect(DataLoader(ds, generator=tinygen.Generator(7), **kwargs))
    other = collect(DataLoader(ds, generator=tinygen.Generator(8), **kwargs))
    for (a, la), (b, lb) in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes() and la.tobytes() == lb.tobytes()
    assert any(la.tobytes() != lc.tobytes() for (_, la), (_, lc) in zip(first, other, strict=True))


def test_default_generator_is_looked_up_at_iteration():
    ds = dataset(n=30)
    loader = DataLoader(ds, batch_size=30, shuffle=True)
    tinygen.manual_seed(3)
    first = collect(loader)
    tinygen.manual_seed(3)
    assert collect(loader)[0][1].tolist() == first[0][1].tolist()


def test_binarize_gives_two_values_and_tracks_pixel_mean():
    rng = np.random.default_rng(0)
    ds = ImageDataset(rng.integers(0, 256, (64, 1, 16, 16), dtype=np.uint8), np.zeros(64, np.int64))
    loader = DataLoader(ds, batch_size=64, binarize=True, value_range=(-1, 1), generator=tinygen.Generator(0))
    first, second = collect(loader)[0][0], collect(loader)[0][0]
    assert set(np.unique(first).tolist()) == {-1.0, 1.0}
    mean_pixel = ds.images.mean() / 255
    assert abs((first.mean() + 1) / 2 - mean_pixel) < 0.01  # 16384 draws: std about 0.004
    assert not np.array_equal(first, second)  # fresh noise every pass


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(batch_size=0), ValueError, "batch_size is 0, expected a positive int"),
        (dict(batch_size=2.5), ValueError, "batch_size is 2.5"),
        (dict(batch_size=True), ValueError, "batch_size is True"),
        (dict(shuffle="yes"), TypeError, "shuffle is 'yes', expected True or False"),
        (dict(value_range=(1, 0)), ValueError, r"value_range is \(1, 0\), expected lo < hi"),
        (dict(value_range=(0, 1, 2)), ValueError, "expected two numbers"),
        (dict(value_range="ab"), ValueError, "expected two numbers"),
        (dict(dtype=tinygen.int64), DTypeError, "dtype is int64, expected a floating dtype"),
        (dict(generator=np.random.default_rng(0)), TypeError, "expected a tinygen.Generator"),
        (dict(device="tpu"), ValueError, "tpu"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(dataset(), **kwargs)


def test_dataset_must_hold_uint8_images():
    with pytest.raises(TypeError, match="dataset is a list"):
        DataLoader([1, 2, 3])

    class Floats:
        images = np.zeros((2, 1, 3, 3), np.float32)
        labels = np.zeros(2, np.int64)

    with pytest.raises(DTypeError, match=r"dataset.images is float32 \(2, 1, 3, 3\), expected uint8"):
        DataLoader(Floats())
