"""Chunked events follow the one event idiom: one set of classes for both twins.

``Data``, ``Trailers`` and ``EndOfMessage`` are NamedTuple subclasses defined
in ``streamcore.chunked._common``; the compiled twin builds them from a
freelist of its own with a custom ``tp_dealloc`` (see ``_c.pyx``), so these
tests also hold that machinery to what CPython would do: GC, subclasses,
pickling, finalizers, deep nesting, no leaked references.
"""
from __future__ import annotations

import copy
import gc
import os
import pickle
import random
import subprocess
import sys
import textwrap
import tracemalloc
from typing import Any

import pytest
from helpers import both_twins, twin_fixture

import streamcore.chunked
from streamcore.chunked import _common

chunked = twin_fixture("chunked")

WIRE = b"3;a=b\r\nabc\r\n2\r\nde\r\n0;last\r\nX-Sum: 1\r\n\r\n"
CLASSES = ("Data", "Trailers", "EndOfMessage")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def class_refs() -> dict[str, int]:
    """References to each event class, less those of blocks parked on the
    compiled twin's freelists (each keeps its class reference)."""
    parked = both_twins("chunked")[1]._parked()
    return {name: sys.getrefcount(getattr(_common, name)) - n for name, n in zip(CLASSES, parked)}


def decode(mod: Any, wire: bytes = WIRE, coalesce: bool = False) -> list[Any]:
    dec = mod.ChunkedDecoder(coalesce=coalesce)
    events = dec.feed(wire)
    assert dec.done
    return events


def small_chunks(n: int, size: int = 16) -> bytes:
    rng = random.Random(n)
    return b"".join(b"%x\r\n%s\r\n" % (size, rng.randbytes(size)) for _ in range(n)) + b"0\r\n\r\n"


# -- one set of classes ----------------------------------------------------------------

def test_every_event_is_an_instance_of_both_twins_classes():
    # Failed before the change: each twin had its own classes.
    py, c = both_twins("chunked")
    for mod in (py, c):
        for coalesce in (False, True):
            events = decode(mod, coalesce=coalesce)
            assert [type(e).__name__ for e in events][-2:] == ["Trailers", "EndOfMessage"]
            for ev in events:
                name = type(ev).__name__
                assert type(ev) is getattr(_common, name)
                assert isinstance(ev, getattr(py, name)) and isinstance(ev, getattr(c, name))
    for name in CLASSES:
        assert getattr(py, name) is getattr(c, name) is getattr(_common, name)
        assert getattr(streamcore.chunked, name) is getattr(_common, name)


def test_encoder_trace_events_are_the_shared_classes(chunked):
    seen: list[Any] = []
    enc = chunked.ChunkedEncoder(trace=seen.append)
    enc.encode(b"abc", extensions=[(b"a", b"b")])
    enc.encode_buffers(b"de")
    enc.finish(trailers=[(b"X-Sum", b"1")], extensions=[(b"last", None)])
    assert [type(e) for e in seen] == [_common.Data, _common.Data, _common.Trailers,
                                       _common.EndOfMessage]
    assert seen[0] == _common.Data(b"abc", True, True, ((b"a", b"b"),))
    assert seen[2] == _common.Trailers([(b"X-Sum", b"1")])
    assert seen[3] == _common.EndOfMessage(((b"last", None),))


def test_twins_agree_on_equality_hash_and_repr():
    py, c = both_twins("chunked")
    for wire in (WIRE, small_chunks(50), b"0\r\n\r\n"):
        for coalesce in (False, True):
            a, b = decode(py, wire, coalesce), decode(c, wire, coalesce)
            assert a == b
            assert [repr(e) for e in a] == [repr(e) for e in b]
            for x, y in zip(a, b):
                if type(x) is _common.Trailers:
                    with pytest.raises(TypeError):
                        hash(x)  # its headers are a list
                    with pytest.raises(TypeError):
                        hash(y)
                else:
                    assert hash(x) == hash(y)


def test_event_fields_repr_and_the_idiom(chunked):
    ev = decode(chunked)
    assert ev[0] == chunked.Data(b"abc", True, True, ((b"a", b"b"),))
    assert (ev[0].data, ev[0].chunk_start, ev[0].chunk_end, ev[0].extensions) == (
        b"abc", True, True, ((b"a", b"b"),))
    assert ev[0].chunk_start is True and ev[1].extensions == ()
    assert repr(ev[0]) == "Data(data=b'abc', chunk_start=True, chunk_end=True, extensions=((b'a', b'b'),))"
    assert repr(ev[2]) == "Trailers(headers=[(b'x-sum', b'1')])"
    assert repr(ev[3]) == "EndOfMessage(extensions=((b'last', None),))"
    assert repr(chunked.EndOfMessage()) == "EndOfMessage()"
    # equality compares the class: never a plain tuple, never another event
    assert ev[0] != (b"abc", True, True, ((b"a", b"b"),))
    assert chunked.EndOfMessage() != chunked.Trailers(())  # type: ignore[arg-type]
    assert chunked.EndOfMessage() != ()
    assert {chunked.EndOfMessage(), chunked.EndOfMessage()} == {chunked.EndOfMessage()}
    assert hash(chunked.Data(b"x", True, False)) != hash(chunked.EndOfMessage())
    # NamedTuple conveniences
    assert ev[0]._replace(data=b"z").data == b"z"
    assert ev[2]._asdict() == {"headers": [(b"x-sum", b"1")]}
    assert chunked.Data(data=b"x", chunk_start=False, chunk_end=True).extensions == ()


def test_events_pickle_and_copy(chunked):
    for ev in decode(chunked):
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            back = pickle.loads(pickle.dumps(ev, proto))
            assert back == ev and type(back) is type(ev)
        assert copy.copy(ev) == ev and copy.deepcopy(ev) == ev


# -- the compiled twin's freelist: GC, reuse, subclasses, finalizers -------------------------

def test_events_survive_gc_and_stay_tracked(chunked):
    events = decode(chunked, small_chunks(2000))
    expected = [(e.data, e.chunk_start, e.chunk_end, e.extensions) for e in events[:-1]]
    gc.collect()
    assert all(gc.is_tracked(e) for e in events)
    assert [(e.data, e.chunk_start, e.chunk_end, e.extensions) for e in events[:-1]] == expected
    # an event in a reference cycle is collected like any tuple
    box: list[Any] = []
    ev = chunked.Data(b"x", True, True, (box,))  # type: ignore[arg-type]
    box.append(ev)
    del ev, box
    assert gc.collect() >= 2


def test_alloc_free_stress_across_twins():
    py, c = both_twins("chunked")
    rng = random.Random(1)
    wire = small_chunks(300)
    keep: list[list[Any]] = []
    want = decode(py, wire)
    for i in range(300):
        mod = (py, c)[i % 2]
        events = decode(mod, wire, coalesce=rng.random() < 0.2)
        # Python-built events go through the same dealloc and freelist
        events += [mod.Data(b"%d" % i, bool(i & 1), bool(i & 2)), mod.EndOfMessage(),
                   mod.Trailers([(b"n", b"%d" % i)])]
        if rng.random() < 0.3:
            keep.append(events)
        if keep and rng.random() < 0.3:
            keep.pop(rng.randrange(len(keep)))
        if i % 50 == 0:
            gc.collect()
    gc.collect()
    for events in keep:
        if len(events) == len(want) + 3:
            assert events[:-3] == want
        assert events[-3].data.isdigit()
    assert decode(c, wire) == want == decode(py, wire)


def test_a_block_freed_by_one_twin_is_reused_by_the_other():
    py, c = both_twins("chunked")
    parked = c._parked
    gc.collect()
    gc.disable()  # no collection may free other events meanwhile
    try:
        before = parked()[0]
        made = [py.Data(b"%d" % i, True, False) for i in range(8)]  # tuple.__new__
        del made
        assert parked()[0] == min(before + 8, 512)
        events = decode(c, small_chunks(3))
        assert parked()[0] == min(before + 8, 512) - 3
    finally:
        gc.enable()
    assert events[:3] == decode(py, small_chunks(3))[:3]


def test_no_reference_or_memory_leak_over_100k_events(chunked):
    wire = small_chunks(1000)
    reads = [wire[i:i + 4096] for i in range(0, len(wire), 4096)]
    Data = chunked.Data

    def run() -> int:
        n = 0
        for _ in range(100):  # 100 bodies of 1,000 chunks: 100,300 Data events
            dec = chunked.ChunkedDecoder()
            for r in reads:
                for ev in dec.feed(r):
                    if type(ev) is Data:
                        n += 1
        return n

    assert run() == 100_300  # warm up (fills the freelists)
    gc.collect()
    refs = class_refs()
    true_refs, false_refs = sys.getrefcount(True), sys.getrefcount(False)
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        assert run() == 100_300
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert class_refs() == refs
    assert abs(sys.getrefcount(True) - true_refs) < 100
    assert abs(sys.getrefcount(False) - false_refs) < 100
    assert len(gc.get_objects()) - objects < 100
    assert grown < 64 * 1024, grown


def test_subclasses_are_freed_normally(chunked):
    deleted: list[bytes] = []
    gc.collect()
    base_refs = class_refs()

    class Slotted(chunked.Data):  # type: ignore[misc,valid-type]
        __slots__ = ()

    class WithDict(chunked.Data):  # type: ignore[misc,valid-type]
        def __del__(self) -> None:
            deleted.append(self.data)

    for _ in range(3):
        a = [Slotted(b"s%d" % i, True, True) for i in range(1000)]
        b = [WithDict(b"d%d" % i, True, False) for i in range(1000)]
        for x in b:
            x.note = x.data  # a __dict__ of its own
        assert isinstance(a[0], chunked.Data) and a[0] != chunked.Data(b"s0", True, True)
        del a, b, x
        gc.collect()
    assert len(deleted) == 3000
    assert set(deleted) == {b"d%d" % i for i in range(1000)}
    slotted_refs = sys.getrefcount(Slotted)
    objs = [Slotted(b"x", True, True) for _ in range(500)]
    assert sys.getrefcount(Slotted) == slotted_refs + 500
    del objs
    assert sys.getrefcount(Slotted) == slotted_refs
    del Slotted, WithDict
    gc.collect()
    assert class_refs() == base_refs


def test_odd_events_are_freed_normally(chunked):
    Data = chunked.Data
    for _ in range(2000):
        tuple.__new__(Data, (b"short",))  # wrong length
        Data(bytearray(b"x"), 1, 0, [("a", None)])  # unusual item types
        chunked.Trailers(((b"a", b"b"),))
        chunked.EndOfMessage(extensions=[(b"e", None)])
    gc.collect()
    assert decode(chunked)[0] == Data(b"abc", True, True, ((b"a", b"b"),))


def test_deeply_nested_events_are_freed_without_recursion(chunked):
    ev: Any = chunked.EndOfMessage()
    for i in range(200_000):
        ev = chunked.Data(ev, True, True) if i % 2 else chunked.EndOfMessage(ev)
    del ev  # the trashcan path: would overflow the C stack without it
    gc.collect()


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (it changes process-wide state)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


FINALIZER = """
    import gc
    from streamcore.chunked import _c, _py
    Data = _c.Data
    WIRE = %r
    finalized, resurrected = [], []
    def decode(mod):
        return mod.ChunkedDecoder().feed(WIRE)
    decode(_c)  # park some blocks first
    Data.__del__ = lambda self: finalized.append(self.data)
    decode(_c)
    decode(_py)
    Data(b"made", True, True)
    assert sorted(finalized) == [b"abc", b"abc", b"de", b"de", b"made"], finalized
    assert _c._parked()[0] == 0  # the class lost its freelist
    Data.__del__ = lambda self: resurrected.append(self)
    Data(b"again", True, True)
    assert [e.data for e in resurrected] == [b"again"]
    del Data.__del__
    resurrected.clear()
    gc.collect()
    assert decode(_c) == decode(_py)
    assert _c._parked()[0] == 0
    print(len(finalized))
"""


def test_a_finalizer_given_to_the_class_runs(chunked):
    # Runs both twins in a fresh interpreter: giving the shared class a
    # __del__ is process-wide.
    assert chunked.Data is _common.Data
    assert run_python(FINALIZER % WIRE).split() == ["5"]


SHUTDOWN = """
    import atexit
    kept = []
    def late():
        # registered before the compiled twin, so it runs after its
        # atexit handler has emptied the freelists
        from streamcore.chunked import _c
        kept.append(_c.ChunkedDecoder().feed(%r))
        assert _c._parked() == (0, 0, 0)
        del kept[:1]
        print("late", len(kept))
    atexit.register(late)
    from streamcore.chunked import _c, _py
    kept.append(_c.ChunkedDecoder().feed(%r))
    kept.append(_py.ChunkedDecoder().feed(%r))
    kept.append([_c.Data(kept, True, True)])  # a cycle through a Data, left to the final GC
    _c.ChunkedDecoder().feed(%r)
    print("parked", _c._parked() != (0, 0, 0))
"""


def test_events_outlive_the_freelists_at_interpreter_exit(chunked):
    wire = small_chunks(600)
    out = run_python(SHUTDOWN % (wire, wire, WIRE, WIRE))
    assert out.split() == ["parked", "True", "late", "3"]
    assert decode(chunked) == decode(chunked)
