"""Containers: ``Sequential`` (a chain of layers), ``ModuleList`` and ``ModuleDict``.

Each registers its entries as child modules, so their parameters appear in
``parameters()`` and ``state_dict()``: a Sequential's keys are ``"0.weight"``, ``"1.bias"``...
"""

import collections
import operator

from tinygen.errors import IndexOutOfRangeError
from tinygen.nn.module import Module


def _index(idx, size, owner):
    """``idx`` as a non-negative position, or an ``IndexError`` naming the valid range."""
    idx = operator.index(idx)
    if not -size <= idx < size:
        raise IndexOutOfRangeError(f"{owner}: index {idx} is out of range for {size} modules")
    return idx + size if idx < 0 else idx


class _IndexedModules(Module):
    """What Sequential and ModuleList share: children named ``"0"``, ``"1"``... in order."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        return list(self._modules.values())[_index(idx, len(self), type(self).__name__)]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(idx, len(self), type(self).__name__)]
        setattr(self, key, module)

    def __delitem__(self, idx):
        keys = list(self._modules)
        if isinstance(idx, slice):
            doomed = keys[idx]
        else:
            doomed = [keys[_index(idx, len(self), type(self).__name__)]]
        self._renumber([m for k, m in self._modules.items() if k not in doomed])

    def _renumber(self, modules):
        """Hold ``modules`` under the keys ``"0"``, ``"1"``... (as PyTorch does after a delete)."""
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Put ``module`` before position ``index`` (the keys are renumbered)."""
        modules = list(self._modules.values())
        if not -len(modules) <= index <= len(modules):
            raise IndexOutOfRangeError(
                f"{type(self).__name__}.insert: index {index} is out of range for {len(modules)} modules"
            )
        index = index + len(modules) if index < 0 else index
        modules.insert(index, module)
        self._renumber(modules)
        return self


class Sequential(_IndexedModules):
    """Calls its modules in order, feeding each one's output to the next.

    ``Sequential(Linear(2, 3), ReLU())`` or, to name the children,
    ``Sequential(OrderedDict([("fc", Linear(2, 3)), ("act", ReLU())]))``.
    A slice is a new Sequential sharing the same modules.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], collections.OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # keep the names, as PyTorch does
            return Sequential(collections.OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def forward(self, input):  # noqa: A002  (PyTorch's name)
        for module in self:
            input = module(input)
        return input


class ModuleList(_IndexedModules):
    """A list of modules, registered so their parameters are found; it has no ``forward``."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return super().__getitem__(idx)

    def __iadd__(self, modules):
        return self.extend(modules)


class ModuleDict(Module):
    """A dict of modules, registered under their keys (in insertion order)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key):
        """Remove ``key`` and return its module."""
        module = self[key]
        del self[key]
        return module

    def clear(self):
        self._modules.clear()

    def update(self, modules):
        """Add the entries of a mapping, or of an iterable of ``(key, module)`` pairs."""
        items = modules.items() if isinstance(modules, (dict, ModuleDict)) else modules
        for key, module in items:
            self[key] = module
