"""The ``trace=`` hook, made safe for the data path.

A trace callback is for logging and debugging; if it raises, the exception
must not abort a ``feed`` half-way (losing the events of that call) or leave
an encoder finished without its bytes.  Every state machine wraps the
callback given to it once, at construction: an exception from the callback
becomes a :class:`RuntimeWarning` naming it, and the call goes on.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any


def safe_trace(trace: Callable[[Any], object] | None) -> Callable[[Any], None] | None:
    """``trace`` wrapped so that what it raises is warned about, not propagated."""
    if trace is None:
        return None
    if not callable(trace):
        raise TypeError(f"trace must be callable or None, not {trace!r}")

    def call(event: Any) -> None:
        try:
            trace(event)
        except Exception as exc:  # the hook's failure must not break the protocol
            warnings.warn(f"streamcore: trace callback {trace!r} raised {exc!r}; ignored",
                          RuntimeWarning, stacklevel=2)

    return call
