"""``DATASETS``: what tinygen knows about each built-in data set (files, checksums, mirrors).

Each entry is a :class:`DatasetSpec`. The SHA-256 of an IDX file is taken over its
*decompressed* bytes, so the original ``.gz``, a recompressed one (as Debian ships) and an
uncompressed copy all verify. CIFAR-10 comes as one archive, whose own SHA-256 is checked.
"""

import dataclasses


@dataclasses.dataclass
class DatasetSpec:
    """One data set: where its files come from and what they must hold.

    ``files[split]`` names the files one split needs: for ``format="idx"`` the images file
    then the labels file (looked for as ``X`` or ``X.gz``, downloaded as ``X.gz``); for
    ``format="cifar"`` the batches inside ``folder`` (the archive unpacks to it).
    ``sha256`` maps a file name (IDX) or the archive name (CIFAR) to its hex digest.
    ``mirrors`` are base URLs, tried in order; a file's URL is ``mirror + name``.
    """

    name: str
    format: str
    image_shape: tuple
    classes: tuple
    files: dict
    sha256: dict
    mirrors: tuple
    num_examples: dict
    archive: str | None = None
    folder: str | None = None
    apt_package: str | None = None

    def download_names(self, split):
        """The names of the files to fetch from a mirror for ``split``."""
        if self.format == "cifar":
            return [self.archive]
        return [f"{name}.gz" for name in self.files[split]]


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

DATASETS = {
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        format="idx",
        image_shape=(1, 28, 28),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        files=dict(_IDX_FILES),
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        num_examples={"train": 60000, "test": 10000},
        apt_package="dataset-fashion-mnist",
    ),
    "mnist": DatasetSpec(
        name="mnist",
        format="idx",
        image_shape=(1, 28, 28),
        classes=tuple(str(digit) for digit in range(10)),
        files=dict(_IDX_FILES),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        num_examples={"train": 60000, "test": 10000},
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        format="cifar",
        image_shape=(3, 32, 32),
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        files={"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)},
        sha256={"cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        num_examples={"train": 50000, "test": 10000},
        archive="cifar-10-python.tar.gz",
        folder="cifar-10-batches-py",
    ),
}

_ALIASES = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}
SPLITS = ("train", "test")


def get_spec(name, caller="load_dataset"):
    """The DatasetSpec for ``name``: case-insensitive, ``_`` read as ``-``, a few aliases.

    Unknown names raise a ValueError listing the choices.
    """
    if not isinstance(name, str):
        raise TypeError(f"{caller}: name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"{caller}: unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[key]


def check_split(split, caller="load_dataset"):
    """``split`` if it is "train" or "test", else a ValueError listing both."""
    if split not in SPLITS:
        raise ValueError(f"{caller}: split is {split!r}, expected one of {', '.join(SPLITS)}")
    return split
