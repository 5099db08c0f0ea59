# Stub for the compiled twin: the same interface as streamcore.sse._py.
from collections.abc import Callable, Iterable

from .._contract import Buffer
from ._common import Event as Event
from ._common import Item
from ._common import SSEStats as SSEStats
from ._common import response_headers as response_headers

class SSEDecoder:
    def __init__(
        self,
        *,
        max_event_size: int | None = ...,
        max_line_size: int | None = ...,
        last_event_id: str = ...,
        retry: int | None = ...,
        trace: Callable[[Event], object] | None = ...,
    ) -> None: ...
    @property
    def last_event_id(self) -> str: ...
    @property
    def retry(self) -> int | None: ...
    @property
    def stats(self) -> SSEStats: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]: ...
    def eof(self) -> None: ...

def encode_event(
    data: str | Buffer | None = ...,
    *,
    event: str | None = ...,
    id: str | None = ...,
    retry: int | None = ...,
    comment: str | Buffer | None = ...,
) -> bytes: ...
def encode_events(events: Iterable[Item], *, last_event_id: str = ...) -> bytes: ...
def keepalive(comment: str | Buffer = ...) -> bytes: ...
