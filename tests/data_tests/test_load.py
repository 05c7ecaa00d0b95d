"""load_dataset: search order, checksums, not-found message, downloads from a local server, CIFAR-10.

Every test writes its own tiny files and patches their SHA-256 into DATASETS; the mirrors
point at 127.0.0.1, so nothing here touches the network or the real 30 MB files (except
the one test that reads Debian's Fashion-MNIST when it is installed).
"""

import functools
import gzip
import http.server
import os
import re
import shutil
import threading

import numpy as np
import pytest

from tests.data_tests import files
from tinygen.data import DATASETS, ImageDataset, load_dataset, search_dirs
from tinygen.data import load as load_module
from tinygen.errors import DataFormatError, DatasetNotFoundError

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connections are refused at once


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean environment: cache in tmp_path/cache, no TINYGEN_DATA, no Debian copy, no network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGEN_DATA", raising=False)
    monkeypatch.setattr(load_module, "DEBIAN_FASHION_MNIST", str(tmp_path / "debian"))
    for spec in DATASETS.values():
        monkeypatch.setattr(spec, "mirrors", (UNREACHABLE,))
    return tmp_path


def patch_digests(monkeypatch, name, digests):
    for file_name, digest in digests.items():
        monkeypatch.setitem(DATASETS[name].sha256, file_name, digest)


def assert_same(dataset, images, labels):
    assert isinstance(dataset, ImageDataset)
    np.testing.assert_array_equal(dataset.images[:, 0], images)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.labels.dtype == np.int64


# ----------------------------------------------------------------------------- names and search order


@pytest.mark.parametrize("name", ["Fashion-MNIST", "fashion_mnist", "fashionmnist", "FashionMNIST"])
def test_name_aliases(env, monkeypatch, name):
    images, labels, digests = files.write_idx_split(str(env / "root"), "test")
    patch_digests(monkeypatch, "fashion-mnist", digests)
    ds = load_dataset(name, "test", root=env / "root")
    assert (ds.name, ds.split) == ("fashion-mnist", "test")
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert_same(ds, images, labels)


def test_unknown_name_and_split_list_the_choices(env):
    with pytest.raises(ValueError, match="data set 'svhn'; expected one of fashion-mnist, mnist, cifar10"):
        load_dataset("svhn")
    with pytest.raises(ValueError, match="split is 'valid', expected one of train, test"):
        load_dataset("mnist", "valid")


def test_search_dirs_order_reads_environment_at_call_time(env, monkeypatch):
    monkeypatch.setenv("TINYGEN_DATA", "/data/sets")
    cache = str(env / "cache" / "tinygen")
    assert search_dirs("fashion-mnist", "/r") == ["/r", "/data/sets", cache, str(env / "debian")]
    assert search_dirs("mnist") == ["/data/sets", cache]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(env / "home"))
    assert search_dirs("mnist")[-1] == str(env / "home" / ".cache" / "tinygen")


def test_root_beats_tinygen_data_beats_cache(env, monkeypatch):
    """The valid copy is always in the place that should win; the others hold other data."""
    images, labels, digests = files.write_idx_split(str(env / "good"), seed=1)
    patch_digests(monkeypatch, "mnist", digests)
    cache = env / "cache" / "tinygen"
    files.write_idx_split(str(cache / "mnist"), seed=2)  # sub-folder form
    files.write_idx_split(str(env / "env"), seed=3, compress=False)
    monkeypatch.setenv("TINYGEN_DATA", str(env / "env"))

    assert_same(load_dataset("mnist", root=env / "good"), images, labels)  # root first
    with pytest.raises(DataFormatError, match=re.escape(str(env / "env"))):  # then TINYGEN_DATA's (bad) copy
        load_dataset("mnist")

    shutil.rmtree(env / "env")
    files.write_idx_split(str(env / "env"), seed=1, compress=False)  # now the good one, uncompressed
    assert_same(load_dataset("mnist", download=False), images, labels)

    shutil.rmtree(env / "env")
    shutil.rmtree(cache / "mnist")
    files.write_idx_split(str(cache / "mnist"), seed=1)
    assert_same(load_dataset("mnist", download=False), images, labels)  # finally the cache


def test_an_incomplete_folder_is_passed_over(env, monkeypatch):
    images, labels, digests = files.write_idx_split(str(env / "env" / "mnist"))
    patch_digests(monkeypatch, "mnist", digests)
    monkeypatch.setenv("TINYGEN_DATA", str(env / "env"))
    files.write_file(str(env / "root" / "train-images-idx3-ubyte"), b"no labels file next to me")
    assert_same(load_dataset("mnist", root=env / "root"), images, labels)


def test_mixed_raw_and_gz_files(env, monkeypatch):
    images, labels, digests = files.write_idx_split(str(env / "root"))
    patch_digests(monkeypatch, "mnist", digests)
    path = env / "root" / "train-labels-idx1-ubyte.gz"
    files.write_file(str(path)[:-3], gzip.decompress(path.read_bytes()))
    path.unlink()
    assert_same(load_dataset("mnist", root=env / "root"), images, labels)


def test_debian_folder_is_searched_for_fashion_mnist(env, monkeypatch):
    images, labels, digests = files.write_idx_split(str(env / "debian"), "test")
    patch_digests(monkeypatch, "fashion-mnist", digests)
    assert_same(load_dataset("fashion-mnist", "test", download=False), images, labels)


# ----------------------------------------------------------------------------- checksums and damage


def test_checksum_mismatch_names_file_digests_and_remedy(env, monkeypatch):
    _, _, digests = files.write_idx_split(str(env / "root"))
    patch_digests(monkeypatch, "mnist", digests)
    files.write_idx_split(str(env / "root"), seed=5)  # same names, other pixels
    with pytest.raises(DataFormatError) as info:
        load_dataset("mnist", root=env / "root")
    message = str(info.value)
    assert str(env / "root" / "train-images-idx3-ubyte.gz") in message
    assert digests["train-images-idx3-ubyte"] in message  # expected
    assert "delete it and retry" in message


def test_truncated_gzip_in_found_file(env, monkeypatch):
    _, _, digests = files.write_idx_split(str(env / "root"))
    patch_digests(monkeypatch, "mnist", digests)
    path = env / "root" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match=r"idx3-ubyte\.gz: the gzip stream .*delete it and retry"):
        load_dataset("mnist", root=env / "root")


def test_images_and_labels_of_different_lengths(env, monkeypatch):
    _, _, digests = files.write_idx_split(str(env / "root"), n=6)
    labels = files.idx_bytes(np.zeros(5, np.uint8))
    files.write_file(str(env / "root" / "train-labels-idx1-ubyte.gz"), labels, compress=True)
    digests["train-labels-idx1-ubyte"] = files.sha256(labels)
    patch_digests(monkeypatch, "mnist", digests)
    with pytest.raises(DataFormatError, match=r"labels of shape \(5,\), expected \(6,\)"):
        load_dataset("mnist", root=env / "root")


# ----------------------------------------------------------------------------- not found


def test_not_found_without_download_explains_where_and_how(env):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", root=env / "mine", download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for directory in (env / "mine", env / "cache" / "tinygen", env / "debian"):
        assert str(directory) in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert "TINYGEN_DATA" in message and "root=" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=False" in message
    assert "\n" not in message


def test_not_found_when_every_mirror_fails_reports_the_error(env):
    with pytest.raises(DatasetNotFoundError, match=r"the download failed .*127\.0\.0\.1:9") as info:
        load_dataset("mnist", "test")
    assert "apt-get" not in str(info.value)
    assert not any(files_in(env / "cache"))


# ----------------------------------------------------------------------------- downloads


def files_in(folder):
    return [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names]


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_tries_mirrors_in_order_and_caches_verified_files(env, monkeypatch, server):
    images, labels, digests = files.write_idx_split(str(env / "served"), "test")
    patch_digests(monkeypatch, "mnist", digests)
    monkeypatch.setattr(DATASETS["mnist"], "mirrors", (UNREACHABLE, server))
    assert_same(load_dataset("mnist", "test"), images, labels)
    cached = sorted(files_in(env / "cache"))
    folder = env / "cache" / "tinygen" / "mnist"
    assert cached == [str(folder / "t10k-images-idx3-ubyte.gz"), str(folder / "t10k-labels-idx1-ubyte.gz")]
    shutil.rmtree(env / "served")  # from now on the cache is all there is
    assert_same(load_dataset("mnist", "test", download=False), images, labels)


def test_download_with_wrong_content_is_rejected_and_leaves_nothing(env, monkeypatch, server):
    _, _, digests = files.write_idx_split(str(env / "served"), "test")
    digests["t10k-images-idx3-ubyte"] = "0" * 64
    patch_digests(monkeypatch, "mnist", digests)
    monkeypatch.setattr(DATASETS["mnist"], "mirrors", (server,))
    with pytest.raises(DataFormatError, match=r"wrong content.*SHA-256 is [0-9a-f]{64}, expected 0{64}"):
        load_dataset("mnist", "test")
    assert not any("images" in path or ".part" in path for path in files_in(env / "cache"))


def test_download_of_a_missing_file_reports_http_error(env, monkeypatch, server):
    monkeypatch.setattr(DATASETS["mnist"], "mirrors", (server,))
    with pytest.raises(DatasetNotFoundError, match="HTTPError.*File not found"):
        load_dataset("mnist", "test")
    assert files_in(env / "cache") == []


# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_from_archive_in_batch_order(env, monkeypatch):
    batches = files.tiny_cifar_batches(n=2)
    digest = files.write_cifar_archive(str(env / "root" / "cifar-10-python.tar.gz"), batches)
    monkeypatch.setitem(DATASETS["cifar10"].sha256, "cifar-10-python.tar.gz", digest)
    train = load_dataset("CIFAR-10", "train", root=env / "root")
    assert train.images.shape == (10, 3, 32, 32) and train.classes[0] == "airplane"
    names = [f"data_batch_{k}" for k in range(1, 6)]
    np.testing.assert_array_equal(train.images, np.concatenate([batches[b][0] for b in names]))
    np.testing.assert_array_equal(train.labels, np.concatenate([batches[b][1] for b in names]))
    test = load_dataset("cifar10", "test", root=env / "root")
    np.testing.assert_array_equal(test.images, batches["test_batch"][0])


def test_cifar10_archive_with_wrong_hash(env, monkeypatch):
    archive = env / "root" / "cifar10" / "cifar-10-python.tar.gz"
    files.write_cifar_archive(str(archive), files.tiny_cifar_batches())
    with pytest.raises(DataFormatError, match=r"cifar-10-python\.tar\.gz: fails its checksum.*6d958be0"):
        load_dataset("cifar10", root=env / "root")


@pytest.mark.parametrize("inner", ["cifar-10-batches-py", ""])
def test_cifar10_from_unpacked_batches(env, inner):
    batches = files.tiny_cifar_batches(n=1)
    for name, (images, labels) in batches.items():
        files.write_file(str(env / "root" / inner / name), files.cifar_batch_bytes(images, labels))
    test = load_dataset("cifar10", "test", root=env / "root")
    np.testing.assert_array_equal(test.images, batches["test_batch"][0])


def test_cifar10_unpacked_bad_batch_says_delete(env):
    for name in files.CIFAR_BATCHES:
        files.write_file(str(env / "root" / "cifar-10-batches-py" / name), b"garbage")
    with pytest.raises(DataFormatError, match=r"test_batch: is not a readable .*delete it and retry"):
        load_dataset("cifar10", "test", root=env / "root")


def test_cifar10_download(env, monkeypatch, server):
    batches = files.tiny_cifar_batches(n=1)
    digest = files.write_cifar_archive(str(env / "served" / "cifar-10-python.tar.gz"), batches)
    monkeypatch.setitem(DATASETS["cifar10"].sha256, "cifar-10-python.tar.gz", digest)
    monkeypatch.setattr(DATASETS["cifar10"], "mirrors", (server,))
    test = load_dataset("cifar10", "test")
    np.testing.assert_array_equal(test.labels, batches["test_batch"][1])
    assert files_in(env / "cache") == [str(env / "cache" / "tinygen" / "cifar10" / "cifar-10-python.tar.gz")]


# ----------------------------------------------------------------------------- the real files


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="Debian's Fashion-MNIST")
def test_real_fashion_mnist_test_split(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TINYGEN_DATA", raising=False)
    test = load_dataset("fashion-mnist", "test", download=False)
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == np.uint8
    assert np.bincount(test.labels).tolist() == [1000] * 10
