# placeholder, replaced by ws-edge
"""Opening handshake helpers on h11: placeholder until ws-edge's module is merged."""
from __future__ import annotations

__all__: list[str] = []
