# placeholder, replaced by ws-edge
"""permessage-deflate (RFC 7692): placeholder until ws-edge's module is merged."""
from __future__ import annotations

from typing import Any


class PerMessageDeflate:
    """Placeholder; the real negotiation and sessions come from ws-edge."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def session(self, client: bool) -> Any:
        raise NotImplementedError("permessage-deflate is not merged yet")
