"""Error types raised at tinygen's public boundary.

Each subclasses the built-in a user would catch (``ValueError``, ``TypeError``,
``RuntimeError``), so ``except ValueError`` keeps working. Messages name the
argument, the value seen and the value expected:
``conv2d: input.shape[1] is 3, expected weight.shape[1]*groups = 6``.
"""


class ShapeError(ValueError):
    """An argument has a shape the operation cannot use."""


class DeviceError(ValueError):
    """A device string is malformed, unavailable, or tensors sit on different devices."""


class DTypeError(TypeError):
    """An argument has a dtype the operation cannot use."""


class GraphError(RuntimeError):
    """The autograd graph cannot be used this way (e.g. backward through freed buffers)."""


class IndexOutOfRangeError(ShapeError, IndexError):
    """An index does not fit the tensor's shape (also an ``IndexError``, as in PyTorch)."""


class StateDictError(ShapeError, KeyError):
    """``load_state_dict`` found missing, unexpected or wrongly shaped entries.

    A ``ValueError`` (and a ``KeyError``) listing every problem at once, as PyTorch's message does.
    """

    __str__ = ValueError.__str__  # KeyError would print the message as a quoted repr


class CheckpointError(ValueError):
    """A file is not a readable tinygen checkpoint (truncated, corrupted, or something else)."""


class DataFormatError(ValueError):
    """A data file is truncated, corrupted, fails its checksum, or is not in the format expected."""


class DatasetNotFoundError(FileNotFoundError):
    """A data set is in none of the places searched and could not be downloaded."""
