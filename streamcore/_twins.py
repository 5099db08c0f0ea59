"""Choose, once at import, between the compiled twins and the pure-Python twins.

``STREAMCORE_NO_EXTENSIONS=1`` (any value but empty or ``0``) forces the
pure-Python twins.  Otherwise the compiled twins are used when *all* of them
import; a partial build falls back to Python everywhere (with a warning), so
that :data:`IMPLEMENTATION` always tells the truth about every protocol.
"""
from __future__ import annotations

import importlib
import os
import platform
import warnings
from types import ModuleType

#: every compiled module, relative to the package; each has a ``*_py`` twin
COMPILED_MODULES = ("_chunked_c", "ws._codec_c")

NO_EXTENSIONS = os.environ.get("STREAMCORE_NO_EXTENSIONS", "") not in ("", "0")


def _load_compiled() -> bool:
    if NO_EXTENSIONS or platform.python_implementation() != "CPython":
        return False
    missing = []
    for name in COMPILED_MODULES:
        try:
            importlib.import_module(f"streamcore.{name}")
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    if missing and len(missing) < len(COMPILED_MODULES):
        warnings.warn(
            "streamcore: some compiled twins are missing, using pure Python for all: "
            + ", ".join(missing),
            RuntimeWarning,
            stacklevel=2,
        )
    return not missing


IMPLEMENTATION = "cython" if _load_compiled() else "python"


def pick(name: str) -> ModuleType:
    """Return the twin of ``streamcore.<name>_c`` / ``<name>_py`` that is in use."""
    suffix = "_c" if IMPLEMENTATION == "cython" else "_py"
    return importlib.import_module(f"streamcore.{name}{suffix}")
