"""Shared by the HTTP peers: they parse whole requests, so the chunked body
is sent after a fixed request head, and bytes after the body are what the
peer would read as the next request."""
from __future__ import annotations

HEAD = b"POST /diff HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n"
