"""Broadcast SSE and WebSocket messages across workers through Redis streams.

Theory of operation: one Redis stream per channel is the replay log; the
stream entry id is the SSE event id.  :meth:`Broadcaster.publish` appends
with ``XADD`` (capped by ``maxlen`` or ``minid_age``).  Each worker process
runs one reader task per channel, whatever its number of clients (every
blocked ``XREAD`` makes each ``XADD`` pay), and fans each entry out to its
subscribers: a :class:`Message` is built, and its SSE frame encoded, once
per worker; every client gets the same object and the same bytes.  What one
``XREAD`` returns is one :class:`Batch`, offered to each subscriber in one
call with one wake-up (not one per entry); a subscriber that was idle gets
that very batch, so its joined frames (``batch.sse``, ``batch.ws``) are
built once per worker too, and every connection writes the same bytes.
When a channel's last subscriber leaves, its reader stops (and releases
its blocked ``XREAD`` connection); the next subscriber starts a new one.

A subscriber has a bounded queue.  When it is full (a slow client), the
``policy`` decides: ``"drop"`` ends that subscription (iteration raises
:class:`Overflow`; close the client with a code or end its stream), ``"skip"``
empties the queue and delivers one :data:`GAP` message, then live ones.
A slow client never slows the others or grows memory.

Resume: ``subscribe(channel, last_event_id=id)`` delivers the entries after
``id`` from the log, then live ones, with no gap and no duplicate: the
iterator pages through the log itself as the client takes entries (so a
resume of any length is not bounded by ``max_queue``), live entries are
held meanwhile (at most ``max_queue``, the policy applies to them), and
those already read are dropped (held ones, and those the worker's reader,
which may be behind the log read, offers afterwards).  When entries after ``id`` were already
trimmed from the log, the first message is a :data:`GAP`.

Redis restarts: the reader reconnects with exponential backoff and resumes
``XREAD`` from the last id it saw, so nothing inside the log window is
lost (run Redis with persistence, e.g. ``appendonly yes``, for the log to
survive a restart).  ``publish`` retries too, and an append whose reply was
lost is found again by its nonce instead of being written twice.

Needs redis-py's asyncio client: ``pip install streamcore[redis]``.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from ..sse import encode_event
from ..ws import Prepared

__all__ = ["GAP", "Batch", "Broadcaster", "Message", "Overflow", "Subscription"]

_RETRY = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class Message(NamedTuple):
    """One broadcast entry: ``id`` is the Redis stream id (the SSE event id),
    ``data`` and ``event`` what was published, ``sse`` the SSE frame,
    encoded once per worker and shared by every client; ``ws`` the data as
    a :class:`streamcore.ws.Prepared` text message, framed (and compressed)
    once per worker for every WebSocket connection that frames it alike
    (``Connection.send_prepared``, the uvicorn protocol's
    ``"streamcore.prepared"`` extension)."""

    id: str
    data: str
    event: str | None
    sse: bytes
    ws: Prepared


#: the ``event`` of the message that stands for entries a client missed
GAP = "streamcore.gap"


class Batch(list[Message]):
    """The messages :meth:`Subscription.batches` hands over in one step, in
    order (a ``list`` of :class:`Message`).  ``sse``: their SSE frames
    joined; ``ws``: their :class:`streamcore.ws.Prepared` messages, for the
    ``"streamcore.prepared"`` extension.  Both are built on first use and
    kept: the subscriptions of a worker that were waiting when the reader
    got these entries are handed the same batch, so the join happens once
    per worker and every connection writes the same bytes object.  Shared:
    read it, do not change it."""

    __slots__ = ("_sse", "_ws")

    def __init__(self, messages: Any = ()) -> None:
        super().__init__(messages)
        self._sse: bytes | None = None
        self._ws: list[Prepared] | None = None

    @property
    def sse(self) -> bytes:
        """The SSE frames of the batch, joined (one body to write)."""
        sse = self._sse
        if sse is None:
            sse = self._sse = self[0].sse if len(self) == 1 else \
                b"".join([m.sse for m in self])
        return sse

    @property
    def ws(self) -> list[Prepared]:
        """The batch's WebSocket messages (``"streamcore.prepared"``: one write)."""
        ws = self._ws
        if ws is None:
            ws = self._ws = [m.ws for m in self]
        return ws


class Overflow(Exception):
    """A ``policy="drop"`` subscription fell ``max_queue`` messages behind."""


def _gap(after: str) -> Message:
    return Message(after, "", GAP, encode_event("", event=GAP, id=after), Prepared(""))


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """An async iterator of :class:`Message` for one client; made by
    :meth:`Broadcaster.subscribe`.  Leave it with ``async with`` or
    :meth:`close` so the worker stops fanning out to it."""

    def __init__(self, reader: _Reader, max_queue: int, policy: str,
                 last_event_id: str | None) -> None:
        self._reader = reader
        self._max_queue = max_queue
        self._policy = policy
        # batches offered and not yet taken, and how many messages they hold
        # (the bound): a batch the reader offers to an idle subscriber is
        # queued as is, shared with the other subscriptions
        self._queue: deque[Batch] = deque()
        self._queued = 0
        # the iterator's pending wait, if any: a bare future, set once (an
        # asyncio.Event would hold a deque of waiters per subscription)
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self._closed = False
        self._resume_from = last_event_id
        # live entries offered while the log is read (at most max_queue)
        self._held: deque[Message] | None = deque() if last_event_id is not None else None
        self._skipped = False  # "skip" fired on the held entries
        # after a resume, the id the log was read to: the reader may still be
        # behind it, and what it offers up to there was delivered already
        self._floor: tuple[int, int] | None = None
        self.last_id = last_event_id  # the id of the last message delivered

    # -- fed by the reader -------------------------------------------------

    def _offer_batch(self, batch: Batch) -> None:
        """What one ``XREAD`` returned, offered to every subscriber in turn:
        queued as one (shared) batch, with one wake-up."""
        if self._closed or self._overflowed:
            return
        if self._held is not None or self._floor is not None:
            for message in batch:  # a resume under way: entry by entry
                self._offer(message)
            return
        if self._queued + len(batch) > self._max_queue:
            for message in batch:  # the bound: the policy, entry by entry
                self._push(message)
            return
        self._queue.append(batch)
        self._queued += len(batch)
        waiter = self._waiter
        if waiter is not None:  # _wake, inlined: this runs per subscriber
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _offer(self, message: Message) -> None:
        if self._closed or self._overflowed:
            return
        if self._held is not None:  # the log is being read: hold live entries
            if len(self._held) >= self._max_queue:  # bounded, the policy applies
                self._held.clear()
                if self._policy == "drop":
                    self._overflowed = True
                    self._wake()
                    return
                self._skipped = True  # a GAP, then live from here
            self._held.append(message)
            return
        if self._floor is not None:
            if _id_tuple(message.id) <= self._floor:
                return  # read from the log already: the reader was behind it
            self._floor = None  # the reader is past it: ids only grow
        self._push(message)

    def _push(self, message: Message) -> None:
        if self._overflowed:
            return
        if self._queued >= self._max_queue:
            self._queue.clear()
            if self._policy == "drop":
                self._overflowed = True
                self._queued = 0
            else:
                self._queue.append(Batch((_gap(self.last_id or "0-0"), message)))
                self._queued = 2
        else:
            self._queue.append(Batch((message,)))
            self._queued += 1
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    # -- resume ------------------------------------------------------------

    async def _catch_up(self) -> AsyncIterator[Batch]:
        """The entries after the resume id, read from the log a page at a
        time as the iterator takes them (not bounded by ``max_queue``: they
        are all in the log); then the held live entries go to the queue,
        less those already read."""
        after = self._resume_from
        assert self._held is not None
        if after is not None:  # the first iteration: did the log lose some?
            self._resume_from = None
            await self._reader.started.wait()  # live entries from here on are held
            info: dict[Any, Any]
            try:
                info = await self._reader.broadcaster.redis.xinfo_stream(self._reader.key)
            except redis_errors.ResponseError:  # no such stream yet
                info = {}
            if self._missed(info, after):
                yield Batch((_gap(after),))
        page = min(self._max_queue, 1000)
        while not (self._closed or self._overflowed or self._skipped):
            # from the last entry the iterator took: an iteration left and
            # started again goes on where the first one stopped
            last = self.last_id or "0-0"
            entries = await self._reader.broadcaster.redis.xrange(
                self._reader.key, min="(" + last, max="+", count=page)
            if not entries:
                break
            yield Batch([self._reader.message(entry_id, fields)
                         for entry_id, fields in entries])
        last = self.last_id or "0-0"
        held, self._held = self._held, None
        self._floor = _id_tuple(last)
        if self._skipped:  # the client fell max_queue live entries behind
            self._queue.append(Batch((_gap(last),)))
            self._queued += 1
        for message in held:
            self._offer(message)
        self._wake()

    @staticmethod
    def _missed(info: dict[Any, Any], after: str) -> bool:
        """Whether entries after ``after`` may have left the log (``XINFO
        STREAM``): some were deleted after it (``max-deleted-entry-id``), or
        the log was trimmed and now starts after it.  Conservative: a client
        whose id was the very last one trimmed gets a gap it did not need."""
        def field(name: str) -> Any:
            value = info.get(name, info.get(name.encode()))
            return value.decode() if isinstance(value, bytes) else value

        deleted = field("max-deleted-entry-id")
        if deleted is not None and _id_tuple(deleted) > _id_tuple(after):
            return True
        first = field("recorded-first-entry-id")
        if first is None:
            entry = info.get("first-entry", info.get(b"first-entry"))
            first = field("_") if entry is None else entry[0]
            first = first.decode() if isinstance(first, bytes) else first
        added, length = field("entries-added"), field("length")
        trimmed = added is not None and length is not None and int(added) > int(length)
        return bool(trimmed and first is not None and _id_tuple(first) > _id_tuple(after))

    # -- the iterator --------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        if self._held is not None:
            async for page in self._catch_up():
                for message in page:
                    if message.event != GAP:
                        self.last_id = message.id
                    yield message
        while True:
            while not self._queue:
                if self._overflowed:
                    raise Overflow(f"fell {self._max_queue} messages behind")
                if self._closed:
                    return
                await self._wait()
            batch = self._queue.popleft()
            self._queued -= len(batch)
            for message in batch:
                if message.event != GAP:
                    self.last_id = message.id
                yield message

    def batches(self) -> AsyncIterator[Batch]:
        """Iterate as ``async for message in subscription`` does, but each
        step gives every message queued by then (at most ``max_queue``), in
        order, as a :class:`Batch`: a client that fell behind gets them in
        one write (``batch.sse``, one SSE body; ``batch.ws``, one WebSocket
        write) and one wake-up instead of one per message.  A client that
        kept up gets the batch the worker's reader read, shared with the
        others, its frames joined once per worker."""
        return self._iterate_batches()

    async def _iterate_batches(self) -> AsyncIterator[Batch]:
        if self._held is not None:
            async for page in self._catch_up():
                for message in reversed(page):
                    if message.event != GAP:
                        self.last_id = message.id
                        break
                yield page
        while True:
            while not self._queue:
                if self._overflowed:
                    raise Overflow(f"fell {self._max_queue} messages behind")
                if self._closed:
                    return
                await self._wait()
            queue = self._queue
            # one batch queued (a client that kept up): the reader's own,
            # shared; several: joined into one
            batch = queue.popleft() if len(queue) == 1 else \
                Batch([message for queued in queue for message in queued])
            queue.clear()
            self._queued = 0
            for message in reversed(batch):
                if message.event != GAP:
                    self.last_id = message.id
                    break
            yield batch

    def close(self) -> None:
        """Stop receiving: the iteration ends after what is queued."""
        if not self._closed:
            self._closed = True
            self._wake()
            self._reader.remove(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class _Reader:
    """The one task of a worker that reads a channel's stream."""

    def __init__(self, broadcaster: Broadcaster, channel: str) -> None:
        self.broadcaster = broadcaster
        self.channel = channel
        self.key = broadcaster.prefix + channel
        self.subscribers: set[Subscription] = set()
        # what the fan-out loops over: a tuple of subscribers, made again
        # after one joins or leaves (not a copy of the set per entry)
        self._snapshot: tuple[Subscription, ...] | None = None
        self.last_id: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()
        self.closed = False  # redis-py may turn our cancellation into a ConnectionError

    def message(self, entry_id: Any, fields: dict[Any, Any]) -> Message:
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        data = fields.get(b"d", fields.get("d", b""))
        event = fields.get(b"e", fields.get("e"))
        data = data.decode() if isinstance(data, bytes) else data
        event = event.decode() if isinstance(event, bytes) else event
        return Message(entry_id, data, event or None,
                       encode_event(data, event=event or None, id=entry_id), Prepared(data))

    def add(self, subscription: Subscription) -> None:
        self.subscribers.add(subscription)
        self._snapshot = None
        if self.task is None:
            self.task = asyncio.create_task(self.run())

    def remove(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)
        self._snapshot = None
        if not self.subscribers and not self.closed:
            # the last one left: stop reading (a blocked XREAD holds a
            # connection); the next subscriber starts a new reader
            self.broadcaster._stop(self)  # noqa: SLF001

    async def stop(self) -> None:
        self.closed = True
        while self.task is not None and not self.task.done():
            # redis-py can absorb a cancellation that lands while a
            # blocked XREAD winds down: insist until the task ends
            self.task.cancel()
            await asyncio.wait([self.task], timeout=0.1)

    async def tail(self) -> str:
        last = await self.broadcaster.redis.xrevrange(self.key, count=1)
        if not last:
            return "0-0"
        entry_id = last[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def run(self) -> None:
        b = self.broadcaster
        delay = b.backoff[0]
        while self.last_id is None:  # where the log ends now: live starts after it
            try:
                self.last_id = await self.tail()
            except _RETRY:
                b.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, b.backoff[1])
        self.started.set()
        delay = b.backoff[0]
        while not self.closed:
            try:
                reply = await b.redis.xread({self.key: self.last_id}, block=b.block_ms,
                                            count=b.count)
            except _RETRY:
                if self.closed:
                    return
                b.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, b.backoff[1])
                continue
            delay = b.backoff[0]
            for _stream, entries in reply or ():
                if not entries:
                    continue
                # the reply's entries: one batch for every subscriber, one
                # call and one wake-up each
                batch = Batch([self.message(entry_id, fields) for entry_id, fields in entries])
                self.last_id = batch[-1].id
                subscribers = self._snapshot
                if subscribers is None:
                    subscribers = self._snapshot = tuple(self.subscribers)
                for subscriber in subscribers:
                    subscriber._offer_batch(batch)  # noqa: SLF001


class Broadcaster:
    """Publish to and subscribe to channels, one Redis stream each.

    ``redis``: a ``redis.asyncio.Redis`` client (its connection pool is
    shared by the readers and ``publish``).  ``maxlen``: entries kept per
    channel (approximate trimming, ``MAXLEN ~``), or ``minid_age``: seconds
    of history kept (``MINID ~``); at least one bounds the log.
    ``block_ms`` and ``count``: each reader's ``XREAD BLOCK`` and ``COUNT``.
    ``backoff``: first and largest delay between reconnection attempts.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        maxlen: int | None = 10_000,
        minid_age: float | None = None,
        prefix: str = "streamcore:",
        block_ms: int = 5000,
        count: int = 512,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        if maxlen is None and minid_age is None:
            raise ValueError("bound the log: give maxlen or minid_age")
        self.redis: Any = redis  # redis-py's reply types are too loose to check
        self.maxlen = maxlen
        self.minid_age = minid_age
        self.prefix = prefix
        self.block_ms = block_ms
        self.count = count
        self.backoff = backoff
        self.reconnects = 0
        self._readers: dict[str, _Reader] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def _stop(self, reader: _Reader) -> None:
        if self._readers.get(reader.channel) is reader:
            del self._readers[reader.channel]
        reader.closed = True
        if reader.task is None or reader.task.done():
            return
        task = asyncio.get_running_loop().create_task(reader.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def publish(self, channel: str, data: str, *, event: str | None = None,
                      retries: int = 50) -> str:
        """Append a message to ``channel``; return its id.  Retries through a
        Redis restart; an append whose reply was lost is not written twice."""
        key = self.prefix + channel
        nonce = os.urandom(8).hex()
        fields: dict[str, str] = {"d": data, "n": nonce}
        if event is not None:
            fields["e"] = event
        trim: list[Any]
        if self.minid_age is not None:
            now_ms = int((await self._time()) * 1000)
            trim = ["MINID", "~", str(now_ms - int(self.minid_age * 1000))]
        else:
            trim = ["MAXLEN", "~", self.maxlen]
        command = ["XADD", key, *trim, "*"]
        for name, value in fields.items():
            command += [name, value]
        delay = self.backoff[0]
        ambiguous = False
        sent_at = time.time()  # no entry of this append can be older (see _find)
        for _ in range(retries):
            try:
                if ambiguous:
                    found = await self._find(key, nonce, sent_at)
                    if found is not None:
                        return found
                entry_id = await self._send_once(command)
                return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            except _RETRY:
                ambiguous = True  # the append may have happened
                self.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
        raise ConnectionError(f"could not publish to {channel!r} after {retries} attempts")

    async def _send_once(self, command: list[Any]) -> Any:
        """Send ``command`` once on a connection of the client's pool.  Not
        ``execute_command``: redis-py by default sends a command again when
        its connection fails (up to 10 times in redis-py 8), and an ``XADD``
        that Redis executed but whose reply a restart lost is then appended
        twice.  The retry is ``publish``'s, which looks for the nonce first."""
        pool = self.redis.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_command(*command)
            return await self.redis.parse_response(connection, command[0])
        finally:
            await pool.release(connection)

    async def _find(self, key: str, nonce: str, sent_at: float) -> str | None:
        """The id of the entry carrying ``nonce``, if an earlier attempt
        appended it.  Every entry appended since our first attempt is looked
        at, however many other publishers added meanwhile: an entry id's
        milliseconds are at least Redis's clock when it was added, so the
        search pages back from the end of the log (``XREVRANGE``) down to
        ``sent_at`` (this machine's clock at the first attempt) put on
        Redis's clock (the offset measured now), less a second of slack for
        the round trip and clock steps."""
        server = await self._time()
        floor_ms = max(0, int((sent_at + (server - time.time()) - 1.0) * 1000))
        wanted = (nonce, nonce.encode())
        top = "+"
        while True:
            page = await self.redis.xrevrange(key, max=top, min=str(floor_ms), count=500)
            for entry_id, fields in page:
                if fields.get(b"n", fields.get("n")) in wanted:
                    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            if len(page) < 500:
                return None
            last = page[-1][0]
            top = "(" + (last.decode() if isinstance(last, bytes) else str(last))

    async def _time(self) -> float:
        seconds, micros = await self.redis.time()
        return float(seconds) + float(micros) / 1e6

    def subscribe(self, channel: str, *, last_event_id: str | None = None,
                  max_queue: int = 1024, policy: str = "drop") -> Subscription:
        """A :class:`Subscription` to ``channel``: live messages, or with
        ``last_event_id`` (the SSE ``Last-Event-ID``) what came after it
        first.  ``policy``: ``"drop"`` or ``"skip"`` when ``max_queue``
        messages wait (see the module docstring)."""
        if policy not in ("drop", "skip"):
            raise ValueError(f"policy must be 'drop' or 'skip', not {policy!r}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        reader = self._readers.get(channel)
        if reader is None:
            reader = self._readers[channel] = _Reader(self, channel)
        subscription = Subscription(reader, max_queue, policy, last_event_id)
        reader.add(subscription)
        return subscription

    async def ready(self, channel: str) -> None:
        """Wait until this worker's reader of ``channel`` has found where the
        log ends (messages published afterwards reach live subscribers)."""
        reader = self._readers.get(channel)
        if reader is not None:
            await reader.started.wait()

    async def close(self) -> None:
        """Stop every reader and end every subscription."""
        for reader in list(self._readers.values()):
            for subscription in list(reader.subscribers):
                subscription.close()  # the last one stops the reader
            self._stop(reader)
        self._readers.clear()
        while self._stopping:
            await asyncio.wait(list(self._stopping))
