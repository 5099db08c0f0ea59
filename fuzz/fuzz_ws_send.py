"""Fuzz the WebSocket send side (streamcore.ws.Connection), both twins.

The input is read as a script: the role, whether permessage-deflate is
negotiated (and with which parameters), then up to 40 calls --
``send_text``/``send_binary`` (``final=False`` fragments too),
``send_ping``, ``send_pong``, ``send_close``, the peer's Close arriving and
``data_to_send()`` -- each payload wrapped in a buffer kind the input
chooses (fuzz/kinds.py).

The oracle is tests/test_ws_send_fuzz.py's ``run`` (one checker for the
hypothesis test and this harness): a model of the state table says what each
call must do (a frame, or StateError/ValueError and nothing emitted, stats
and state unchanged), and what each call returns is decoded by our own strict
receiver of the opposite role and by the websockets library's Sans-I/O
Protocol (with its permessage-deflate extension when deflate is on); both
must accept every frame and give back exactly the messages and control
payloads sent, in order.  The two twins must produce the same log.

    python fuzz/fuzz_ws_send.py -max_total_time=60 fuzz/corpus/ws_send
"""
from __future__ import annotations

import os
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import kinds  # noqa: E402

with atheris.instrument_imports():
    import streamcore.ws._connection  # noqa: F401
    import streamcore.ws._py  # noqa: F401
    import streamcore.ws.deflate  # noqa: F401

import test_ws_send_fuzz as checker  # noqa: E402

CODES = checker.VALID_CODES + checker.INVALID_CODES


def script(fdp: atheris.FuzzedDataProvider) -> list[tuple[object, ...]]:
    ops: list[tuple[object, ...]] = []
    for _ in range(fdp.ConsumeIntInRange(0, 40)):
        if not fdp.remaining_bytes():
            break
        what = fdp.ConsumeIntInRange(0, 9)
        if what <= 1:
            text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
            ops.append(("text", text, fdp.ConsumeBool()))
        elif what <= 3:
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
            ops.append(("binary", payload, fdp.ConsumeBool(), kind(fdp)))
        elif what <= 5:
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 130))
            ops.append(("ping" if what == 4 else "pong", payload, kind(fdp)))
        elif what == 6:
            code = CODES[fdp.ConsumeIntInRange(0, len(CODES) - 1)]
            ops.append(("close", code, fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 70))))
        elif what == 7:
            code = checker.VALID_CODES[fdp.ConsumeIntInRange(0, len(checker.VALID_CODES) - 1)]
            ops.append(("peer_close", code))
        else:
            ops.append(("take",))
    return ops


def kind(fdp: atheris.FuzzedDataProvider) -> str:
    return kinds.KINDS[fdp.ConsumeIntInRange(0, len(kinds.KINDS) - 1)]


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    role = "client" if fdp.ConsumeBool() else "server"
    offer = checker.DEFLATE_OFFERS[fdp.ConsumeIntInRange(0, len(checker.DEFLATE_OFFERS) - 1)]
    junk = fdp.ConsumeInt(1)
    ops = script(fdp)
    # the checker raises AssertionError on anything wrong, and lets any
    # undocumented exception through: both are crashes for libFuzzer
    checker.run_both(role, offer, ops, lambda payload, k: kinds.wrap(payload, k, junk))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
