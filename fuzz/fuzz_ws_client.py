"""Atheris harness: the client-side receive path (unmasked frames from a server).

The harness itself (the oracle, the options, both twins) is ws_harness.py.

    python fuzz/fuzz_ws_client.py -max_total_time=60 fuzz/corpus/ws_client
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ws_harness  # noqa: E402

if __name__ == "__main__":
    ws_harness.main("client")
