"""streamcore.diff throughput: inputs per second per core with every peer
(each input fed whole, byte by byte, at random splits and after each CR, to
each peer and to the reference).  One round is one input, so ``ops`` is
inputs per second."""
from __future__ import annotations

import itertools
import random

import pytest

from streamcore.diff.adapters import default_peers
from streamcore.diff.core import Peers, evaluate
from streamcore.diff.generators import GENERATORS


@pytest.mark.parametrize("protocol", ["chunked", "sse", "ws"])
def test_diff_inputs_per_second(benchmark, protocol):  # type: ignore[no-untyped-def]
    peers = Peers(protocol, default_peers(protocol))
    assert not peers.unavailable, peers.unavailable
    rng = random.Random(0)
    inputs = itertools.cycle([GENERATORS[protocol](rng) for _ in range(200)])

    def one() -> None:
        evaluate(peers, next(inputs))

    benchmark.extra_info["peers"] = ",".join(peers.peers)
    benchmark(one)
