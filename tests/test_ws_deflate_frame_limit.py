"""max_frame_size bounds the *inflated* size of a compressed frame, as it
bounds a plain frame (found while writing compliance groups 12/13).

SPEC (streamcore.ws): ``max_frame_size`` limits each frame "and so each fragment
streamed with assemble=False", and "memory stays bounded by the configured limits
whatever the peer sends".  With the streaming pair ``max_message_size=None,
max_frame_size=64 KiB`` a 4 KiB compressed frame must not inflate into a 4 MiB
fragment: it is a LimitError (1009) naming max_frame_size.
"""
from __future__ import annotations

from typing import Any

import pytest
from helpers import twin_fixture
from ws_helpers import PeerDeflater, frame

from streamcore import ProtocolError
from streamcore.ws.deflate import NegotiatedDeflate

codec = twin_fixture("ws")

BOMB = PeerDeflater().compress(bytes(4 << 20))  # about 4 KiB on the wire


@pytest.mark.parametrize("assemble", [False, True])
@pytest.mark.parametrize("role", ["server", "client"])
def test_inflated_frame_is_bounded_by_max_frame_size(codec: Any, role: str,
                                                     assemble: bool) -> None:
    assert len(BOMB) < 65536  # the frame itself is well within max_frame_size
    mask = b"\x01\x02\x03\x04" if role == "server" else None
    conn = codec.Connection(role, deflate=NegotiatedDeflate(), max_message_size=None,
                            max_frame_size=65536, assemble=assemble)
    with pytest.raises(ProtocolError) as info:
        events = conn.receive_data(frame(0x2, BOMB, rsv=4, mask=mask))
        # reached only with the bug: one fragment 64 times max_frame_size
        pytest.fail(f"inflated {max(len(e.data) for e in events):,} bytes from one frame "
                    "with max_frame_size=65536")
    assert info.value.close_code == 1009
