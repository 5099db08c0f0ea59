"""A Server-Sent Events response for ASGI servers (uvicorn, hypercorn,
daphne) and for Starlette and FastAPI.

Theory of operation: the response runs the user's async iterator in the
request's own task and writes each item as it comes; one more task per
connection (the *watcher*) waits for ``http.disconnect`` and writes a
keep-alive comment only when nothing was written for ``ping_interval``
seconds.  Every write, keep-alive included, has ``send_timeout`` seconds:
a client that is gone (``http.disconnect``, or ``send`` raising) or frozen
(the write times out) ends the stream, and the iterator is closed in its
own task (its ``finally`` blocks run; async generators see
``GeneratorExit``/``CancelledError`` at their ``await``).  No task outlives
the response.

Resume: ``EventSourceResponse(events)`` takes an async iterable, or a
callable given the request's ``Last-Event-ID`` (``None`` when absent) that
returns one, so a reconnecting client gets what it missed.

Shutdown without patching the server: :func:`shutdown` (call it from your
lifespan handler or a signal handler; :func:`install_signal_handlers` chains
one in front of the server's own) ends every open stream: each gets
``grace`` seconds to finish by itself (iterators can watch
:data:`shutting_down`), then its iterator is closed and the body ended, so
browsers reconnect (to another worker).

Items the iterator may yield: a :class:`streamcore.sse.Event`; a ``dict`` of
:func:`streamcore.sse.encode_event`'s keywords (``data``, ``event``,
``id``, ``retry``, ``comment``); a ``str`` (the data of one message event);
or ``bytes``, written as they are (an event encoded once and shared by many
connections).
"""
from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import FrameType
from typing import Any, Union

from ..sse import Event, encode_event, response_headers

try:  # a Starlette Response, when Starlette is there, so FastAPI sends it as is
    from starlette.responses import Response as _Base
except ImportError:  # pragma: no cover - exercised without the extra
    _Base = object  # type: ignore[assignment,misc]

__all__ = [
    "EventSourceResponse",
    "install_signal_handlers",
    "shutdown",
    "shutting_down",
]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
Item = Union[Event, Mapping[str, Any], str, bytes]
Source = Union[AsyncIterable[Item], Callable[[Union[str, None]], AsyncIterable[Item]]]

#: the response head: text/event-stream, no caching, no proxy buffering
HEADERS = response_headers()
PING = b":\n\n"

#: set once :func:`shutdown` was called; iterators may wait on it to end early
shutting_down = asyncio.Event()
_open: set[_Stream] = set()


if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout
else:  # pragma: no cover - Python 3.9 and 3.10
    import contextlib

    @contextlib.asynccontextmanager
    async def _timeout(delay: float | None) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        handle = loop.call_later(delay, task.cancel) if delay is not None else None
        try:
            yield
        except asyncio.CancelledError:
            raise TimeoutError from None
        finally:
            if handle is not None:
                handle.cancel()


def encode(item: Item) -> bytes:
    """The bytes of one item (see the module docstring for the forms)."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return encode_event(item)
    if isinstance(item, Event):
        return encode_event(item.data, event=None if item.event == "message" else item.event,
                            id=item.id or None)
    return encode_event(**item)


class _Stream:
    """One open response: the writer both tasks share, and why it ended."""

    def __init__(self, send: Send, send_timeout: float | None, task: asyncio.Task[Any],
                 grace: float) -> None:
        self.send = send
        self.grace = grace
        self.send_timeout = send_timeout
        self.task = task
        self.lock = asyncio.Lock()
        self.last_write = time.monotonic()
        self.ended: str | None = None  # "disconnect", "timeout", "shutdown"
        self.shutdown_timer: asyncio.TimerHandle | None = None

    async def write(self, body: bytes) -> None:
        async with self.lock:
            try:
                async with _timeout(self.send_timeout):
                    await self.send({"type": "http.response.body", "body": body,
                                     "more_body": True})
            except TimeoutError:
                self.end("timeout")
                raise asyncio.CancelledError from None
            except OSError:  # ASGI 2.4: send after the client went away
                self.end("disconnect")
                raise asyncio.CancelledError from None
            self.last_write = time.monotonic()

    def end(self, why: str) -> None:
        """Stop the stream from any task: cancel the request's task, which
        closes the iterator where it waits."""
        if self.ended is None:
            self.ended = why
            if self.task is not asyncio.current_task():
                self.task.cancel()


class EventSourceResponse(_Base):
    """An SSE response fed by an async iterator of events.

    ``events``: an async iterable of items, or a callable taking the
    request's ``Last-Event-ID`` (None when absent) and returning one.
    ``headers``: more response headers (a mapping or pairs of str or bytes).
    ``ping_interval``: seconds of silence before a keep-alive comment
    (None: none).  ``send_timeout``: seconds each write may take before the
    client counts as frozen (None: no limit).  ``retry``: a reconnection
    delay in milliseconds, sent first.  ``shutdown_grace``: seconds a stream
    gets after :func:`shutdown` before its iterator is closed.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: Source,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | Sequence[tuple[bytes | str, bytes | str]] | None = None,
        ping_interval: float | None = 15.0,
        send_timeout: float | None = 10.0,
        retry: int | None = None,
        shutdown_grace: float = 5.0,
    ) -> None:
        self.events = events
        self.status_code = status_code
        self.ping_interval = ping_interval
        self.send_timeout = send_timeout
        self.retry = retry
        self.shutdown_grace = shutdown_grace
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        extra = [(_latin1(k).lower(), _latin1(v)) for k, v in pairs]
        names = {k for k, _ in extra}
        self.raw_headers = [h for h in HEADERS if h[0] not in names] + extra
        self.background = None  # what Starlette looks for on a Response

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        last_event_id = None
        for name, value in scope.get("headers", ()):
            if name == b"last-event-id":
                last_event_id = value.decode("utf-8", "replace")
        events = self.events
        iterable = events(last_event_id) if callable(events) else events
        task = asyncio.current_task()
        assert task is not None
        stream = _Stream(send, self.send_timeout, task, self.shutdown_grace)
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        watcher = asyncio.ensure_future(self._watch(receive, stream))
        _open.add(stream)
        if shutting_down.is_set():
            _schedule_end(stream)
        iterator = iterable.__aiter__()
        try:
            if self.retry is not None:
                await stream.write(encode_event(retry=self.retry))
            async for item in _items(iterator):
                await stream.write(encode(item))
        except asyncio.CancelledError:
            if stream.ended is None:
                raise  # cancelled by the server, not by us
            if sys.version_info >= (3, 11):
                task.uncancel()
        finally:
            _open.discard(stream)
            if stream.shutdown_timer is not None:
                stream.shutdown_timer.cancel()
            watcher.cancel()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        if stream.ended in (None, "shutdown"):
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass

    async def _watch(self, receive: Receive, stream: _Stream) -> None:
        """Wait for ``http.disconnect``; write a keep-alive when idle."""
        interval = self.ping_interval
        while True:
            wait = None if interval is None else interval - (time.monotonic() - stream.last_write)
            if wait is not None and wait <= 0:
                try:
                    await stream.write(PING)
                except asyncio.CancelledError:
                    return  # the stream ended; its task was told
                continue
            try:
                async with _timeout(wait):
                    message = await receive()
            except TimeoutError:
                continue
            if message["type"] == "http.disconnect":
                stream.end("disconnect")
                return


async def _items(iterator: AsyncIterator[Item]) -> AsyncIterator[Item]:
    # ``async for`` over the user's iterator without letting it see our
    # generator's own aclose (the caller closes the user's one)
    while True:
        try:
            item = await iterator.__anext__()
        except StopAsyncIteration:
            return
        yield item


def _latin1(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _schedule_end(stream: _Stream) -> None:
    loop = stream.task.get_loop()
    stream.shutdown_timer = loop.call_later(stream.grace, stream.end, "shutdown")


def shutdown() -> None:
    """End every open stream of this process: each gets its
    ``shutdown_grace`` seconds, then its iterator is closed and the body
    ended.  Streams that start afterwards are ended the same way."""
    shutting_down.set()
    for stream in list(_open):
        if stream.shutdown_timer is None:
            _schedule_end(stream)


def install_signal_handlers(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Call :func:`shutdown` on these signals, then the handler that was
    installed before (the server's own), so the server still stops as it
    would.  Call it from the main thread once the server has installed its
    handlers (uvicorn: in the lifespan startup)."""
    for signum in signals:
        previous = signal.getsignal(signum)

        def handler(num: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop = _loop_of_streams()
            if loop is not None:
                loop.call_soon_threadsafe(shutdown)
            else:
                shutting_down.set()
            if callable(previous):
                previous(num, frame)
            elif previous == signal.SIG_DFL and num == signal.SIGINT:
                raise KeyboardInterrupt

        signal.signal(signum, handler)


def _loop_of_streams() -> asyncio.AbstractEventLoop | None:
    for stream in _open:
        return stream.task.get_loop()
    return None
