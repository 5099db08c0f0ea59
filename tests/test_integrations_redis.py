"""streamcore.integrations.redis against a real redis-server (Debian's
package), started by the fixture on a free 127.0.0.1 port in a temp dir,
with an append-only file so the log survives a restart."""
from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import twin_fixture

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ (python -m pytest has it already)
    sys.path.append(str(ROOT))

from benchmarks.redis_server import RedisServer  # noqa: E402

redis_asyncio = pytest.importorskip("redis.asyncio")

from streamcore.integrations.redis import GAP, Batch, Broadcaster, Message, Overflow  # noqa: E402
from streamcore.sse import SSEDecoder  # noqa: E402

ws_twin = twin_fixture("ws")

pytestmark = pytest.mark.interop


@pytest.fixture
def redis_server(tmp_path: Any) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make test installs it with apt-get)")
    server = RedisServer(str(tmp_path), persist=True)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


def client(server: RedisServer) -> Any:
    return redis_asyncio.Redis(host="127.0.0.1", port=server.port, socket_timeout=5,
                               socket_connect_timeout=1)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def collect(subscription: Any, n: int) -> list[Message]:
    got: list[Message] = []
    async for message in subscription:
        got.append(message)
        if len(got) == n:
            break
    return got


def test_every_message_reaches_every_client_of_every_worker_in_order(redis_server: Any) -> None:
    async def main() -> None:
        workers = [Broadcaster(client(redis_server)), Broadcaster(client(redis_server))]
        subs = [w.subscribe("chat") for w in workers for _ in range(3)]
        for w in workers:
            await w.ready("chat")
        readers = [asyncio.create_task(collect(s, 200)) for s in subs]
        ids = [await workers[k % 2].publish("chat", f"m{k}") for k in range(200)]
        results = await asyncio.gather(*readers)
        for got in results:
            assert [m.data for m in got] == [f"m{k}" for k in range(200)]
            assert [m.id for m in got] == ids
        # one reader per worker and channel, whatever the number of clients
        listing = await workers[0].redis.client_list()
        assert sum(1 for c in listing if c.get("cmd") == "xread") == 2
        # the SSE frame is encoded once per worker, shared by its clients
        first = [got[0] for got in results[:3]]
        assert first[0].sse is first[1].sse is first[2].sse
        (event,) = SSEDecoder().feed(first[0].sse)
        assert (event.data, event.id) == ("m0", ids[0])
        for w in workers:
            await w.close()

    run(main())


def test_the_websocket_frame_is_built_once_per_worker_and_shared(redis_server: Any,
                                                                 ws_twin: Any) -> None:
    async def main() -> None:
        worker = Broadcaster(client(redis_server))
        subs = [worker.subscribe("room") for _ in range(3)]
        await worker.ready("room")
        readers = [asyncio.create_task(collect(s, 2)) for s in subs]
        await worker.publish("room", "hello é")
        await worker.publish("room", "bye", event="leave")
        results = await asyncio.gather(*readers)
        await worker.close()
        for k in range(2):
            shared = {got[k].ws for got in results}
            assert len(shared) == 1  # one Prepared per message and worker
            servers = [ws_twin.Connection("server") for _ in range(3)]
            frames = [s.send_prepared(results[0][k].ws) for s in servers]
            assert frames[0] is frames[1] is frames[2]  # framed once for all
            (text,) = ws_twin.Connection("client").receive_data(frames[0])
            assert text.data == results[0][k].data == ["hello é", "bye"][k]

    run(main())


def test_resume_gets_what_was_missed_then_live_with_no_gap_and_no_duplicate(
    redis_server: Any,
) -> None:
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        ids = [await b.publish("feed", f"m{k}", event="tick") for k in range(10)]
        sub = b.subscribe("feed", last_event_id=ids[4])
        reader = asyncio.create_task(collect(sub, 10))
        await b.ready("feed")
        ids += [await b.publish("feed", f"m{k}", event="tick") for k in range(10, 15)]
        got = await reader
        assert [m.data for m in got] == [f"m{k}" for k in range(5, 15)]
        assert [m.id for m in got] == ids[5:]
        assert {m.event for m in got} == {"tick"}
        await b.close()

    run(main())


def test_an_id_older_than_the_log_gets_one_gap_message(redis_server: Any) -> None:
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        ids = [await b.publish("feed", f"m{k}") for k in range(20)]
        await b.redis.xtrim("streamcore:feed", maxlen=5, approximate=False)
        got = await collect(b.subscribe("feed", last_event_id=ids[2]), 6)
        assert got[0].event == GAP
        assert [m.data for m in got[1:]] == [f"m{k}" for k in range(15, 20)]
        # an id still inside the log: no gap
        got = await collect(b.subscribe("feed", last_event_id=ids[16]), 3)
        assert [m.data for m in got] == ["m17", "m18", "m19"]
        await b.close()

    run(main())


@pytest.mark.parametrize("policy", ["drop", "skip"])
def test_a_slow_client_hits_its_bound_and_the_others_keep_up(redis_server: Any,
                                                             policy: str) -> None:
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        slow = b.subscribe("live", max_queue=10, policy=policy)
        fast = b.subscribe("live", max_queue=1000, policy=policy)
        await b.ready("live")
        fast_reader = asyncio.create_task(collect(fast, 100))
        for k in range(100):
            await b.publish("live", f"m{k}")
            await asyncio.sleep(0)
        assert [m.data for m in await fast_reader] == [f"m{k}" for k in range(100)]
        assert slow._queued <= 11  # noqa: SLF001 - the bound holds
        if policy == "drop":
            with pytest.raises(Overflow):
                await collect(slow, 1)
        else:
            got = await collect(slow, 2)
            assert got[0].event == GAP
            assert got[1].data.startswith("m")
        await b.close()

    run(main())


async def collect_batches(subscription: Any, n: int) -> list[list[Message]]:
    got: list[list[Message]] = []
    async for batch in subscription.batches():
        got.append(batch)
        if sum(map(len, got)) >= n:
            break
    return got


def test_batches_give_everything_queued_at_once_in_order(redis_server: Any) -> None:
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        behind = b.subscribe("room")
        marker = b.subscribe("room")  # tells when the reader has offered all six
        await b.ready("room")
        ids = [await b.publish("room", f"m{k}") for k in range(6)]
        await collect(marker, 6)
        batches = await collect_batches(behind, 6)
        assert [[m.data for m in batch] for batch in batches] == [[f"m{k}" for k in range(6)]]
        assert behind.last_id == ids[-1]
        # then one step per wake-up, live ones included
        reader = asyncio.create_task(collect_batches(behind, 3))
        ids += [await b.publish("room", f"m{k}") for k in range(6, 9)]
        got = await reader
        assert [m.data for batch in got for m in batch] == ["m6", "m7", "m8"]
        assert behind.last_id == ids[-1]
        # a resumed subscription: what was missed, then live, in batches too
        resumed = b.subscribe("room", last_event_id=ids[3])
        got = await collect_batches(resumed, 5)
        assert [m.id for batch in got for m in batch] == ids[4:]
        await b.close()

    run(main())


def test_subscribers_that_kept_up_share_the_readers_batch_and_its_frames(
    redis_server: Any,
) -> None:
    """What one XREAD returns is one Batch: every waiting subscriber gets
    that very object (one wake-up, not one per entry), its SSE frames joined
    once per worker (the same bytes object for every connection); one that
    fell behind gets its queued batches joined in order, a batch of its own."""
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        subs = [b.subscribe("room") for _ in range(3)]
        behind = b.subscribe("room")
        await b.ready("room")
        its = [sub.batches().__aiter__() for sub in subs]
        waiting = [asyncio.ensure_future(it.__anext__()) for it in its]
        await asyncio.sleep(0.05)

        async def append_at_once(texts: list[str]) -> list[str]:
            # one transaction: the reader's blocked XREAD returns them together
            async with b.redis.pipeline(transaction=True) as pipe:
                for text in texts:
                    pipe.xadd("streamcore:room", {"d": text})
                return [i.decode() for i in await pipe.execute()]

        ids = await append_at_once([f"m{k}" for k in range(5)])
        batches = await asyncio.wait_for(asyncio.gather(*waiting), 5)
        first = batches[0]
        assert isinstance(first, Batch)
        assert [m.id for m in first] == ids and [m.data for m in first] == [
            f"m{k}" for k in range(5)]
        assert all(batch is first for batch in batches)
        assert first.sse == b"".join(m.sse for m in first)
        assert all(batch.sse is first.sse for batch in batches)
        assert first.ws == [m.ws for m in first]
        assert all(sub.last_id == ids[-1] for sub in subs)
        # `behind` took nothing: two more appends, two batches queued for it
        ids += await append_at_once(["m5"])
        ids += await append_at_once(["m6", "m7"])
        await asyncio.wait_for(collect_batches(subs[0], 3), 5)
        got = await asyncio.wait_for(collect_batches(behind, 8), 5)
        assert len(got) == 1 and [m.id for m in got[0]] == ids
        assert got[0].sse == b"".join(m.sse for m in got[0])
        await b.close()

    run(main())


@pytest.mark.parametrize("policy", ["drop", "skip"])
def test_batches_keep_the_bound_and_its_policy(redis_server: Any, policy: str) -> None:
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        slow = b.subscribe("live", max_queue=3, policy=policy)
        marker = b.subscribe("live")
        await b.ready("live")
        for k in range(6):
            await b.publish("live", f"m{k}")
        await collect(marker, 6)
        if policy == "drop":
            with pytest.raises(Overflow):
                await collect_batches(slow, 1)
        else:  # the queue skipped to live: one gap, then the newest message
            (batch,) = await collect_batches(slow, 2)
            assert [m.event for m in batch] == [GAP, None]
            assert batch[1].data == "m5"
            assert slow.last_id == batch[1].id
        await b.close()

    run(main())


def test_a_redis_restart_loses_nothing_and_doubles_nothing(redis_server: Any) -> None:
    async def main() -> None:
        publisher = Broadcaster(client(redis_server), backoff=(0.02, 0.2))
        worker = Broadcaster(client(redis_server), backoff=(0.02, 0.2))
        sub = worker.subscribe("chat")
        await worker.ready("chat")
        reader = asyncio.create_task(collect(sub, 100))
        for k in range(50):
            await publisher.publish("chat", f"m{k}")
        before = (await publisher.redis.info("server"))["process_id"]
        redis_server.kill()

        async def restart() -> None:
            await asyncio.sleep(0.5)
            await asyncio.get_running_loop().run_in_executor(None, redis_server.start)

        restarting = asyncio.create_task(restart())
        for k in range(50, 100):  # the first ones wait for the restart
            await publisher.publish("chat", f"m{k}")
        await restarting
        got = await reader
        assert [m.data for m in got] == [f"m{k}" for k in range(100)]
        assert len({m.id for m in got}) == 100
        # the same log, served by a new process (redis-py retried a little
        # by itself; our backoff covers the rest of the outage)
        assert (await publisher.redis.info("server"))["process_id"] != before
        await publisher.close()
        await worker.close()

    run(main())


class LosingProxy:
    """A TCP relay to redis-server that, once ``armed``, lets the next XADD
    through to Redis and then closes the client's connection instead of
    relaying the reply: the append happened, its reply was lost (what a
    Redis restart does to a command in flight)."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.armed = False
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        lose = False

        async def upstream() -> None:
            nonlocal lose
            while data := await reader.read(65536):
                if self.armed and b"XADD" in data:
                    self.armed, lose = False, True
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if lose:
                    break  # the reply is dropped with the connection
                writer.write(data)
                await writer.drain()

        task = asyncio.create_task(upstream())
        try:
            await downstream()
        finally:
            task.cancel()
            writer.close()
            up_writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


def test_an_append_whose_reply_was_lost_is_not_written_twice(redis_server: Any) -> None:
    """redis-py sends a command again when its connection fails (by default,
    in recent versions); for an XADD that Redis executed, that is a second
    entry with the same payload.  publish sends it once and, after a failed
    connection, finds it again by its nonce."""
    async def main() -> None:
        proxy = LosingProxy(redis_server.port)
        await proxy.start()
        b = Broadcaster(redis_asyncio.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=5),
                        backoff=(0.01, 0.05))
        first = await b.publish("feed", "m0")
        proxy.armed = True
        second = await b.publish("feed", "m1")
        entries = await client(redis_server).xrange("streamcore:feed")
        assert [(i.decode(), f[b"d"]) for i, f in entries] == [(first, b"m0"), (second, b"m1")]
        assert not proxy.armed and b.reconnects == 1  # the reply was lost, once
        await b.close()
        await proxy.close()

    run(main())


def test_an_append_whose_reply_was_lost_is_found_past_many_newer_entries(
    redis_server: Any,
) -> None:
    """The nonce search covers every entry since the first attempt: here
    other publishers append 1,200 entries between the lost reply and the
    retry (the search used to look at the last 100 only, missed it and
    appended it a second time)."""
    async def main() -> None:
        proxy = LosingProxy(redis_server.port)
        await proxy.start()
        b = Broadcaster(redis_asyncio.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=5),
                        backoff=(1.0, 1.0))
        direct = client(redis_server)
        first = await b.publish("feed", "m0")
        proxy.armed = True
        publishing = asyncio.create_task(b.publish("feed", "m1"))
        while proxy.armed:  # until the XADD went through and its reply was dropped
            await asyncio.sleep(0.005)
        async with direct.pipeline(transaction=False) as pipe:  # others, meanwhile
            for k in range(1200):
                pipe.xadd("streamcore:feed", {"d": f"other{k}", "n": f"x{k}"})
            await pipe.execute()
        assert not publishing.done()  # still in its backoff: the retry comes after
        second = await publishing
        entries = await direct.xrange("streamcore:feed")
        datas = [f[b"d"] for _, f in entries]
        assert datas.count(b"m1") == 1 and datas.count(b"m0") == 1 and len(datas) == 1202
        assert (entries[0][0].decode(), entries[1][0].decode()) == (first, second)
        assert b.reconnects == 1
        await b.close()
        await direct.aclose()
        await proxy.close()

    run(main())


def test_a_resumed_client_gets_nothing_twice_when_the_reader_is_behind_the_log(
    redis_server: Any,
) -> None:
    """A resume reads the log to its end while the worker's reader may still
    be behind (a reply on its way, a reconnection): what the reader offers
    afterwards up to where the log was read is not delivered again."""
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        ids = [await b.publish("feed", "m0")]
        gate = asyncio.Event()
        real_xread = b.redis.xread

        async def late_xread(*args: Any, **kwargs: Any) -> Any:
            reply = await real_xread(*args, **kwargs)
            if reply:
                await gate.wait()  # the reader holds what it read
            return reply

        b.redis.xread = late_xread
        live = b.subscribe("feed")
        await b.ready("feed")
        ids += [await b.publish("feed", f"m{k}") for k in (1, 2)]
        resumed = b.subscribe("feed", last_event_id=ids[0]).__aiter__()
        got = [await resumed.__anext__(), await resumed.__anext__()]  # from the log
        gate.set()  # the reader offers m1 (and m2) now, behind the log read
        ids.append(await b.publish("feed", "m3"))
        got.append(await asyncio.wait_for(resumed.__anext__(), 5))
        assert [m.data for m in got] == ["m1", "m2", "m3"]
        assert [m.id for m in got] == ids[1:]
        assert [m.data for m in await collect(live, 3)] == ["m1", "m2", "m3"]
        await b.close()

    run(main())


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Broadcaster(object(), maxlen=None)  # type: ignore[arg-type]
    b = Broadcaster(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        b.subscribe("x", policy="block")
    with pytest.raises(ValueError):
        b.subscribe("x", max_queue=0)


@pytest.mark.parametrize("policy", ["drop", "skip"])
@pytest.mark.parametrize("how", ["messages", "batches"])
def test_a_resume_longer_than_max_queue_gets_every_entry_then_live(
    redis_server: Any, policy: str, how: str,
) -> None:
    """The log read is paged by the iterator, not pushed through the live
    queue: a client resuming 299 entries back with max_queue=50 gets them
    all, in order, with no gap or Overflow, then live ones."""
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        ids = [await b.publish("feed", f"m{k}") for k in range(300)]
        sub = b.subscribe("feed", last_event_id=ids[0], max_queue=50, policy=policy)
        got: list[Message] = []
        if how == "messages":
            async for message in sub:
                got.append(message)
                if message.id == ids[-1]:
                    break
        else:
            async for batch in sub.batches():
                assert len(batch) <= 50
                got += batch
                if got[-1].id == ids[-1]:
                    break
        assert [m.data for m in got] == [f"m{k}" for k in range(1, 300)]
        assert [m.id for m in got] == ids[1:]
        ids += [await b.publish("feed", f"m{k}") for k in (300, 301)]
        live = [message async for message in _take(sub, 2)]
        assert [m.id for m in live] == ids[300:]
        sub.close()
        await b.close()

    run(main())


async def _take(subscription: Any, n: int) -> AsyncIterator[Message]:
    async for message in subscription:
        yield message
        n -= 1
        if n == 0:
            return


@pytest.mark.parametrize("policy", ["drop", "skip"])
def test_live_entries_held_during_a_resume_are_bounded_by_max_queue(
    redis_server: Any, policy: str,
) -> None:
    async def main() -> None:
        b = Broadcaster(client(redis_server))
        live = b.subscribe("feed")  # keeps the reader going
        await b.ready("feed")
        ids = [await b.publish("feed", f"m{k}") for k in range(3)]
        sub = b.subscribe("feed", last_event_id=ids[0], max_queue=5, policy=policy)
        it = sub.__aiter__()
        first = await it.__anext__()  # m1, from the log; m2 is on the same page
        ids += [await b.publish("feed", f"m{k}") for k in range(3, 23)]
        await asyncio.wait_for(collect(live, 23), 5)  # the reader offered them all
        assert sub._held is not None and len(sub._held) <= 5  # noqa: SLF001
        second = await it.__anext__()
        assert [first.data, second.data] == ["m1", "m2"]
        if policy == "drop":
            with pytest.raises(Overflow):
                await it.__anext__()
        else:
            gap = await it.__anext__()
            assert gap.event == GAP and gap.id == ids[2]
            rest = []
            while not rest or rest[-1].data != "m22":
                rest.append(await asyncio.wait_for(it.__anext__(), 5))
            assert 1 <= len(rest) <= 5
            assert [m.id for m in rest] == ids[23 - len(rest):]
        await b.close()

    run(main())


def test_a_reader_stops_when_its_last_subscriber_leaves_and_restarts_after(
    redis_server: Any,
) -> None:
    async def main() -> None:
        r = client(redis_server)
        b = Broadcaster(r, block_ms=60_000)
        await r.ping()
        baseline_tasks = len(asyncio.all_tasks())
        baseline_clients = (await r.info("clients"))["connected_clients"]
        for k in range(20):
            async with b.subscribe(f"room{k}"):
                await b.ready(f"room{k}")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(asyncio.all_tasks()) == baseline_tasks:
                break
        assert len(asyncio.all_tasks()) == baseline_tasks
        assert (await r.info("clients"))["connected_clients"] <= baseline_clients + 1
        # a new subscriber restarts the reader: live, and a resume loses nothing
        seen = await b.publish("room0", "a")
        ids = [await b.publish("room0", x) for x in ("b", "c")]
        sub = b.subscribe("room0")
        resumed = b.subscribe("room0", last_event_id=seen)
        await b.ready("room0")
        ids.append(await b.publish("room0", "d"))
        assert [m.id for m in await collect(sub, 1)] == ids[2:]
        assert [m.id for m in await collect(resumed, 3)] == ids
        await b.close()
        assert len(asyncio.all_tasks()) == baseline_tasks

    run(main())
