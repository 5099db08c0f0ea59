# Stub of the compiled twin: the same names and signatures as streamcore.chunked._py.
from collections.abc import Callable
from typing import Any

from ._common import ChunkedStats as ChunkedStats
from ._common import Data as Data
from ._common import EndOfMessage as EndOfMessage
from ._common import Event
from ._common import Trailers as Trailers

Buffer = bytes | bytearray | memoryview

class ChunkedDecoder:
    def __init__(
        self,
        *,
        max_chunk_size: int | None = None,
        max_line_size: int | None = 4096,
        max_trailers_size: int | None = 16384,
        coalesce: bool = False,
        views: bool = False,
        trace: Callable[[Any], object] | None = None,
    ) -> None: ...
    @property
    def done(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def stats(self) -> ChunkedStats: ...
    def feed(self, data: Buffer) -> list[Event]: ...
    def eof(self) -> None: ...

class ChunkedEncoder:
    def __init__(self, *, trace: Callable[[Any], object] | None = None) -> None: ...
    @property
    def stats(self) -> ChunkedStats: ...
    def encode(self, data: Buffer, extensions: object = ()) -> bytes: ...
    def encode_buffers(self, data: Buffer, extensions: object = ()) -> list[Buffer]: ...
    def finish(self, trailers: object = (), extensions: object = ()) -> bytes: ...
