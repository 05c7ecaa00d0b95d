"""The autograd engine: ``Function`` (the custom-op API every op uses), the graph walk, ``grad``.

A differentiable op is a ``Function`` subclass with two static methods (``xp`` is the
array module, ``numpy`` or ``cupy``, from ``tinygen.backend.get_array_module(x.data)``)::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):              # runs with recording off; may use x.data (xp arrays)
            y = xp.exp(x.data)
            ctx.save_for_backward(y)      # keep only what backward needs
            return y                      # an xp array, a Tensor, or a tuple of them

        @staticmethod
        def backward(ctx, grad_y):        # Tensors in, Tensors out: one per forward input
            (y,) = ctx.saved_tensors
            return grad_y * y             # written with differentiable ops, so it can be
                                          # differentiated again (create_graph=True)

and is called as ``Exp.apply(x)``. Calling ``apply`` on inputs that require grad makes
the ``ctx`` a node of the graph: it becomes the outputs' ``grad_fn`` and keeps *edges*
to where each input's gradient goes (the input's own ``grad_fn``, or the input itself
when it is a leaf). Input tensors are not kept unless saved, so activations that
backward does not need are freed as soon as forward is done with them.

Backward (``Tensor.backward`` and ``grad``) walks the nodes in reverse topological
order, found with an iterative depth-first search (no recursion limit for long
unrolled graphs), sums the gradients reaching each output, calls ``backward``, and
accumulates what reaches leaves into ``.grad``. With ``create_graph=True`` the calls
to ``backward`` are recorded, which is how gradients of gradients work.
"""

import numpy

from tinygen import backend
from tinygen.autograd import grad_mode
from tinygen.autograd.tensor import Tensor
from tinygen.errors import DeviceError, GraphError

_ARRAY_TYPES = backend.ARRAY_TYPES


class Context:
    """What ``forward`` leaves for ``backward``; in a recorded graph it is the node (``grad_fn``).

    Attributes set by the engine: ``needs_input_grad`` (a bool per forward argument) and,
    when recorded, ``edges`` (per argument, ``(target, output_nr)`` or None). Forward may set
    any other attribute it likes (``ctx.stride = 2``).
    """

    def __init__(self, function, needs_input_grad):
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.edges = ()
        self._to_save = ()
        self._saved = None
        self._output_meta = ()
        self._freed = False

    @property
    def name(self):
        """The op's name, e.g. ``MulBackward`` (PyTorch spells grad_fn names this way)."""
        return self.function.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name}>"

    @property
    def next_functions(self):
        """Where gradients flow next: ``(node_or_leaf, output_nr)`` per input, as in PyTorch."""
        return self.edges

    def save_for_backward(self, *items):
        """Keep Tensors or xp arrays (inputs or outputs of this op) for ``backward``."""
        self._to_save = items

    @property
    def saved_tensors(self):
        """The saved items as Tensors. Saved outputs come back attached to this node."""
        self._check_not_freed()
        out = []
        for item in self._saved if self._saved is not None else self._to_save:
            if isinstance(item, _SavedOutput):
                item = Tensor(item.data, requires_grad=True, _grad_fn=self, _output_nr=item.index)
            elif item is not None and not isinstance(item, Tensor):
                item = Tensor(item)
            out.append(item)
        return tuple(out)

    def _check_not_freed(self):
        if self._freed:
            raise GraphError(
                f"{self.name}: trying to backward through the graph a second time (or to read "
                "saved tensors after they were freed). Pass retain_graph=True to the first "
                "backward() or grad() call if you need to go through the graph again."
            )

    def _record(self, args, needs, raw_outputs, output_arrays):
        """Make this context a graph node: edges to the inputs, output shapes, saved items."""
        self.edges = tuple(_edge(a) if need else None for a, need in zip(args, needs, strict=True))
        self._output_meta = tuple((a.shape, a.dtype) for a in output_arrays)
        self._saved = tuple(_saved_item(item, raw_outputs, output_arrays) for item in self._to_save)
        self._to_save = ()

    def _release(self):
        self._saved = None
        self._to_save = ()
        self._freed = True


class _SavedOutput:
    """A saved output, kept as its array so that output -> node -> output is no reference cycle."""

    __slots__ = ("data", "index")

    def __init__(self, data, index):
        self.data = data
        self.index = index


class Function:
    """Base class of differentiable ops; subclass it with static ``forward`` and ``backward``."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        """Run ``forward`` and, when any input requires grad, record a node for ``backward``."""
        needs = []
        array_type = None
        for a in args:
            if isinstance(a, Tensor):
                needs.append(a.requires_grad)
                if array_type is None:
                    array_type = type(a.data)
                elif type(a.data) is not array_type:
                    _raise_mixed_devices(cls, args)
            else:
                needs.append(False)
        state = grad_mode._state
        prev = state.enabled
        record = prev and True in needs
        ctx = Context(cls, tuple(needs))
        state.enabled = False
        try:
            result = cls.forward(ctx, *args)
        finally:
            state.enabled = prev
        if not isinstance(result, tuple):  # one output: the common case, kept short
            data = _as_array(result)
            if not record:
                return Tensor._wrap(data, False, None, 0)
            differentiable = data.dtype.kind == "f"
            output = Tensor._wrap(data, differentiable, ctx if differentiable else None, 0)
            ctx._record(args, needs, (result,), (data,))
            return output
        arrays = [_as_array(r) for r in result]
        if not record:
            return tuple(Tensor._wrap(a, False, None, 0) for a in arrays)
        outputs = []
        for i, a in enumerate(arrays):
            differentiable = a.dtype.kind == "f"  # integer outputs (indices) have no gradient
            outputs.append(Tensor._wrap(a, differentiable, ctx if differentiable else None, i))
        ctx._record(args, needs, result, arrays)
        return tuple(outputs)


def _edge(tensor):
    """Where the gradient of ``tensor`` goes: its producing node, or the leaf itself."""
    if tensor.grad_fn is not None:
        return (tensor.grad_fn, tensor.output_nr)
    return (tensor, 0)


def _saved_item(item, raw_outputs, output_arrays):
    """A saved output becomes a ``_SavedOutput``; anything else is kept as it is."""
    data = item.data if isinstance(item, Tensor) else item
    for i, (raw, out) in enumerate(zip(raw_outputs, output_arrays, strict=True)):
        if data is raw or data is out:
            return _SavedOutput(out, i)
    return item


def _as_array(result):
    """A forward result as an xp array (0-d NumPy arithmetic returns scalars, not arrays)."""
    if isinstance(result, Tensor):
        result = result.data
    if isinstance(result, _ARRAY_TYPES):
        return result
    return numpy.asarray(result)


def _raise_mixed_devices(cls, args):
    devices = ", ".join(str(a.device) for a in args if isinstance(a, Tensor))
    raise DeviceError(
        f"{cls.__name__}: all tensor arguments must be on one device, got {devices}; "
        "move them with .to(device)"
    )


# ----------------------------------------------------------------------------- graph walk


def _topological_order(roots):
    """Nodes reachable from ``roots``, each before every node its gradient flows into."""
    order, visited = [], set()
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.edges))]
        while stack:
            node, children = stack[-1]
            for edge in children:
                if edge is not None and isinstance(edge[0], Context) and edge[0] not in visited:
                    visited.add(edge[0])
                    stack.append((edge[0], iter(edge[0].edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _accumulate(total, grad):
    return grad if total is None else total + grad


def _fill_missing(node, grads):
    """Zeros for outputs of a multi-output op that no gradient reached (PyTorch materializes them)."""
    if all(g is not None for g in grads):
        return grads
    xp = backend.get_array_module(*[g.data for g in grads if g is not None])
    return [
        g if g is not None else Tensor(xp.zeros(shape, dtype=dtype))
        for g, (shape, dtype) in zip(grads, node._output_meta, strict=True)
    ]


def run_backward(roots, root_grads, retain_graph=False, create_graph=False, inputs=None):
    """Propagate ``root_grads`` from ``roots`` back through the graph.

    With ``inputs=None`` gradients are accumulated into the ``.grad`` of leaves (what
    ``Tensor.backward`` does). Otherwise returns a list with the gradient reaching each of
    ``inputs`` (None where none does), and no ``.grad`` is touched (what ``grad`` does).
    """
    pending = {}  # node -> list of summed output gradients
    leaf_grads = {}  # id(leaf) -> (leaf, summed gradient)
    for root, grad in zip(roots, root_grads, strict=True):
        if root.grad_fn is None:
            leaf, prev = leaf_grads.get(id(root), (root, None))
            leaf_grads[id(root)] = (leaf, _accumulate(prev, grad))
        else:
            slots = pending.setdefault(root.grad_fn, [None] * len(root.grad_fn._output_meta))
            slots[root.output_nr] = _accumulate(slots[root.output_nr], grad)

    order = _topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
    wanted = reaches = None
    if inputs is not None:
        wanted = {_key(t) for t in inputs}
        order, reaches = _prune(order, wanted)
    captured = {}

    with grad_mode.set_grad_enabled(create_graph):
        for node in order:
            grads = pending.pop(node, None)
            if grads is None:
                continue
            if len(grads) > 1:
                grads = _fill_missing(node, grads)
            if wanted is not None:
                for i, g in enumerate(grads):
                    if (id(node), i) in wanted:
                        captured[(id(node), i)] = g
                if id(node) not in reaches:  # it made a wanted tensor; nothing beyond is wanted
                    continue
            node._check_not_freed()
            result = node.function.backward(node, *grads)
            result = result if isinstance(result, tuple) else (result,)
            if len(result) != len(node.edges):
                raise GraphError(
                    f"{node.name}: backward returned {len(result)} gradients, expected "
                    f"{len(node.edges)} (one per forward argument, None for non-tensors)"
                )
            if not retain_graph:
                node._release()
            for i, (edge, grad) in enumerate(zip(node.edges, result, strict=True)):
                if edge is None or grad is None:
                    continue
                target, nr = edge
                _check_gradient(node, i, grad, target, nr)
                if isinstance(target, Context):
                    slots = pending.setdefault(target, [None] * len(target._output_meta))
                    slots[nr] = _accumulate(slots[nr], grad)
                else:
                    leaf, prev = leaf_grads.get(id(target), (target, None))
                    leaf_grads[id(target)] = (leaf, _accumulate(prev, grad))

    if inputs is None:
        for leaf, grad in leaf_grads.values():
            if not create_graph:
                grad = grad.detach()
            leaf.grad = grad if leaf.grad is None else leaf.grad + grad
        return None
    results = []
    for t in inputs:
        if t.grad_fn is None:
            results.append(leaf_grads.get(id(t), (None, None))[1])
        else:
            results.append(captured.get(_key(t)))
    return results


def _check_gradient(node, i, grad, target, nr):
    """A gradient from ``node``'s backward for argument i must be a Tensor of its shape and precision.

    A higher-precision gradient (float64 for a float32 argument of a mixed-dtype op) is let
    through; a lower-precision one (float32 for float64) would silently lose digits.
    """
    if not isinstance(grad, Tensor):
        kind = f"{type(grad).__module__}.{type(grad).__name__}"
        raise GraphError(
            f"{node.name}: backward returned a {kind} as the gradient of argument {i}; it must return "
            "a Tensor (wrap an array as Tensor(array)) or None, one per forward argument"
        )
    shape, dtype = target._output_meta[nr] if isinstance(target, Context) else (target.shape, target.dtype)
    if grad.shape != shape:
        raise GraphError(
            f"{node.name}: backward returned a gradient of shape {grad.shape} for an input of shape {shape}"
        )
    if grad.dtype != dtype and (grad.dtype.kind != "f" or grad.dtype.itemsize < dtype.itemsize):
        raise GraphError(
            f"{node.name}: backward returned a {grad.dtype} gradient for argument {i}, a {dtype} tensor; "
            f"return it in the argument's dtype (cast with .to(tinygen.{dtype}))"
        )


def _key(tensor):
    """Identifies where a tensor's gradient is summed: (id of its node or leaf, output_nr)."""
    if tensor.grad_fn is not None:
        return (id(tensor.grad_fn), tensor.output_nr)
    return (id(tensor), 0)


def _prune(order, wanted):
    """For ``grad()``: the nodes worth visiting, and the ids of those whose backward must run.

    A node's backward must run when its gradient flows on to a ``wanted`` key (see ``_key``);
    a node that only produced a wanted tensor is visited to capture its gradient, no more.
    """
    reaches = set()
    for node in reversed(order):  # producers before consumers in this direction
        for edge in node.edges:
            if edge is not None and ((id(edge[0]), edge[1]) in wanted or id(edge[0]) in reaches):
                reaches.add(id(node))
                break
    visit = [
        node
        for node in order
        if id(node) in reaches or any((id(node), i) in wanted for i in range(len(node._output_meta)))
    ]
    return visit, reaches


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated in ``.grad``).

    Same signature and meaning as ``torch.autograd.grad``. With ``create_graph=True`` the
    returned gradients are themselves differentiable (for gradient penalties and for
    second-order checks).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise GraphError(f"grad: inputs[{i}] does not require grad, so it has no gradient")
    roots, root_grads = _roots_and_grads("grad", outputs, grad_outputs)
    retain_graph = create_graph if retain_graph is None else retain_graph
    results = run_backward(roots, root_grads, retain_graph, create_graph, inputs=inputs)
    for i, (t, g) in enumerate(zip(inputs, results, strict=True)):
        if g is None and not allow_unused:
            raise GraphError(
                f"grad: inputs[{i}] (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return tuple(results)


def _roots_and_grads(caller, outputs, grad_outputs):
    """Check outputs and fill in the default gradient (ones, for scalar outputs only)."""
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"{caller}: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    roots, root_grads = [], []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs, strict=True)):
        if not out.requires_grad:
            raise GraphError(
                f"{caller}: outputs[{i}] does not require grad and has no grad_fn; did you "
                "compute it under no_grad() or from tensors without requires_grad=True?"
            )
        if g is None:
            if out.data.size != 1:
                raise GraphError(
                    f"{caller}: outputs[{i}] has shape {out.shape}; a default gradient exists only "
                    "for single-element outputs, so pass one of the same shape"
                )
            g = Tensor(backend.get_array_module(out.data).ones(out.shape, dtype=out.dtype))
        elif not isinstance(g, Tensor):
            g = Tensor(g)
        if g.shape != out.shape:
            raise ValueError(
                f"{caller}: grad_outputs[{i}] has shape {g.shape}, expected the output's {out.shape}"
            )
        roots.append(out)
        root_grads.append(g)
    return roots, root_grads
