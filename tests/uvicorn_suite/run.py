"""uvicorn's own WebSocket test suite against streamcore's ``--ws`` class.

``make test-uvicorn`` runs this: it downloads the pinned uvicorn sdist from
PyPI into build/ (nothing of uvicorn's is committed here), extracts it, writes
conftest_override.py (beside this file) as the sdist's
tests/protocols/conftest.py so that the ``ws_protocol_cls`` fixture gives
:class:`streamcore.integrations.uvicorn.WebSocketProtocol`, and runs
tests/protocols/test_websocket.py unchanged, over each of uvicorn's HTTP
front ends (httptools, h11, zttp).  The tests run against the sdist's own
uvicorn package (the same version as the tests).

The tests listed in DESELECTED do not exercise our class as written; each is
deselected by its exact node id, with the reason printed before the run, and
the run fails if pytest does not deselect exactly that many.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile

VERSION = "0.55.0"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(ROOT, "build", "uvicorn-suite")
SUITE = "tests/protocols/test_websocket.py"
HTTP = ("httptools", "h11", "zttp")

IDENTITY = "checks isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)): class identity"
NOT_OURS = "does not take ws_protocol_cls: it runs uvicorn's WebSocketsSansIOProtocol, not our class"
QUEUE = (
    "asserts that one unread message pauses reading (uvicorn's classes pause after every "
    "message and ignore ws_max_queue); we honour ws_max_queue (32 by default), so reading "
    "pauses only when that many wait; close-resumes-paused-reads is tested with "
    "ws_max_queue=1 in tests/test_integrations_uvicorn.py"
)


def _deselected() -> dict[str, str]:
    out: dict[str, str] = {}
    for http in HTTP:
        for name, reason in (
            ("test_server_keepalive_ping_pong", IDENTITY),
            ("test_server_keepalive_disabled", IDENTITY),
            ("test_close_resumes_reads_paused_on_an_unconsumed_message", QUEUE),
        ):
            out[f"{SUITE}::{name}[streamcore-{http}]"] = reason
        for case in (
            r"header0-HTTP/1.1 431 Request Header Fields Too Large\r\n",  # pytest escapes CR LF in ids
            r"Content-Length: 5-HTTP/1.1 400 Bad Request\r\n",
        ):
            out[f"{SUITE}::test_unparseable_upgrade_closes_connection[{http}-{case}]"] = NOT_OURS
        for case in ("max=defaults sent=defaults", "max=defaults sent=defaults+1",
                     "max=10 sent=10", "max=10 sent=11"):
            name = "test_send_binary_data_to_server_bigger_than_default_on_websockets"
            out[f"{SUITE}::{name}[{http}-{case}]"] = NOT_OURS
    return out


DESELECTED = _deselected()


def _fetch() -> str:
    tree = os.path.join(WORK, f"uvicorn-{VERSION}")
    if os.path.isfile(os.path.join(tree, SUITE)):
        return tree
    os.makedirs(WORK, exist_ok=True)
    archive = os.path.join(WORK, f"uvicorn-{VERSION}.tar.gz")
    if not os.path.isfile(archive):
        subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "-q",
             f"uvicorn=={VERSION}", "--no-binary", ":all:", "--no-deps", "-d", WORK],
            check=True,
        )
    shutil.rmtree(tree, ignore_errors=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(WORK, filter="data")
        else:  # Python < 3.12 without the backport
            tar.extractall(WORK)  # noqa: S202 - the pinned sdist from PyPI
    return tree


def main() -> int:
    tree = _fetch()
    shutil.copyfile(os.path.join(HERE, "conftest_override.py"),
                    os.path.join(tree, "tests", "protocols", "conftest.py"))
    print(f"uvicorn {VERSION} {SUITE} against streamcore.integrations.uvicorn.WebSocketProtocol")
    print(f"deselected ({len(DESELECTED)}):")
    for node, reason in DESELECTED.items():
        print(f"  {node!r}: {reason}")
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    command = [
        sys.executable, "-m", "pytest", SUITE, "-q", "-p", "no:cacheprovider",
        # the sdist's addopts ask for pytest-xdist (-n 8): one process here
        "-o", "addopts=-rfEs --strict-config --strict-markers",
    ]
    for node in DESELECTED:
        command += ["--deselect", node]
    proc = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    summary = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        summary = line
    code = proc.wait()
    match = re.search(r"(\d+) deselected", summary)
    if code == 0 and (match is None or int(match.group(1)) != len(DESELECTED)):
        print(f"expected {len(DESELECTED)} deselected tests: uvicorn's suite changed?")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
