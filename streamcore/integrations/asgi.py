"""A Server-Sent Events response for ASGI servers (uvicorn, hypercorn,
daphne) and for Starlette and FastAPI.

Theory of operation: the response runs the user's async iterator in the
request's own task and writes each item as it comes; one more task per
connection (the *watcher*) waits for ``http.disconnect`` and writes a
keep-alive comment only when nothing was written for ``ping_interval``
seconds.  Items the iterator has ready are written together: after an
item, the loop gets one turn, then every ``__anext__()`` that completes
without waiting joins the same ``http.response.body``, again each turn
while a turn brings more (``coalesce``, ``max_batch``, ``max_delay``); an
``__anext__()`` suspended on a future is resumed in the response's own
step once that future is done, and one that must wait is awaited next,
not started again.
Every write, keep-alive included, has ``send_timeout`` seconds (one timer
per connection, re-armed lazily, not one per write):
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
``bytes``, written as they are (an event encoded once and shared by many
connections); or a ``list``/``tuple`` of those, written in one send.

Fan-out in one process: :class:`Broadcast` encodes each published item
once into one log shared by every subscriber (no queue per connection);
``EventSourceResponse(hub.subscribe())`` streams it.
"""
from __future__ import annotations

import asyncio
import signal
import sys
import time
import types
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import FrameType
from typing import Any, Union

from ..sse import Event, encode_event, response_headers

try:  # a Starlette Response, when Starlette is there, so FastAPI sends it as is
    from starlette.responses import Response as _Base
except ImportError:  # pragma: no cover - exercised without the extra
    _Base = object  # type: ignore[assignment,misc]

__all__ = [
    "Broadcast",
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

class _LoopState:
    """What :func:`shutdown` acts on: one per event loop, so a server that
    runs on a new loop (a second one in the same process, a test) starts
    out of shutdown, whatever an earlier one went through."""

    __slots__ = ("open", "event")

    def __init__(self) -> None:
        self.open: set[_Stream] = set()
        self.event = asyncio.Event()


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = \
    weakref.WeakKeyDictionary()
_outside = _LoopState()  # for calls made with no running loop


def _state(loop: asyncio.AbstractEventLoop | None = None) -> _LoopState:
    if loop is None:
        loop = asyncio._get_running_loop()
        if loop is None:
            return _outside
    state = _states.get(loop)
    if state is None:
        state = _states[loop] = _LoopState()
    return state


class _ShutdownFlag:
    """:data:`shutting_down`: an ``asyncio.Event`` for the running loop
    (``is_set()``, ``await wait()``, ``set()``, ``clear()``), one per loop."""

    def is_set(self) -> bool:
        return _state().event.is_set()

    async def wait(self) -> bool:
        return await _state().event.wait()

    def set(self) -> None:
        _state().event.set()

    def clear(self) -> None:
        _state().event.clear()


#: set once :func:`shutdown` was called on the running loop; iterators may
#: wait on it to end early.  One per event loop: a new loop starts clear.
shutting_down = _ShutdownFlag()


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
    """One open response: the writer both tasks share, and why it ended.

    The send timeout costs no timer per write: a write records when it
    started, and one timer per connection (armed by the first write, re-armed
    only when it fires during a later write) cancels the writing task once a
    write has taken ``send_timeout`` seconds."""

    def __init__(self, send: Send, send_timeout: float | None, task: asyncio.Task[Any],
                 grace: float) -> None:
        self.send = send
        self.grace = grace
        self.send_timeout = send_timeout
        self.task = task
        self.loop = task.get_loop()
        self.last_write = time.monotonic()
        self.ended: str | None = None  # "disconnect", "timeout", "shutdown"
        self.shutdown_timer: asyncio.TimerHandle | None = None
        self.writer: asyncio.Task[Any] | None = None  # the task in a write, if any
        self.write_started = 0.0  # loop time the current write started
        self.timer: asyncio.TimerHandle | None = None  # the one deadline timer
        self.timed_out = False
        self.turn: asyncio.Future[None] | None = None  # wakes a write waiting for a ping

    async def write(self, body: bytes) -> None:
        while self.writer is not None:  # a keep-alive is being written: wait for it
            if self.turn is None:
                self.turn = self.loop.create_future()
            await self.turn
        task = self.writer = asyncio.current_task()
        if self.send_timeout is not None:
            self.write_started = self.loop.time()
            if self.timer is None:
                self.timer = self.loop.call_at(self.write_started + self.send_timeout,
                                               self._deadline)
        try:
            await self.send({"type": "http.response.body", "body": body, "more_body": True})
        except asyncio.CancelledError:
            if self.timed_out and self.writer is task:  # our own cancel: an end
                self.end("timeout")
                raise asyncio.CancelledError from None
            raise
        except OSError:  # ASGI 2.4: send after the client went away
            self.end("disconnect")
            raise asyncio.CancelledError from None
        finally:
            self.writer = None
            turn, self.turn = self.turn, None
            if turn is not None and not turn.done():
                turn.set_result(None)
        self.last_write = time.monotonic()

    def _deadline(self) -> None:
        """The connection's timer: a write in flight for ``send_timeout``
        seconds is cancelled; otherwise re-arm for the one in flight, or
        disarm until the next write."""
        self.timer = None
        writer = self.writer
        if writer is None or self.send_timeout is None or self.ended is not None:
            return
        due = self.write_started + self.send_timeout
        if self.loop.time() >= due:
            self.timed_out = True
            writer.cancel()
        else:
            self.timer = self.loop.call_at(due, self._deadline)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.shutdown_timer is not None:
            self.shutdown_timer.cancel()

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
    ``coalesce``: after an item, give the loop one turn, then take every item
    the iterator has ready without waiting, again each turn while a turn
    brings more, up to ``max_batch`` bytes or ``max_delay`` seconds after
    the first item, and write them in one ``http.response.body``, in order;
    False writes each item as it comes.  An item may also be a list or tuple of items, written
    in one send.
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
        coalesce: bool = True,
        max_batch: int = 65536,
        max_delay: float = 0.05,
    ) -> None:
        self.events = events
        self.coalesce = coalesce
        self.max_batch = max_batch
        self.max_delay = max_delay
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
        state = _state(stream.loop)
        state.open.add(stream)
        if state.event.is_set():
            _schedule_end(stream)
        iterator = iterable.__aiter__()
        pending: _Suspended | None = None
        coalesce, max_batch, max_delay = self.coalesce, self.max_batch, self.max_delay
        loop = stream.loop
        try:
            if self.retry is not None:
                await stream.write(encode_event(retry=self.retry))
            done = False
            while not done:
                if pending is not None:
                    next_item, pending = pending, None
                    item = await next_item
                else:
                    try:
                        item = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                body = _encode_any(item)
                if coalesce:
                    # a loop turn for producers to add more, then take what is
                    # ready without waiting; again while each turn brings more
                    parts = [body]
                    size = len(body)
                    until = loop.time() + max_delay
                    while size < max_batch:
                        await _turn()
                        took = False
                        while size < max_batch:
                            try:
                                if pending is None:
                                    item, pending = _poll(iterator)
                                elif pending.ready():
                                    item, pending = pending.value, None
                            except StopAsyncIteration:
                                done = True
                                break
                            if pending is not None:
                                break
                            part = _encode_any(item)
                            parts.append(part)
                            size += len(part)
                            took = True
                        if done or loop.time() >= until:
                            break
                        if not took and (pending is None or pending.first is not None):
                            break  # a turn brought nothing, and it waits on a future
                    if len(parts) > 1:
                        body = b"".join(parts)
                await stream.write(body)
        except StopAsyncIteration:
            pass  # the iterator ended while we waited for its pending item
        except asyncio.CancelledError:
            if stream.ended is None:
                raise  # cancelled by the server, not by us
            if sys.version_info >= (3, 11):
                task.uncancel()
        finally:
            state.open.discard(stream)
            stream.close()
            watcher.cancel()
            if pending is not None:
                pending.cancel()  # the iterator sees CancelledError where it waits
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
                if stream.writer is not None:  # not idle: a write is in flight
                    wait = interval
                else:
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


class Broadcast:
    """In-process fan-out of events encoded once.

    :meth:`publish` encodes an item once (see the module docstring for the
    forms) and appends its bytes to one log shared by every subscriber;
    :meth:`subscribe` gives an async iterator (hand it to
    :class:`EventSourceResponse`) that yields, each time, the bytes of
    everything published since it last yielded, in order, as one item: one
    ``http.response.body`` however many events a slow turn let pile up.
    A publish costs one append whatever the number of subscribers, plus
    waking those that wait; there is no queue per connection.

    The log is a chain of nodes that each subscriber walks; a node is freed
    once no subscriber is behind it.  ``max_lag``: how many events a
    subscriber may fall behind (a client that reads slower than events
    come) before its iterator ends, which ends its response (the client
    reconnects, with ``Last-Event-ID`` when the events have ids); the
    ``send_timeout`` of the response catches a client that stops reading
    altogether.  A subscriber starts at the next event published: resuming
    from a ``Last-Event-ID`` is the application's (replay what it missed
    from your store, then chain :meth:`subscribe`)."""

    def __init__(self, *, max_lag: int = 10_000) -> None:
        self.max_lag = max_lag
        self._tail: list[Any] = [0, b"", None]  # [sequence number, frame, next node]
        self._waiters: list[asyncio.Future[None]] = []  # subscribers waiting for more
        self._closed = False
        self.subscribers = 0

    def publish(self, item: Item | list[Item] | tuple[Item, ...]) -> None:
        """Append one item (or a list of items, one node) for every subscriber."""
        tail = self._tail
        node = [tail[0] + 1, _encode_any(item), None]
        tail[2] = node
        self._tail = node
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for waiter in waiters:
                if not waiter.done():  # cancelled: its response ended
                    waiter.set_result(None)

    def close(self) -> None:
        """End every subscription (each response ends its body)."""
        self._closed = True
        self.publish(b"")  # wakes them; an empty frame writes nothing

    def subscribe(self) -> _Subscription:
        """An async iterator of the frames published from now on."""
        return _Subscription(self)

    def _wait(self) -> asyncio.Future[None]:
        # one future each: a task's cancel cancels the future it waits on,
        # so one shared by every subscriber would end them all
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if len(waiters) > 2 * self.subscribers + 16:
            # subscribers that left while nothing was published: their
            # cancelled futures go now, not at the next publish()
            self._waiters = waiters = [w for w in waiters if not w.done()]
        waiters.append(waiter)
        return waiter


class _Subscription:
    """One subscriber of a :class:`Broadcast`: its place in the log."""

    __slots__ = ("hub", "node")

    def __init__(self, hub: Broadcast) -> None:
        self.hub = hub
        self.node: list[Any] | None = hub._tail
        hub.subscribers += 1

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> bytes:
        hub = self.hub
        while True:
            node = self.node
            if node is None:
                raise StopAsyncIteration
            after = node[2]
            if after is not None:
                if hub._tail[0] - node[0] > hub.max_lag:
                    self.end()  # too far behind: its response ends
                    raise StopAsyncIteration
                if after[2] is None:  # one new node: its bytes as they are
                    self.node = after
                    frame: bytes = after[1]
                else:
                    frames = []
                    while after is not None:
                        frames.append(after[1])
                        node, after = after, after[2]
                    self.node = node
                    frame = b"".join(frames)
                if frame:
                    return frame
            if hub._closed:
                self.end()
                raise StopAsyncIteration
            await hub._wait()

    def end(self) -> None:
        """Leave the broadcast (what it was behind on is freed)."""
        if self.node is not None:
            self.node = None
            self.hub.subscribers -= 1

    async def aclose(self) -> None:
        self.end()


def _encode_any(item: Item | list[Item] | tuple[Item, ...]) -> bytes:
    if type(item) is list or type(item) is tuple:  # not Event, a NamedTuple
        return b"".join([encode(one) for one in item])
    return encode(item)  # type: ignore[arg-type]


class _Suspended:
    """An ``__anext__()`` that had to wait.  Awaiting this goes on with it
    where it stopped (what it waits for goes to the task); :meth:`ready`
    goes on with it in the caller's own step, when what it waits for is
    done, as the task would have on its wake-up."""

    __slots__ = ("it", "first", "value")

    def __init__(self, it: Any, first: Any) -> None:
        self.it = it
        self.first = _held(first)  # what it yielded: a future, or None for one loop turn
        self.value: Any = None

    def ready(self) -> bool:
        """Resume it if it can go on: True when it finished (the item in
        :attr:`value`), False when it still has to wait.  Its errors and
        StopAsyncIteration propagate.  Call it at most once per loop turn
        (a bare ``yield``, as in ``asyncio.sleep(0)``, asks for one turn)."""
        first = self.first
        if first is not None and not (isinstance(first, asyncio.Future) and first.done()):
            return False  # still waiting (or an awaitable only the task knows)
        while True:
            try:
                first = self.it.send(None)  # as the task would on its wake-up
            except StopIteration as stop:
                self.value = stop.value
                return True
            self.first = _held(first)
            if not (isinstance(first, asyncio.Future) and first.done()):
                return False

    def __await__(self) -> Any:
        it, value = self.it, self.first
        self.first = None
        if isinstance(value, asyncio.Future):
            value._asyncio_future_blocking = True  # handed to the task now (see _held)
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                it.close()
                raise
            except BaseException as exc:  # a cancel: into the iterator where it waits
                try:
                    value = it.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = it.send(sent)
                except StopIteration as stop:
                    return stop.value

    def cancel(self) -> None:
        """End it unawaited: CancelledError where the iterator waits."""
        try:
            self.it.throw(asyncio.CancelledError())
        except BaseException:  # noqa: BLE001 - finished, one way or another
            return
        try:  # it swallowed the cancel and waits again
            self.it.close()
        except BaseException:  # noqa: BLE001
            pass


def _held(value: Any) -> Any:
    """What a suspended ``__anext__()`` yielded, kept for later.  A future
    marks itself "being awaited" until a task takes it; held, it must not,
    or a second coroutine awaiting the same future (every subscriber of a
    :class:`Broadcast` waits on one) would fail with "await wasn't used
    with future".  ``_Suspended.__await__`` marks it again for the task."""
    if isinstance(value, asyncio.Future):
        value._asyncio_future_blocking = False
    return value


@types.coroutine
def _turn() -> Any:
    """One loop turn (``asyncio.sleep(0)`` without its two calls)."""
    yield


def _poll(iterator: AsyncIterator[Item]) -> tuple[Any, _Suspended | None]:
    """Start ``iterator.__anext__()`` and run it until it has to wait:
    ``(item, None)`` when it finished at once, ``(None, suspended)``
    otherwise.  StopAsyncIteration (and the iterator's errors) propagate."""
    it = iterator.__anext__().__await__()
    try:
        first = it.send(None)
    except StopIteration as stop:
        return stop.value, None
    return None, _Suspended(it, first)


def _latin1(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _schedule_end(stream: _Stream) -> None:
    loop = stream.task.get_loop()
    stream.shutdown_timer = loop.call_later(stream.grace, stream.end, "shutdown")


def shutdown() -> None:
    """End every open stream of the running event loop (the server's): each
    gets its ``shutdown_grace`` seconds, then its iterator is closed and the
    body ended.  Streams that start afterwards on that loop are ended the
    same way; a new loop starts clear."""
    loop = asyncio._get_running_loop()
    if loop is None:
        _outside.event.set()
    else:
        _shutdown_loop(loop)


def install_signal_handlers(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Call :func:`shutdown` on these signals, then the handler that was
    installed before (the server's own), so the server still stops as it
    would.  Call it from the main thread once the server has installed its
    handlers (uvicorn: in the lifespan startup)."""
    for signum in signals:
        previous = signal.getsignal(signum)

        def handler(num: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop = asyncio._get_running_loop() or _loop_of_streams()
            if loop is not None:
                loop.call_soon_threadsafe(_shutdown_loop, loop)
            else:
                _outside.event.set()
            if callable(previous):
                previous(num, frame)
            elif previous == signal.SIG_DFL and num == signal.SIGINT:
                raise KeyboardInterrupt

        signal.signal(signum, handler)


def _shutdown_loop(loop: asyncio.AbstractEventLoop) -> None:
    state = _state(loop)
    state.event.set()
    for stream in list(state.open):
        if stream.shutdown_timer is None:
            _schedule_end(stream)


def _loop_of_streams() -> asyncio.AbstractEventLoop | None:
    for loop, state in list(_states.items()):
        if state.open and not loop.is_closed():
            return loop
    return None
