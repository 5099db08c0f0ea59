"""``streamcore.diff``: a differential fuzzer for chunked, SSE and WebSocket parsers.

``python -m streamcore.diff chunked|sse|ws [--against NAMES] [--seconds N]
[--seed S] [--out DIR] [--jobs J]``.  See docs/diff.md.  The protocol
packages never import this one; peers are imported lazily by their adapters.
"""
from __future__ import annotations

from .core import Finding, Result, check, evaluate, fuzz_seeded, minimise
from .outcome import Outcome, differs, modes

__all__ = ["Finding", "Outcome", "Result", "check", "differs", "evaluate", "fuzz_seeded", "minimise", "modes"]
