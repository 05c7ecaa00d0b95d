"""read_idx and read_cifar_batch: round trips, pixel layout, and clear errors on damaged or hostile files."""

import gzip
import io
import os
import pickle
import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.data_tests.files import cifar_batch_bytes, idx_bytes, write_file
from tinygen.data import read_cifar_batch, read_idx
from tinygen.errors import DataFormatError

# ----------------------------------------------------------------------------- IDX

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@given(
    dtype=st.sampled_from(IDX_DTYPES),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
    compress=st.booleans(),
    data=st.data(),
)
def test_idx_round_trip(tmp_path_factory, dtype, shape, compress, data):
    array = data.draw(hnp.arrays(dtype, shape))  # NaNs compare equal in assert_array_equal
    path = write_file(str(tmp_path_factory.mktemp("idx") / "x-idx"), idx_bytes(array), compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_idx_gzip_is_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_raw = write_file(str(tmp_path / "raw.gz"), idx_bytes(array))
    raw_named_gz = write_file(str(tmp_path / "packed-idx"), idx_bytes(array), compress=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), array)
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)


def test_idx_big_endian_values_are_decoded(tmp_path):
    header = bytes([0, 0, 0x0B, 1]) + (2).to_bytes(4, "big")
    path = write_file(str(tmp_path / "i2"), header + b"\x01\x02\xff\xfe")
    np.testing.assert_array_equal(read_idx(path), [0x0102, -2])


def test_idx_payload_too_short_names_file_and_sizes(tmp_path):
    data = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    path = write_file(str(tmp_path / "short-idx"), data[:-7])
    with pytest.raises(DataFormatError, match=r"short-idx.*expected 7840 bytes .*found 7833"):
        read_idx(path)


def test_idx_payload_too_long_is_refused(tmp_path):
    path = write_file(str(tmp_path / "long-idx"), idx_bytes(np.zeros(5, np.uint8)) + b"\0")
    with pytest.raises(DataFormatError, match="expected 5 bytes .*found 6"):
        read_idx(path)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x01\x08\x01" + b"\0" * 8, "expected 0x00 0x00"),
        (b"PK\x03\x04" + b"\0" * 8, "not an IDX file"),
        (b"\x00\x00\x07\x01" + b"\0" * 8, r"dtype code is 0x07, expected one of 0x08 \(uint8\)"),
        (b"\x00\x00\x08\x03\x00\x00", "names 3 dimensions, so it needs 16 bytes"),
        (b"\x00\x00", "expected at least a 4-byte IDX header"),
    ],
)
def test_idx_bad_header_is_refused(tmp_path, data, message):
    path = write_file(str(tmp_path / "bad"), data)
    with pytest.raises(DataFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_truncated_gzip_is_refused(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = write_file(str(tmp_path / "cut.gz"), packed[: len(packed) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.gz: the gzip stream is truncated or corrupted"):
        read_idx(path)


def test_idx_gzip_crc_error_is_refused(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8))))
    packed[-8] ^= 0xFF  # the CRC-32 of the trailer
    path = write_file(str(tmp_path / "crc.gz"), bytes(packed))
    with pytest.raises(DataFormatError, match="truncated or corrupted"):
        read_idx(path)


# ----------------------------------------------------------------------------- CIFAR-10


def _cifar(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_batch_round_trip(tmp_path, protocol):
    images, labels = _cifar()
    path = write_file(str(tmp_path / "data_batch_1"), cifar_batch_bytes(images, labels, protocol))
    out_images, out_labels = read_cifar_batch(path)
    assert out_images.dtype == np.uint8 and out_images.shape == (3, 3, 32, 32)
    assert out_labels.dtype == np.int64
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


def test_cifar_pixel_layout_is_red_green_blue_planes_row_major():
    data = np.zeros((1, 3072), np.uint8)
    data[0, :1024], data[0, 1024:2048], data[0, 2048:] = 10, 20, 30  # R, G, B planes
    data[0, 1] = 99  # red, row 0, column 1
    data[0, 32] = 98  # red, row 1, column 0
    data[0, 1024 + 3 * 32 + 5] = 97  # green, row 3, column 5
    batch = {b"data": data, b"labels": [7], b"batch_label": b"b", b"filenames": [b"f.png"]}
    images, labels = read_cifar_batch(io.BytesIO(pickle.dumps(batch, protocol=2)))
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [7]
    assert images[0, 0, 0, 1] == 99 and images[0, 0, 1, 0] == 98 and images[0, 1, 3, 5] == 97
    assert images[0, 0, 5, 5] == 10 and images[0, 1, 0, 0] == 20 and images[0, 2, 31, 31] == 30


def test_cifar_batch_written_by_numpy_1_is_read_without_warnings(tmp_path):
    """Old pickles (the real batches) name numpy.core.multiarray, which NumPy 2 only aliases."""
    data = cifar_batch_bytes(*_cifar(), protocol=2)
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in old
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, _ = read_cifar_batch(io.BytesIO(old))
    np.testing.assert_array_equal(images, _cifar()[0])


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_cifar_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    hostile = pickle.dumps({b"data": _RunsCommand(f"touch {marker}"), b"labels": []}, protocol=2)
    refused = r"refuses to load global (posix|nt|os)\.system: a CIFAR-10 batch"
    with pytest.raises(DataFormatError, match=refused):
        read_cifar_batch(io.BytesIO(hostile))
    assert not marker.exists()


def test_cifar_codecs_encode_is_limited_to_latin1():
    hostile = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    with pytest.raises(DataFormatError, match="expected 'latin1'"):
        read_cifar_batch(io.BytesIO(hostile))


@pytest.mark.parametrize(
    "batch, message",
    [
        ([1, 2], "holds a list, expected a dict"),
        ({b"labels": [1]}, r"expected at least b'data' and b'labels'"),
        ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [1, 2]}, r"\(2, 3071\), expected .*\(n, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, "float32 array"),
        ({b"data": b"raw bytes", b"labels": [1, 2]}, "data is a bytes"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, r"expected 2 integers"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}, r"from 1 to 10, expected 0\.\.9"),
    ],
)
def test_cifar_bad_structure_is_refused(tmp_path, batch, message):
    path = write_file(str(tmp_path / "bad_batch"), pickle.dumps(batch, protocol=2))
    with pytest.raises(DataFormatError, match=message) as info:
        read_cifar_batch(path)
    assert "bad_batch" in str(info.value)


def test_cifar_truncated_pickle_is_refused(tmp_path):
    data = cifar_batch_bytes(*_cifar(), protocol=2)
    path = write_file(str(tmp_path / "cut_batch"), data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="cut_batch: is not a readable CIFAR-10 batch"):
        read_cifar_batch(path)
