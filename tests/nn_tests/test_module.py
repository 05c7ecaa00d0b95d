"""Module and Parameter: registration, traversal, state_dict/load_state_dict, modes, dtypes, repr."""

import numpy as np
import pytest

import tinygen
from tinygen import backend
from tinygen.errors import ShapeError, StateDictError
from tinygen.nn.module import IncompatibleKeys, Module, Parameter


def param(*values):
    return Parameter(np.array(values, dtype=np.float32))


class Leaf(Module):
    """One parameter, a persistent buffer and a non-persistent one."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.weight = param(scale, 2 * scale)
        self.register_buffer("count", tinygen.tensor(np.array(0, dtype=np.int64)))
        self.register_buffer("cache", tinygen.zeros(2), persistent=False)

    def forward(self, x):
        return x * self.weight


class Net(Module):
    """Children assigned before a parameter: the parameter still comes first in state_dict."""

    def __init__(self):
        super().__init__()
        self.first = Leaf(1.0)
        self.second = Leaf(3.0)
        self.gain = param(0.5)

    def forward(self, x):
        return self.second(self.first(x)) * self.gain


NET_KEYS = ["gain", "first.weight", "first.count", "second.weight", "second.count"]


# ----------------------------------------------------------------------------- registration


def test_assignment_fills_the_three_tables():
    net = Net()
    assert list(net._parameters) == ["gain"]
    assert list(net._modules) == ["first", "second"]
    assert list(net.first._buffers) == ["count", "cache"]
    assert net.first.count.dtype == np.int64
    assert "weight" not in net.first.__dict__  # reached through __getattr__


def test_reassigning_a_name_moves_it_between_tables():
    m = Leaf()
    m.sub = Leaf()
    m.sub = param(1.0)  # module -> parameter
    assert "sub" in m._parameters and "sub" not in m._modules
    with pytest.raises(TypeError, match="as parameter 'weight'"):  # as in PyTorch
        m.weight = Leaf()
    m.extra = 3  # plain attribute
    m.extra = param(1.0)  # plain attribute -> parameter
    assert "extra" in m._parameters and "extra" not in m.__dict__
    m.count = tinygen.ones(())  # buffers take any Tensor
    assert m._buffers["count"].dtype == np.float32


def test_none_keeps_the_slot():
    m = Leaf()
    m.weight = None
    m.sub = Leaf()
    m.sub = None
    assert m._parameters == {"weight": None} and m._modules == {"sub": None}
    assert list(m.state_dict()) == ["count"]
    assert m.weight is None and m.sub is None


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [("weight", tinygen.ones(2), "parameter"), ("count", 3, "buffer"), ("sub", 3, "child module")],
)
def test_wrong_type_for_a_registered_name_is_a_type_error(name, value, kind):
    m = Leaf()
    m.sub = Leaf()
    with pytest.raises(TypeError, match=f"as {kind} '{name}'"):
        setattr(m, name, value)


def test_assigning_parameters_before_init_is_an_error():
    class Early(Module):
        def __init__(self):
            self.plain = 1  # allowed, as in PyTorch
            self.weight = param(1.0)

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Early()


def test_register_parameter_and_buffer_check_their_arguments():
    m = Leaf()
    m.register_parameter("bias", None)
    assert m.bias is None and "bias" in m._parameters
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("other", tinygen.ones(2))
    with pytest.raises(TypeError, match="must be a Tensor or None, got list"):
        m.register_buffer("buf", [1.0])
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("weight", tinygen.ones(2))
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("forward", tinygen.ones(2))
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", tinygen.ones(2))
    with pytest.raises(TypeError, match="must be a Module"):
        m.add_module("child", 3)


def test_register_buffer_can_change_persistence():
    m = Leaf()
    m.register_buffer("count", m.count, persistent=False)
    assert "count" not in m.state_dict()
    m.register_buffer("cache", m.cache)
    assert list(m.state_dict()) == ["weight", "cache"]


def test_delattr_removes_from_tables():
    m = Leaf()
    del m.weight
    del m.count
    assert list(m.state_dict()) == []
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        m.weight  # noqa: B018


# ----------------------------------------------------------------------------- traversal


def test_named_modules_parameters_and_buffers():
    net = Net()
    assert [n for n, _ in net.named_modules()] == ["", "first", "second"]
    assert [n for n, _ in net.named_parameters()] == ["gain", "first.weight", "second.weight"]
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["gain"]
    assert [n for n, _ in net.named_parameters(prefix="net")] == [
        "net.gain",
        "net.first.weight",
        "net.second.weight",
    ]
    assert [n for n, _ in net.named_buffers()] == [
        "first.count",
        "first.cache",
        "second.count",
        "second.cache",
    ]
    assert len(list(net.parameters())) == 3 and len(list(net.buffers())) == 4
    assert [n for n, _ in net.named_children()] == ["first", "second"]


def test_shared_module_is_listed_once_but_saved_under_both_names():
    net = Net()
    net.second = net.first
    assert [n for n, _ in net.named_modules()] == ["", "first"]
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "first", "second"]
    assert [n for n, _ in net.named_parameters()] == ["gain", "first.weight"]
    assert list(net.named_children()) == [("first", net.first)]
    assert list(net.state_dict()) == NET_KEYS  # PyTorch keeps both paths in state_dict
    net.load_state_dict(net.state_dict())  # and expects both when loading


def test_shared_parameter_is_listed_once():
    net = Net()
    net.second.weight = net.first.weight
    assert [n for n, _ in net.named_parameters()] == ["gain", "first.weight"]
    assert len(list(net.named_parameters(remove_duplicate=False))) == 3


# ----------------------------------------------------------------------------- state_dict


def test_state_dict_order_keys_and_aliasing():
    net = Net()
    state = net.state_dict()
    assert list(state) == NET_KEYS  # own parameters, own buffers, then children; no cache
    assert not state["gain"].requires_grad
    assert state["first.weight"].data is net.first.weight.data  # shares memory, as in PyTorch
    kept = net.state_dict(keep_vars=True)
    assert kept["gain"] is net.gain
    assert list(net.state_dict(prefix="model.")) == ["model." + k for k in NET_KEYS]


def test_load_state_dict_copies_in_place_and_casts():
    net = Net()
    weight, array = net.first.weight, net.first.weight.data
    source = {k: v.numpy().astype(np.float64) + 1 for k, v in Net().state_dict().items()}
    result = net.load_state_dict(source)
    assert result == IncompatibleKeys([], [])
    assert net.first.weight is weight and net.first.weight.data is array
    assert array.dtype == np.float32 and net.first.count.dtype == np.int64
    np.testing.assert_array_equal(array, [2.0, 3.0])
    np.testing.assert_array_equal(net.second.count.numpy(), 1)
    source["gain"][...] = 7  # the model holds a copy, not the caller's array
    assert net.gain.data[0] == 1.5


def test_strict_load_lists_every_problem_and_copies_nothing():
    net = Net()
    before = net.first.weight.numpy().copy()
    state = {k: v.numpy() + 1 for k, v in net.state_dict().items()}
    del state["gain"], state["second.count"]
    state["first.cache"] = np.zeros(2)  # non-persistent buffers are not expected
    state["first.weight"] = np.zeros(3)
    with pytest.raises(StateDictError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert message.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "gain", "second.count"' in message
    assert 'Unexpected key(s) in state_dict: "first.cache"' in message
    assert "size mismatch for first.weight: copying a value of shape (3,)" in message and "(2,)" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)
    np.testing.assert_array_equal(net.first.weight.numpy(), before)


def test_non_strict_load_reports_keys_but_still_checks_shapes():
    net = Net()
    result = net.load_state_dict({"gain": np.array([4.0]), "junk": np.zeros(1)}, strict=False)
    assert result.missing_keys == NET_KEYS[1:] and result.unexpected_keys == ["junk"]
    assert net.gain.data[0] == 4.0
    with pytest.raises(ShapeError, match="size mismatch for gain"):
        net.load_state_dict({"gain": np.zeros((1, 1))}, strict=False)


def test_load_state_dict_wants_a_mapping():
    with pytest.raises(TypeError, match="dict-like"):
        Net().load_state_dict([("gain", np.zeros(1))])


# ----------------------------------------------------------------------------- modes, dtype, grads


def test_train_and_eval_recurse_through_children_train():
    class Frozen(Leaf):
        def train(self, mode=True):  # a child that always stays in eval mode
            return super().train(False)

    net = Net()
    net.second = Frozen()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert net.training and net.first.training and not net.second.training
    with pytest.raises(TypeError, match="bool"):
        net.train("yes")


def test_double_and_float_convert_in_place():
    net = Net()
    weight = net.first.weight
    net.first.weight.grad = tinygen.ones(2)
    assert net.double() is net
    assert net.first.weight is weight and weight.dtype == np.float64 and weight.requires_grad
    assert weight.grad.dtype == np.float64
    assert net.first.count.dtype == np.int64  # integer buffers keep their dtype
    assert net.first.cache.dtype == np.float64  # non-persistent buffers convert too
    net.float()
    assert weight.dtype == np.float32
    net.to(dtype=tinygen.float64)
    assert weight.dtype == np.float64
    assert net.to("cpu") is net
    with pytest.raises(TypeError, match="floating point"):
        net.to(tinygen.int64)


def test_zero_grad_and_requires_grad_():
    net = Net()
    (net(tinygen.ones(2)).sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_apply_visits_children_before_parents():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Leaf", "Leaf", "Net"]


# ----------------------------------------------------------------------------- printing


def test_repr_matches_pytorch_layout():
    class WithExtra(Module):
        def __init__(self, extra):
            super().__init__()
            self.text = extra

        def extra_repr(self):
            return self.text

    outer = WithExtra("size=3")
    outer.inner = WithExtra("a=1\nb=2")
    outer.add_module("empty", None)
    assert repr(WithExtra("size=3")) == "WithExtra(size=3)"
    assert repr(WithExtra("")) == "WithExtra()"
    assert (
        repr(outer)
        == "WithExtra(\n  size=3\n  (inner): WithExtra(\n    a=1\n    b=2\n  )\n  (empty): None\n)"
    )


def test_parameter_defaults_and_repr():
    p = Parameter()
    assert p.shape == (0,) and p.requires_grad and p.dtype == np.float32
    assert repr(param(1.0)).startswith("Parameter containing:\ntensor([1.], requires_grad=True)")
    assert not Parameter(tinygen.ones(2), requires_grad=False).requires_grad


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        Module()(1)


def test_replacing_a_parameter_or_module_keeps_its_place():
    net = Net()
    net.first = Leaf(5.0)
    net.gain = param(2.0)
    assert list(net.state_dict()) == NET_KEYS
    assert net.state_dict()["first.weight"].numpy()[0] == 5.0


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
def test_to_cuda_and_back_keeps_identities_and_loads_cpu_state():
    from tinygen.nn import init

    net = Net()
    weight = net.first.weight
    state = {k: v.numpy().copy() + 1 for k, v in net.state_dict().items()}
    assert net.to("cuda") is net and net.first.weight is weight and weight.device == "cuda:0"
    assert net.first.count.device == "cuda:0" and net.first.cache.device == "cuda:0"
    net.load_state_dict(state)
    assert weight.device == "cuda:0"
    np.testing.assert_array_equal(weight.numpy(), state["first.weight"])
    init.normal_(weight)
    assert weight.device == "cuda:0"
    net.cpu()
    assert weight.device == "cpu" and net(tinygen.ones(2)).device == "cpu"


def test_registering_over_a_plain_attribute_replaces_it():
    m = Leaf()
    m.bias = None  # a plain attribute until registered
    m.register_parameter("bias", None)
    assert "bias" in m._parameters and "bias" not in m.__dict__
