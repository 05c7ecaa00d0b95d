"""Plots a training run writes: the per-step history and the per-epoch metrics, one panel per scale.

matplotlib's object API only (``Figure``, no pyplot): no display, no global state. Each PNG
is written to a temporary file and renamed over the old one, so it is never half written.
"""

import os
from pathlib import Path

import numpy


def panel_layout(keys, panels):
    """``[(label, keys), ...]``: the ``panels`` given, less the keys that have no data; with no
    panels given, one panel for each of ``keys``."""
    keys = list(keys)
    if not panels:
        return [(key, [key]) for key in keys]
    layout = [(label, [k for k in group if k in keys]) for label, group in panels]
    return [(label, group) for label, group in layout if group]


def save_history_plot(history, path, panels=(), steps_per_epoch=None):
    """Each quantity of ``history`` (key -> list of per-step floats), faint, with a moving average;
    steps whose value is not finite (NaN: not measured at that step) are left out."""
    layout = panel_layout([k for k, v in history.items() if len(v)], panels)
    figure = _figure(len(layout))
    for axes, (label, keys) in zip(figure.axes, layout, strict=True):
        for key, color in zip(keys, _COLORS, strict=False):
            values = numpy.asarray(history[key], dtype=float)
            steps = numpy.arange(1, values.size + 1)
            finite = numpy.isfinite(values)  # e.g. a WGAN's loss_g before its first generator step
            steps, values = steps[finite], values[finite]
            if values.size == 0:
                continue
            axes.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
            window = max(1, min(50, values.size // 10))
            smooth = numpy.convolve(values, numpy.ones(window) / window, mode="valid")
            axes.plot(steps[window - 1:], smooth, color=color, label=f"{key} (mean of {window})")
        _finish(axes, label)
    if layout:
        figure.axes[-1].set_xlabel("step" + (f" ({steps_per_epoch} per epoch)" if steps_per_epoch else ""))
    return _save(figure, path)


def save_metrics_plot(metrics, path, panels=()):
    """Each figure of ``metrics`` (a list of dicts with ``epoch`` and floats) against the epoch."""
    keys = [k for k in (metrics[0] if metrics else {}) if k not in ("epoch", "step", "test_images")]
    layout = panel_layout(keys, panels)
    figure = _figure(len(layout))
    epochs = [line["epoch"] for line in metrics]
    for axes, (label, group) in zip(figure.axes, layout, strict=True):
        for key, color in zip(group, _COLORS, strict=False):
            axes.plot(epochs, [line[key] for line in metrics], "o-", color=color, label=key)
        _finish(axes, label)
    if layout:
        figure.axes[-1].set_xlabel("epoch")
    return _save(figure, path)


_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _figure(panels):
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import

    figure = Figure(figsize=(7, 1.0 + 2.5 * max(1, panels)), dpi=100)
    for k in range(panels):
        figure.add_subplot(panels, 1, k + 1)
    return figure


def _finish(axes, label):
    axes.set_ylabel(label)
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)


def _save(figure, path):
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        figure.savefig(temporary, format="png")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
