"""Peer adapters: one small module per parser, each reducing a parse to an
:class:`~streamcore.diff.outcome.Outcome`.

An adapter is any object with ``name``, ``protocol`` (``"chunked"``,
``"sse"`` or ``"ws"``) and ``parse(chunks) -> Outcome``, where ``chunks``
is the input as the reads that deliver it.  Optional: ``quirks``, a mapping
from a finding class to the reason it is a known, accepted difference (it
is then counted as a quirk, not a finding), and ``exact = True`` to be
compared field by field with the reference (our twins).

Adapters import their peer package when built, never at import of
:mod:`streamcore.diff`; a missing package makes the adapter *unavailable*
(reported, never a crash).  Your own parser: ``--against module:callable``
where ``callable()`` returns an adapter (a class works).
"""
from __future__ import annotations

import importlib
from typing import Any, Protocol


class Adapter(Protocol):
    name: str
    protocol: str

    def parse(self, chunks: list[bytes]) -> Any: ...


class Unavailable(Exception):
    """The adapter's peer package is not installed (or does not fit)."""


#: built-in peers per protocol: name -> "module:factory" (module relative to this package)
BUILTIN: dict[str, dict[str, str]] = {
    "chunked": {
        "streamcore-py": "streamcore_:ChunkedPy",
        "streamcore-c": "streamcore_:ChunkedC",
        "h11": "h11_:H11Chunked",
        "httptools": "httptools_:HttptoolsChunked",
        "aiohttp-c": "aiohttp_:AiohttpCChunked",
        "aiohttp-py": "aiohttp_:AiohttpPyChunked",
    },
    "sse": {
        "streamcore-py": "streamcore_:SSEPy",
        "streamcore-c": "streamcore_:SSEC",
        "httpx-sse": "httpx_sse_:HttpxSSE",
    },
    "ws": {
        "streamcore-py": "streamcore_:WSPy",
        "streamcore-c": "streamcore_:WSC",
        "wsproto": "wsproto_:Wsproto",
        "websockets": "websockets_:Websockets",
    },
}

#: the oracle every other adapter is compared with: the readable reference twin
REFERENCE = "streamcore-py"


def load(protocol: str, spec: str) -> Any:
    """Build the adapter named ``spec`` (a built-in name or ``module:callable``).

    Raises :class:`Unavailable` when a built-in peer's package is missing,
    ValueError for an unknown name, a user module that cannot be imported
    or an attribute it does not have.
    """
    builtin = BUILTIN[protocol].get(spec)
    if builtin is not None:
        modname, _, attr = builtin.partition(":")
        try:
            module = importlib.import_module(f"{__name__}.{modname}")
            adapter = getattr(module, attr)()
        except ImportError as exc:
            raise Unavailable(f"{spec}: {exc}") from exc
        return adapter
    if ":" not in spec:
        raise ValueError(f"unknown {protocol} peer {spec!r}; built-in: {', '.join(BUILTIN[protocol])}, "
                         "or module:callable")
    modname, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:  # a user's module: a mistake, not a missing peer
        raise ValueError(f"{spec}: cannot import {modname!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise ValueError(f"{spec}: module {modname!r} has no attribute {attr!r}")
    adapter = factory if hasattr(factory, "parse") and not isinstance(factory, type) else factory()
    if not hasattr(adapter, "name"):
        adapter.name = spec
    if getattr(adapter, "protocol", protocol) != protocol:
        raise ValueError(f"{spec} is a {adapter.protocol} adapter, not {protocol}")
    adapter.protocol = protocol
    adapter.spec = spec
    return adapter


def default_peers(protocol: str) -> list[str]:
    return [name for name in BUILTIN[protocol] if name != REFERENCE]
