"""``Module`` and ``Parameter``: PyTorch's way of holding a model's state.

A Module keeps three ordered dicts, filled by plain attribute assignment:

- ``_parameters``: ``Parameter``s (leaf tensors that require grad), e.g. ``weight``;
- ``_buffers``: state that is saved but not trained, e.g. BatchNorm's ``running_mean``;
- ``_modules``: child modules.

``state_dict()`` walks them and names every entry with its dotted path
(``features.0.weight``), exactly as PyTorch does, so weights move between the two.
"""

import collections
import collections.abc

import numpy

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.errors import DTypeError, StateDictError

IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A leaf tensor that a Module registers as trainable (``requires_grad=True`` by default)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = numpy.empty(0, dtype=numpy.float32)
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _check_name(kind, name):
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a str, got {type(name).__name__}")
    if name == "" or "." in name:
        raise KeyError(f'{kind} name can\'t be empty or contain ".", got {name!r}')


class Module:
    """Base class of layers and models; subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_persistent", set())  # names of buffers saved in state_dict
        object.__setattr__(self, "_modules", {})

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        """Route Parameters, Modules and registered buffers into their tables (PyTorch's rules)."""
        if "_parameters" not in self.__dict__:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(
                    f"{type(self).__name__}: call super().__init__() before assigning {name!r}"
                )
            object.__setattr__(self, name, value)
        elif isinstance(value, Parameter):
            self._forget(name, keep=self._parameters)
            self._parameters[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} (Parameter or None expected)"
                )
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module {name!r} (Module or None expected)"
                )
            self._modules[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)"
                )
            self._buffers[name] = value  # e.g. BatchNorm updating running_mean
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep):
        """Remove ``name`` from the plain attributes and every table but ``keep``.

        Keeping it in ``keep`` means a replaced parameter or module keeps its place in
        ``state_dict`` order, as in PyTorch.
        """
        for table in (self._parameters, self._buffers, self._modules):
            if table is not keep:
                table.pop(name, None)
        self._persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._persistent.discard(name)
                return
        object.__delattr__(self, name)

    def _check_new(self, kind, name, table):
        """Check that ``name`` can be registered in ``table`` (re-registering keeps its place)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot register a {kind} before Module.__init__() is called")
        if name in self.__dict__[table]:
            return
        _check_name(kind, name)
        others = [t for t in ("_parameters", "_buffers", "_modules") if t != table]
        if hasattr(type(self), name) or any(name in self.__dict__[t] for t in others):
            raise KeyError(f"attribute {name!r} already exists")
        self.__dict__.pop(name, None)  # a plain attribute is replaced (PyTorch would refuse)

    def register_parameter(self, name, param):
        """Add ``param`` (a Parameter, or None for an absent one such as ``bias=False``)."""
        self._check_new("parameter", name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign {type(param).__name__} as parameter {name!r} (Parameter or None expected)"
            )
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Keep ``tensor`` with the module (moved by ``to``); saved in ``state_dict`` if persistent."""
        self._check_new("buffer", name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}"
            )
        self._buffers[name] = tensor
        if persistent:
            self._persistent.add(name)
        else:
            self._persistent.discard(name)

    def add_module(self, name, module):
        """Add a child module (or None) under ``name``; the same as assigning an attribute."""
        self._check_new("module", name, "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(dotted name, module)`` for this module and every descendant, depth first.

        A module reachable by two paths is yielded once (at its first path) unless
        ``remove_duplicate=False``; ``memo`` is the set of modules already yielded.
        """
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(
                    memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
                )

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        """``(name, module)`` for each direct child, each module once."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, table, prefix, recurse, remove_duplicate):
        seen = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted name, parameter)`` pairs; a shared parameter appears once (PyTorch's order)."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted name, buffer)`` pairs, persistent or not."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ------------------------------------------------------------------ modes and devices
    def train(self, mode=True):
        """Set training mode here and, through each child's own ``train``, below."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Switch gradient recording on or off for every parameter (e.g. to freeze a GAN's D)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set ``.grad`` to None, or to zeros with ``set_to_none=False``."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = Tensor(backend.get_array_module(p.grad.data).zeros_like(p.grad.data))

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant and then this module (PyTorch's order)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _convert(self, convert_array):
        """Replace the data of every parameter and buffer in place (identities are kept)."""
        done = set()
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for tensor in table.values():
                    if tensor is None or id(tensor) in done:
                        continue
                    done.add(id(tensor))
                    tensor.data = convert_array(tensor.data)
                    if tensor.grad is not None:
                        tensor.grad = Tensor(convert_array(tensor.grad.data))
        return self

    def to(self, *args, dtype=None, device=None):
        """``to(device)``, ``to(dtype)``: floating-point parameters and buffers change dtype.

        Works in place and returns ``self``; Parameter objects stay the same objects, so an
        optimizer built before the move keeps working. Integer buffers keep their dtype.
        """
        device, dtype = backend.device_and_dtype(args, device, dtype)
        if dtype is not None and dtype.kind != "f":
            raise DTypeError(f"Module.to: dtype must be floating point, got {dtype}")
        if device is not None:
            self._convert(lambda a: backend.to_device(a, device))
        if dtype is not None:
            self._convert(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def double(self):
        return self.to(numpy.float64)

    def float(self):
        return self.to(numpy.float32)

    def half(self):
        return self.to(numpy.float16)

    # ------------------------------------------------------------------ state
    def _state_entries(self):
        """``(key, tensor)`` for every parameter and persistent buffer, in PyTorch's order.

        Each module's parameters, then its buffers, then its children; a module shared by
        two paths is listed under both, as PyTorch's ``state_dict`` does.
        """
        for prefix, module in self.named_modules(remove_duplicate=False):
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield dot + name, p
            for name, b in module._buffers.items():
                if b is not None and name in module._persistent:
                    yield dot + name, b

    def state_dict(self, prefix="", keep_vars=False):
        """An ordered ``{dotted name: tensor}`` of parameters and persistent buffers (PyTorch's keys).

        The tensors share memory with the module (detached unless ``keep_vars``), so copy
        them if you need a snapshot that later training does not change.
        """
        state = collections.OrderedDict()
        for key, tensor in self._state_entries():
            state[prefix + key] = tensor if keep_vars else tensor.detach()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values in by name; with ``strict``, missing or unexpected keys are an error.

        Values are cast to each target's dtype and device and copied into its array in place.
        A shape mismatch is always an error. All problems are reported together in one
        ``StateDictError``, and nothing is copied unless all entries fit. Returns
        ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(
                f"load_state_dict: expected a dict-like state_dict, got {type(state_dict).__name__}"
            )
        own = collections.OrderedDict(self._state_entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
        updates = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else numpy.asarray(value)
            if tuple(array.shape) != target.shape:
                problems.append(
                    f"size mismatch for {key}: copying a value of shape {tuple(array.shape)} from the "
                    f"state dict, the shape in the current model is {target.shape}"
                )
            updates.append((target, array))
        if problems:
            raise StateDictError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(problems)
            )
        for target, array in updates:
            target.data[...] = backend.to_device(backend.to_device(array, "cpu"), target.device)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (its non-default arguments)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            child_lines.append(f"({name}): {child}")
        lines = extra_lines + child_lines
        if not lines:
            return f"{type(self).__name__}()"
        if len(extra_lines) == 1 and not child_lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
