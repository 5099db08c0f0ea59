"""Peer-comparison workloads, one module per protocol.

Each module defines ``workloads() -> list[Workload]``; ``benchmarks/compare.py``
discovers every module here, so adding a protocol adds a file, not an edit.
"""
