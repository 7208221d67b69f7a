"""``procs.spawn_ready``: a server is handed over once its readiness URL answers, and one that dies
or never gets ready is stopped and explained by its log. Real processes (Python's own HTTP server),
no Corridor server."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from devkit.devinfra import procs

# Answers 200 on /ready only after a file appears: "not ready" and "ready" are both reachable.
SERVER = """
import http.server, os, sys
flag = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/ready" and os.path.exists(flag)
        self.send_response(200 if ok else 503)
        self.end_headers()
    def log_message(self, *args):
        pass
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_a_server_is_handed_over_once_ready(tmp_path: Path) -> None:
    port = procs.free_port()
    flag = tmp_path / "ready"
    flag.touch()
    proc = procs.spawn_ready(
        [sys.executable, "-c", SERVER, str(port), str(flag)],
        tmp_path / "server.log",
        ready_url=f"http://127.0.0.1:{port}/ready",
        what="the test server",
        timeout=30.0,
    )
    try:
        assert proc.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2.0).status_code == 200
    finally:
        procs.terminate(proc, grace=5.0)


def test_a_server_never_ready_is_stopped_and_its_log_shown(tmp_path: Path) -> None:
    port = procs.free_port()
    before = set(procs.running())
    with pytest.raises(RuntimeError, match=r"(?s)the test server not ready after 2s:\n.*serving"):
        procs.spawn_ready(
            [sys.executable, "-c", SERVER, str(port), str(tmp_path / "never")],
            tmp_path / "server.log",
            ready_url=f"http://127.0.0.1:{port}/ready",
            what="the test server",
            timeout=2.0,
        )
    assert set(procs.running()) == before  # not left behind
    assert procs.port_is_free(port)


def test_a_server_that_dies_is_explained_by_its_log(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"(?s)the test server exited with 3:\n.*no config"):
        procs.spawn_ready(
            [sys.executable, "-c", "import sys; print('no config'); sys.exit(3)"],
            tmp_path / "server.log",
            ready_url=f"http://127.0.0.1:{procs.free_port()}/ready",
            what="the test server",
            timeout=30.0,
        )


def test_a_port_not_listening_yet_holds_the_wait(tmp_path: Path) -> None:
    port = procs.free_port()
    flag = tmp_path / "ready"
    flag.touch()
    with pytest.raises(RuntimeError, match="not ready"):
        procs.spawn_ready(
            [sys.executable, "-c", SERVER, str(port), str(flag)],
            tmp_path / "server.log",
            ready_url=f"http://127.0.0.1:{port}/ready",
            listening=lambda: False,  # e.g. Jaeger's OTLP port, not opened
            what="the test server",
            timeout=2.0,
        )
