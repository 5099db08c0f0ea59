"""Atheris harness: the server-side receive path (masked frames from a client).

The harness itself (the oracle, the options, both twins) is ws_harness.py.

    python fuzz/fuzz_ws_server.py -max_total_time=60 fuzz/corpus/ws_server
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ws_harness  # noqa: E402

if __name__ == "__main__":
    ws_harness.main("server")
