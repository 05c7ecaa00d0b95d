"""``Module`` and ``Parameter``: PyTorch's way of holding a model's state.

A Module keeps three ordered dicts, filled by plain attribute assignment:

- ``_parameters``: ``Parameter``s (leaf tensors that require grad), e.g. ``weight``;
- ``_buffers``: state that is saved but not trained, e.g. BatchNorm's ``running_mean``;
- ``_modules``: child modules.

``state_dict()`` walks them and names every entry with its dotted path
(``features.0.weight``), exactly as PyTorch does, so weights move between the two.
"""

import collections

import numpy

from tinygen import backend
from tinygen.autograd.grad_mode import no_grad
from tinygen.autograd.tensor import Tensor
from tinygen.errors import ShapeError


class Parameter(Tensor):
    """A leaf tensor that a Module registers as trainable (``requires_grad=True`` by default)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = numpy.empty(0, dtype=numpy.float32)
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models; subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in self._buffers and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value  # e.g. BatchNorm updating running_mean
        elif name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} (Parameter or None expected)"
                )
            self._parameters[name] = None
        else:
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
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
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Keep ``tensor`` with the module (moved by ``to``); saved in ``state_dict`` if persistent."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}"
            )
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._persistent.add(name)
        else:
            self._persistent.discard(name)

    def add_module(self, name, module):
        self._modules[name] = module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix=""):
        """``(dotted name, module)`` for this module and every descendant, depth first."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{n}" if name else n, m) for n, m in module._modules.items() if m is not None
            ]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named(self, table, recurse):
        seen = set()
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse=True):
        return self._named("_parameters", recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse=True):
        return self._named("_buffers", recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse))

    # ------------------------------------------------------------------ modes and devices
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
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
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for tensor in table.values():
                    if tensor is None:
                        continue
                    tensor.data = convert_array(tensor.data)
                    if tensor.grad is not None:
                        tensor.grad = Tensor(convert_array(tensor.grad.data))
        return self

    def to(self, *args, dtype=None, device=None):
        """``to(device)``, ``to(dtype)``: floating-point parameters and buffers change dtype."""
        for arg in args:
            if isinstance(arg, (str, backend.Device)):
                device = arg
            else:
                dtype = arg
        if device is not None:
            target = backend.device(device)
            self._convert(lambda a: backend.to_device(a, target))
        if dtype is not None:
            dtype = numpy.dtype(dtype)
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

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """An ordered ``{dotted name: tensor}`` of parameters and persistent buffers (PyTorch's keys)."""
        state = collections.OrderedDict()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[dot + name] = p.detach()
            for name, b in module._buffers.items():
                if b is not None and name in module._persistent:
                    state[dot + name] = b.detach()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values in by name; with ``strict``, missing or unexpected keys are an error.

        Values are cast to each target's dtype and device; a shape mismatch is always an
        error that names the key and both shapes, and nothing is copied unless all fit.
        """
        own = {}
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for table in (module._parameters, module._buffers):
                for name, t in table.items():
                    if t is not None and (table is module._parameters or name in module._persistent):
                        own[dot + name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected} "
                f"(for {type(self).__name__})"
            )
        updates = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else numpy.asarray(value)
            if tuple(array.shape) != target.shape:
                raise ShapeError(
                    f"load_state_dict: {key!r} has shape {tuple(array.shape)} in the state dict, "
                    f"expected {target.shape}"
                )
            updates.append((target, array))
        with no_grad():
            for target, array in updates:
                array = backend.to_device(backend.to_device(array, "cpu"), target.device)
                target.data = array.astype(target.dtype, copy=True)
        return collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])(
            missing, unexpected
        )

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"
