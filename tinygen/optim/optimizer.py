"""``Optimizer``: parameter groups, per-parameter state, and PyTorch's ``state_dict`` layout.

An optimizer holds ``param_groups``, a list of dicts each with ``"params"`` (a list of
tensors) and the hyperparameters for them (``lr``, ...), filled from ``defaults`` where a
group leaves them out. ``state[p]`` keeps what the update rule carries from step to step
(momentum buffers, moment estimates). ``step()`` walks the groups and calls the subclass's
``_update`` for each parameter that has a gradient, with recording off.

``state_dict()`` names parameters by their position across all groups, as PyTorch does::

    {"state": {0: {"step": 3, "exp_avg": tensor, ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

so it can be saved (``tinygen.save``) and loaded into a fresh optimizer over the same model.
"""

import copy

from tinygen import backend
from tinygen.autograd.grad_mode import enable_grad, no_grad
from tinygen.autograd.tensor import Tensor


class Optimizer:
    """Base class: subclasses pass their ``defaults`` and define ``_update``."""

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of Tensors or of dicts (parameter groups), got a single "
                "Tensor; pass model.parameters() or [tensor]"
            )
        self.defaults = defaults
        self.state = {}
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a dict with ``"params"`` and optional hyperparameters (the rest from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"add_param_group: expected a dict, got {type(param_group).__name__}")
        params = param_group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters must be an ordered collection (a list), got a set")
        else:
            params = list(params or [])
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, params[{i}] is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (params[{i}] has grad_fn {p.grad_fn})")
        group = {**param_group, "params": params}
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set ``.grad`` to None, or to zeros with ``set_to_none=False``."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = Tensor(backend.get_array_module(p.grad.data).zeros_like(p.grad.data))

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given.

        ``closure`` re-evaluates the model and returns the loss (it runs with recording on).
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.get(p, {})
                    self._update(p.data, p.grad.data, state, group)
                    if state:  # SGD without momentum keeps no state, as in PyTorch
                        self.state[p] = state
        return loss

    def _update(self, param, grad, state, group):
        """Change the xp array ``param`` in place from ``grad``; ``state`` persists across steps."""
        raise NotImplementedError(f"{type(self).__name__} has no _update()")

    # ------------------------------------------------------------------ state
    def _indexed_params(self):
        """Every parameter in group order, each once, paired with its state_dict index."""
        index = {}
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), (len(index), p))
        return list(index.values())

    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        The state tensors are the live ones (as in PyTorch): save the dict, or deep-copy
        it, to keep a snapshot.
        """
        index_of = {id(p): i for i, p in self._indexed_params()}
        groups = [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [index_of[id(p)] for p in g["params"]],
            }
            for g in self.param_groups
        ]
        state = {index_of[id(p)]: s for p, s in self.state.items() if id(p) in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict`` (from an optimizer built
        over the same parameters in the same order). State tensors are copied to each
        parameter's device and, when floating point, dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"load_state_dict: the state dict has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"load_state_dict: parameter group {i} has {len(saved['params'])} parameters in the "
                    f"state dict, {len(group['params'])} in this optimizer"
                )
        params = {}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            params.update(zip(saved["params"], group["params"], strict=True))
        self.state = {}
        for key, saved_state in state_dict["state"].items():
            key = int(key)
            if key not in params:
                raise ValueError(f"load_state_dict: state for parameter {key}, which no group has")
            param = params[key]
            self.state[param] = {name: _copy_to(value, param) for name, value in saved_state.items()}
        self.param_groups = [
            {**copy.deepcopy({k: v for k, v in saved.items() if k != "params"}), "params": group["params"]}
            for saved, group in zip(saved_groups, self.param_groups, strict=True)
        ]

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines + [")"])


def _copy_to(value, param):
    """A saved state entry for ``param``: tensors copied to its device (and float dtype)."""
    if not isinstance(value, Tensor):
        return copy.deepcopy(value)
    array = backend.to_device(backend.to_device(value.data, "cpu"), param.device)
    if array.dtype.kind == "f":
        array = array.astype(param.dtype)
    return Tensor(array.copy())
