"""The received-message queue the asyncio adapter and the uvicorn protocol
share: a list read from an index, so taking a message is O(1) and a taken
message is not held."""
from __future__ import annotations

from typing import Any


def take(messages: list[Any], taken: int) -> tuple[Any, int, int]:
    """Take ``messages[taken]``: (the message, the new index, how many wait)."""
    message = messages[taken]
    messages[taken] = None  # not held once taken
    taken += 1
    left = len(messages) - taken
    if not left:
        messages.clear()
        taken = 0
    elif taken >= 64 and taken >= left:  # amortised: the list stays ~2x what waits
        del messages[:taken]
        taken = 0
    return message, taken, left
