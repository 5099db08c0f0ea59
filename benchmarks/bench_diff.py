"""streamcore.diff throughput: inputs per second per core with every peer
(each input fed whole, byte by byte and at random splits to each)."""
from __future__ import annotations

import random

import pytest

from streamcore.diff.adapters import default_peers
from streamcore.diff.core import Peers, evaluate
from streamcore.diff.generators import GENERATORS


@pytest.mark.parametrize("protocol", ["chunked", "sse", "ws"])
def test_diff_inputs(benchmark, protocol):  # type: ignore[no-untyped-def]
    peers = Peers(protocol, default_peers(protocol))
    rng = random.Random(0)
    inputs = [GENERATORS[protocol](rng) for _ in range(50)]

    def run() -> None:
        for data in inputs:
            evaluate(peers, data)

    benchmark.extra_info["inputs_per_round"] = len(inputs)
    benchmark(run)
