"""Shared helpers of the sequence ``lstm`` tests: leaves, a NumPy reference LSTM and random problems.

One NumPy reference covers layers, both directions and the projection (PyTorch's LSTMP); one
fixed-seed ``random_problem``, one hypothesis strategy ``sequence_problems`` and one
``sequence_function`` serve the bidirectional (``proj=0``) and the projected (``proj > 0``) tests.

A *problem* is a dict: ``x`` (``(T, N, F)``, ``(N, T, F)`` if ``batch_first``, or ``(T, F)`` when
``batch`` is None), ``state`` (``[h0, c0]`` or None), ``params`` (PyTorch's flat list), ``layers``,
``batch_first``, ``batch``, ``bidirectional``, ``proj`` (0: no projection) and ``hidden``.
"""

import numpy as np
from hypothesis import strategies as st

import tinygen
from tinygen.kernels.lstm import lstm
from tinygen.testing import strategies as tst


def leaf(array):
    """A float64 tensor that requires grad."""
    return tinygen.tensor(array, requires_grad=True)


# ----------------------------------------------------------------------------- NumPy reference


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_sequence_lstm(x, h0, c0, params, num_layers, directions=1, proj=0):
    """A plain NumPy (projected) LSTM: output ``(T, N, D * (proj or H))``, h_n and c_n.

    x (T, N, F), h0 (D L, N, proj or H), c0 (D L, N, H); params PyTorch's flat list, with
    ``w_hr`` last per group when ``proj`` > 0 (``proj = 0``: no projection, ``h_t = o_t * tanh(c_t)``).
    Each direction walks its own steps (the reverse one t = T-1 .. 0), no flips.
    """
    per_group = len(params) // (directions * num_layers)
    steps = x.shape[0]
    h_n, c_n = [], []
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            group = directions * layer + direction
            w_ih, w_hh, *rest = params[group * per_group : (group + 1) * per_group]
            biases, w_hr = (rest[:-1], rest[-1]) if proj else (rest, None)
            bias = sum(biases) if biases else 0.0
            h, c, out = h0[group], c0[group], [None] * steps
            for t in range(steps) if direction == 0 else range(steps - 1, -1, -1):
                i, f, g, o = np.split(x[t] @ w_ih.T + h @ w_hh.T + bias, 4, axis=-1)
                c = np_sigmoid(f) * c + np_sigmoid(i) * np.tanh(g)
                h = np_sigmoid(o) * np.tanh(c)
                if proj:
                    h = h @ w_hr.T
                out[t] = h
            outputs.append(np.stack(out))
            h_n.append(h)
            c_n.append(c)
        x = np.concatenate(outputs, axis=-1)
    return x, np.stack(h_n), np.stack(c_n)


# ----------------------------------------------------------------------------- problems


@st.composite
def sequence_problems(
    draw, max_steps=3, max_batch=2, max_size=3, max_layers=2, bidirectional=True, proj=False
):
    """A random (projected) LSTM problem; ``batch`` is None for an unbatched ``(T, F)`` input.

    ``bidirectional``: True / False, or None to draw it. ``proj``: draw a ``proj_size`` in
    ``[1, hidden)`` (then hidden >= 2), else no projection.
    """
    steps, batch = draw(st.integers(1, max_steps)), draw(st.one_of(st.none(), st.integers(1, max_batch)))
    features, hidden = draw(st.integers(1, max_size)), draw(st.integers(2 if proj else 1, max_size))
    proj = draw(st.integers(1, hidden - 1)) if proj else 0
    layers, bias = draw(st.integers(1, max_layers)), draw(st.booleans())
    if bidirectional is None:
        bidirectional = draw(st.booleans())
    batch_first, with_state = draw(st.booleans()), draw(st.booleans())
    directions, out_size = (2 if bidirectional else 1), (proj or hidden)
    if batch is None:
        x = draw(tst.arrays((steps, features)))
    else:
        x = draw(tst.arrays((batch, steps, features) if batch_first else (steps, batch, features)))
    lead = (directions * layers,) + (() if batch is None else (batch,))
    state = [draw(tst.arrays((*lead, out_size))), draw(tst.arrays((*lead, hidden)))] if with_state else None

    def weight(*shape):
        return draw(tst.arrays(shape, min_value=-1, max_value=1))

    params = []
    for layer in range(layers):
        for _ in range(directions):
            params += [
                weight(4 * hidden, features if layer == 0 else directions * out_size),
                weight(4 * hidden, out_size),
            ]
            if bias:
                params += [weight(4 * hidden), weight(4 * hidden)]
            if proj:
                params.append(weight(proj, hidden))
    return dict(x=x, state=state, params=params, layers=layers, batch_first=batch_first, batch=batch,
                bidirectional=bidirectional, proj=proj, hidden=hidden)  # fmt: skip


def random_problem(seed, steps=5, batch=3, features=4, hidden=3, layers=2, bidirectional=True, proj=0):
    """Fixed-size float64 problem (batched, with state, with biases; ``w_hr`` too when ``proj`` > 0)."""
    rng = np.random.default_rng(seed)
    directions, out_size = (2 if bidirectional else 1), (proj or hidden)
    params = []
    for layer in range(layers):
        for _ in range(directions):
            in_size = features if layer == 0 else directions * out_size
            params += [rng.uniform(-0.5, 0.5, s) for s in [(4 * hidden, in_size), (4 * hidden, out_size)]]
            params += [rng.uniform(-0.5, 0.5, 4 * hidden) for _ in range(2)]
            if proj:
                params.append(rng.uniform(-0.8, 0.8, (proj, hidden)))
    lead = (directions * layers, batch)
    return dict(
        x=rng.standard_normal((steps, batch, features)),
        state=[rng.standard_normal((*lead, out_size)), rng.standard_normal((*lead, hidden))],
        params=params, layers=layers, batch_first=False, batch=batch, bidirectional=bidirectional,
        proj=proj, hidden=hidden,
    )  # fmt: skip


def sequence_function(problem, fused, **kwargs):
    """``f(x, [h0, c0,] *params) -> (output, h_n, c_n)`` of the problem's lstm, and its leaves.

    ``kwargs`` go to ``lstm`` (e.g. ``dropout``), after the problem's ``bidirectional`` and ``proj_size``.
    """
    with_state = problem["state"] is not None
    inputs = [leaf(problem["x"])] + [leaf(s) for s in problem["state"] or []]
    inputs += [leaf(p) for p in problem["params"]]
    bidirectional, proj = problem["bidirectional"], problem["proj"]

    def f(x, *rest):
        hx = tuple(rest[:2]) if with_state else None
        params = rest[2:] if with_state else rest
        output, (h_n, c_n) = lstm(
            x, hx, params, problem["layers"], problem["batch_first"], fused,
            bidirectional=bidirectional, proj_size=proj, **kwargs,
        )  # fmt: skip
        return output, h_n, c_n

    f.__name__ = f"lstm(fused={fused}, proj_size={proj}, bidirectional={bidirectional})"
    return f, inputs
