"""``load_dataset``: find a data set on disk (or download it), verify it, and read it.

Search order; the first place that holds every file of the split wins:

1. ``root``, when given;
2. ``$TINYGEN_DATA`` (read at each call);
3. the user cache, ``$XDG_CACHE_HOME/tinygen`` or ``~/.cache/tinygen``;
4. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist`` (``apt-get install
   dataset-fashion-mnist``).

Each directory is searched directly and in a sub-folder named after the set
(``<dir>/fashion-mnist/``). An IDX file may be ``X`` or ``X.gz``. CIFAR-10 may be the
archive ``cifar-10-python.tar.gz`` (read in place, no extraction) or the unpacked batches,
in ``cifar-10-batches-py/`` or loose.

A file found is always verified: an IDX file by the SHA-256 of its decompressed bytes,
the CIFAR-10 archive by its own SHA-256, unpacked CIFAR-10 batches (no published hashes)
by their structure. A file that fails raises DataFormatError; it is never skipped. If
nothing is found and ``download=True``, the files are fetched into the cache folder
``<cache>/<name>/``. See docs/data.md.
"""

import gzip
import hashlib
import os
import tarfile

import numpy

from tinygen.data import download as downloader
from tinygen.data.dataset import ImageDataset
from tinygen.data.formats import gunzip_if_needed, load_cifar_batch, parse_idx
from tinygen.data.registry import check_split, get_spec
from tinygen.errors import DataFormatError, DatasetNotFoundError

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_HASH_CHUNK = 1 << 20


def cache_dir():
    """The user cache for data sets: ``$XDG_CACHE_HOME/tinygen``, else ``~/.cache/tinygen``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinygen")


def search_dirs(name, root=None):
    """The directories searched for data set ``name``, in order (see the module docstring)."""
    name = get_spec(name, "search_dirs").name
    dirs = []
    if root is not None:
        dirs.append(os.path.expanduser(os.fspath(root)))
    if os.environ.get("TINYGEN_DATA"):
        dirs.append(os.path.expanduser(os.environ["TINYGEN_DATA"]))
    dirs.append(cache_dir())
    if name == "fashion-mnist":
        dirs.append(DEBIAN_FASHION_MNIST)
    return dirs


# ----------------------------------------------------------------------------- finding files


def _find_idx(spec, split, folder):
    """``{file name: path}`` for every IDX file of ``split`` in ``folder`` (``X`` or ``X.gz``), or None."""
    found = {}
    for name in spec.files[split]:
        candidates = [os.path.join(folder, name), os.path.join(folder, name + ".gz")]
        existing = [path for path in candidates if os.path.isfile(path)]
        if not existing:
            return None
        found[name] = existing[0]
    return found


def _find_cifar(spec, split, folder):
    """``("archive", path)`` or ``("batches", [paths])`` for CIFAR-10 in ``folder``, or None."""
    for batches_folder in (os.path.join(folder, spec.folder), folder):
        paths = [os.path.join(batches_folder, name) for name in spec.files[split]]
        if all(os.path.isfile(path) for path in paths):
            return "batches", paths
    archive = os.path.join(folder, spec.archive)
    if os.path.isfile(archive):
        return "archive", archive
    return None


def _find(spec, split, folder):
    return _find_cifar(spec, split, folder) if spec.format == "cifar" else _find_idx(spec, split, folder)


# ----------------------------------------------------------------------------- checksums


def _checksum_error(path, expected, actual):
    return DataFormatError(
        f"{path}: fails its checksum: SHA-256 is {actual}, expected {expected}. The file is "
        "corrupted, incomplete or not the one tinygen expects; delete it and retry"
    )


def _file_sha256(path, decompress):
    """SHA-256 of the file's bytes, or of its decompressed bytes when ``decompress`` and it is gzipped."""
    digest = hashlib.sha256()
    with open(path, "rb") as raw:
        gzipped = decompress and raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as f:
            while True:
                chunk = f.read(_HASH_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
    except (OSError, EOFError) as err:
        raise DataFormatError(f"{path}: the gzip stream is truncated or corrupted ({err})") from None
    return digest.hexdigest()


def _unpacked_name(spec, name):
    """The name a downloaded file goes by in ``spec.sha256``: IDX files without their ``.gz``."""
    return name.removesuffix(".gz") if spec.format == "idx" else name


def _verifier(spec, name):
    """A ``check(path)`` for a download of ``name`` (raises DataFormatError on a wrong SHA-256)."""
    expected = spec.sha256[_unpacked_name(spec, name)]

    def check(path):
        actual = _file_sha256(path, decompress=spec.format == "idx")
        if actual != expected:
            raise DataFormatError(f"SHA-256 is {actual}, expected {expected}")

    return check


# ----------------------------------------------------------------------------- reading


def _read_idx_split(spec, split, paths):
    """Verify and read the images and labels files of an IDX data set."""
    arrays = []
    for name, path in paths.items():
        with open(path, "rb") as f:
            raw = f.read()
        try:
            data = gunzip_if_needed(raw, path)
        except DataFormatError as err:
            raise DataFormatError(f"{err}; delete it and retry") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != spec.sha256[name]:
            raise _checksum_error(path, spec.sha256[name], actual)
        arrays.append(parse_idx(data, path))
    (images, labels), (images_path, labels_path) = arrays, paths.values()
    if images.dtype != numpy.uint8 or images.shape[1:] != spec.image_shape[1:]:
        raise DataFormatError(
            f"{images_path}: holds {images.dtype} {images.shape}, expected uint8 (N, *{spec.image_shape[1:]})"
        )
    if labels.shape != (len(images),) or (labels.size and labels.max() >= len(spec.classes)):
        raise DataFormatError(
            f"{labels_path}: holds labels of shape {labels.shape}, expected ({len(images)},) "
            f"with values 0..{len(spec.classes) - 1}, one per image in {images_path}"
        )
    return images[:, None], labels


def _read_cifar_split(spec, split, found):
    """Read the batches of ``split`` from the unpacked folder or straight from the verified archive."""
    kind, where = found
    if kind == "batches":
        parts = []
        for path in where:
            with open(path, "rb") as f:
                try:
                    parts.append(load_cifar_batch(f, path))
                except DataFormatError as err:
                    raise DataFormatError(f"{err}; delete it and retry") from None
    else:
        actual = _file_sha256(where, decompress=False)
        if actual != spec.sha256[spec.archive]:
            raise _checksum_error(where, spec.sha256[spec.archive], actual)
        wanted = {f"{spec.folder}/{name}": name for name in spec.files[split]}
        by_name = {}
        with tarfile.open(where, "r:gz") as archive:
            for member in archive:  # one pass in archive order: gzip cannot seek backwards cheaply
                if member.name in wanted and member.isfile():
                    source = f"{where}:{member.name}"
                    by_name[wanted[member.name]] = load_cifar_batch(archive.extractfile(member), source)
        missing = [name for name in spec.files[split] if name not in by_name]
        if missing:
            raise DataFormatError(f"{where}: has no {', '.join(missing)} under {spec.folder}/")
        parts = [by_name[name] for name in spec.files[split]]
    images = numpy.concatenate([images for images, _ in parts])
    labels = numpy.concatenate([labels for _, labels in parts])
    return images, labels


def _read(spec, split, found):
    read = _read_cifar_split if spec.format == "cifar" else _read_idx_split
    images, labels = read(spec, split, found)
    return ImageDataset(images, labels, classes=spec.classes, name=spec.name, split=split)


# ----------------------------------------------------------------------------- load_dataset


def _download(spec, split):
    """Fetch the files of ``split`` missing from the cache folder; return what ``_find`` finds there."""
    folder = os.path.join(cache_dir(), spec.name)
    for name in spec.download_names(split):
        path = os.path.join(folder, name)
        if os.path.isfile(path) or os.path.isfile(os.path.join(folder, _unpacked_name(spec, name))):
            continue  # already there (and verified when read)
        urls = [mirror + name for mirror in spec.mirrors]
        downloader.download(urls, path, _verifier(spec, name))
    return _find(spec, split, folder)


def _not_found_message(spec, split, dirs, download, error):
    if spec.format == "cifar":
        wanted = f"{spec.archive}, or the batches {', '.join(spec.files[split])} in {spec.folder}/ or loose"
    else:
        wanted = f"{' and '.join(spec.files[split])}, each raw or .gz"
    if not download:
        fetched = "download=False, so nothing was downloaded"
    else:
        fetched = f"the download failed ({error})"
    how = (
        f"To get it, pass root= or set TINYGEN_DATA to a folder holding the files, or put them in "
        f"{os.path.join(cache_dir(), spec.name)}{os.sep}"
    )
    if not download:
        names = " and ".join(spec.download_names(split))
        how += f", or call with download=True to fetch {names} from {spec.mirrors[0]}"
    if spec.apt_package:
        how += f", or on Debian/Ubuntu run 'sudo apt-get install {spec.apt_package}'"
    return (
        f"load_dataset: found no complete copy of {spec.name} split {split!r} ({wanted}) in "
        f"{', '.join(dirs)} (each searched directly and in its {spec.name}/ sub-folder), and {fetched}. "
        f"{how}."
    )


def load_dataset(name="fashion-mnist", split="train", root=None, download=True):
    """Load a built-in data set as an :class:`ImageDataset` of uint8 images.

    **Shapes**: fashion-mnist and mnist give images ``(60000, 1, 28, 28)`` for ``"train"``
    and ``(10000, 1, 28, 28)`` for ``"test"``; cifar10 gives ``(50000, 3, 32, 32)`` and
    ``(10000, 3, 32, 32)``. Labels are int64 ``(N,)`` in 0..9.

    ``name`` is case-insensitive (``"fashion_mnist"``, ``"FashionMNIST"`` and ``"cifar-10"``
    work too). See the module docstring for where files are searched, how they are
    verified, and when they are downloaded. Raises DataFormatError for a file that fails
    its check (delete it and retry) and DatasetNotFoundError when the set is nowhere and
    cannot be downloaded; that message lists the directories searched and how to get it.
    """
    spec = get_spec(name)
    check_split(split)
    if not isinstance(download, bool):
        raise TypeError(f"load_dataset: download must be True or False, got {download!r}")
    dirs = search_dirs(spec.name, root)
    for directory in dirs:
        for folder in (directory, os.path.join(directory, spec.name)):
            found = _find(spec, split, folder)
            if found is not None:
                return _read(spec, split, found)
    error = None
    if download:
        try:
            found = _download(spec, split)
        except downloader.DownloadError as err:
            error = err
        else:
            return _read(spec, split, found)
    raise DatasetNotFoundError(_not_found_message(spec, split, dirs, download, error))
