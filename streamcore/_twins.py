"""Choose, once at import, between the compiled twins and the pure-Python twins.

Each protocol package (``chunked``, ``sse``, ``ws``) holds a pure-Python twin
``_py`` and a compiled twin ``_c``.  ``STREAMCORE_NO_EXTENSIONS=1`` (any value
but empty or ``0``) forces the pure-Python twins.  Otherwise the compiled
twins are used when *all* of them are built; a partial build uses Python
everywhere, with a warning naming each missing file, so that
:data:`IMPLEMENTATION` always tells the truth about every protocol.

The probe looks for the built files and imports nothing: ``import
streamcore.chunked`` loads neither the WebSocket stack nor h11.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import platform
import warnings
from types import ModuleType

#: every compiled module, relative to the package; each has a ``_py`` twin beside it
COMPILED_MODULES = ("chunked._c", "sse._c", "ws._c")

NO_EXTENSIONS = os.environ.get("STREAMCORE_NO_EXTENSIONS", "") not in ("", "0")

_HERE = os.path.dirname(os.path.abspath(__file__))


def missing_compiled() -> list[str]:
    """The compiled twins that are not built, as ``package/_c`` names."""
    missing = []
    for name in COMPILED_MODULES:
        base = os.path.join(_HERE, *name.split("."))
        if not any(os.path.exists(base + s) for s in importlib.machinery.EXTENSION_SUFFIXES):
            missing.append(name.replace(".", "/"))
    return missing


def _choose() -> str:
    if NO_EXTENSIONS or platform.python_implementation() != "CPython":
        return "python"
    missing = missing_compiled()
    if not missing:
        return "cython"
    if len(missing) < len(COMPILED_MODULES):
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        warnings.warn(
            "streamcore: compiled twins not built: "
            + ", ".join(f"streamcore/{name}{suffix}" for name in missing)
            + "; using the pure-Python twins for every protocol",
            RuntimeWarning,
            stacklevel=3,
        )
    return "python"


IMPLEMENTATION = _choose()


def pick(protocol: str) -> ModuleType:
    """Return the twin of ``streamcore.<protocol>`` in use (``._c`` or ``._py``).

    A compiled twin that is built but does not import is an error, never a
    silent fallback: set ``STREAMCORE_NO_EXTENSIONS=1`` to run without it.
    """
    if IMPLEMENTATION == "python":
        return importlib.import_module(f"streamcore.{protocol}._py")
    try:
        return importlib.import_module(f"streamcore.{protocol}._c")
    except ImportError as exc:
        raise ImportError(
            f"streamcore.{protocol}._c is built but does not import ({exc}); rebuild it, "
            "or set STREAMCORE_NO_EXTENSIONS=1 for the pure-Python twins"
        ) from exc
