"""Whether operations are recorded for backward: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

The switch is per thread, as in PyTorch. Each works as a context manager and as a decorator.
"""

import functools
import threading


class _State(threading.local):
    enabled = True  # the default in every thread


_state = _State()


def is_grad_enabled():
    """True when new operations are recorded in the autograd graph."""
    return _state.enabled


def _set(enabled):
    _state.enabled = enabled


class set_grad_enabled:
    """Turn recording on or off inside a ``with`` block (or a decorated function)."""

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _set(self.mode)  # like PyTorch, calling set_grad_enabled(False) alone also switches

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(self.prev)
        return False


class _GradModeContext:
    mode = True

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set(self.mode)
        return self

    def __exit__(self, *exc):
        _set(self.prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Don't record operations: for evaluation, sampling and optimizer updates."""

    mode = False


class enable_grad(_GradModeContext):
    """Record operations, even inside ``no_grad``."""

    mode = True
