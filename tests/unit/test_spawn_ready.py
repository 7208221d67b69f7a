"""``procs.spawn_ready``: a server is handed over once its readiness URL answers, and one that dies
or never gets ready is stopped and explained by its log. Real processes (Python's own HTTP server),
no Corridor server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def serve(port: int, flag: Path, log: Path, **options: Any) -> subprocess.Popen[bytes]:
    """``SERVER`` on ``port`` through ``spawn_ready`` (ready once ``flag`` exists)."""
    return procs.spawn_ready(
        [sys.executable, "-c", SERVER, str(port), str(flag)],
        log,
        ready_url=f"http://127.0.0.1:{port}/ready",
        **{"what": "the test server", "timeout": 30.0, **options},
    )


def test_a_server_is_handed_over_once_ready(tmp_path: Path) -> None:
    port = procs.free_port()
    flag = tmp_path / "ready"
    flag.touch()
    proc = serve(port, flag, tmp_path / "server.log")
    try:
        assert proc.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2.0).status_code == 200
    finally:
        procs.terminate(proc, grace=5.0)


def test_a_server_never_ready_is_stopped_and_its_log_shown(tmp_path: Path) -> None:
    port = procs.free_port()
    before = set(procs.running())
    with pytest.raises(RuntimeError, match=r"(?s)the test server not ready after 2s:\n.*serving"):
        serve(port, tmp_path / "never", tmp_path / "server.log", timeout=2.0)
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
        # e.g. Jaeger's OTLP port, not opened
        serve(port, flag, tmp_path / "server.log", listening=lambda: False, timeout=2.0)


def _listening_socket() -> socket.socket:
    """A port held by this process, as by another server on a shared machine."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken


def test_holds_ports_tells_whose_socket_listens(tmp_path: Path) -> None:
    with _listening_socket() as taken:
        port = taken.getsockname()[1]
        assert procs.holds_ports(os.getpid(), [port])
        child = procs.spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleep.log")
        try:
            assert not procs.holds_ports(child.pid, [port])
        finally:
            procs.terminate(child, grace=5.0)
    assert not procs.holds_ports(os.getpid(), [port])  # closed: nobody listens


def test_a_ready_answer_from_another_server_on_the_port_is_not_taken_for_ours(tmp_path: Path) -> None:
    """Ours dies of the bind error, maybe after the other server answered its readiness URL."""
    port = procs.free_port()
    flag = tmp_path / "ready"
    flag.touch()
    other = serve(port, flag, tmp_path / "other.log", what="the other server")
    try:
        with pytest.raises(RuntimeError, match=r"(?si)ours exited with 1:.*address already in use"):
            serve(port, flag, tmp_path / "ours.log", ports=[port], what="ours")
    finally:
        procs.terminate(other, grace=5.0)


def test_a_server_whose_port_was_taken_before_it_bound_it_starts_on_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "ready"
    flag.touch()
    log = tmp_path / "server.log"
    log.write_text("an earlier run: [Errno 98] Address already in use\n")  # not this start's
    tried: list[int] = []

    def start(ports: list[int]) -> subprocess.Popen[bytes]:
        tried.append(ports[0])
        return serve(ports[0], flag, log, ports=ports)

    with _listening_socket() as taken:
        stolen = taken.getsockname()[1]
        real = procs.free_ports
        monkeypatch.setattr(
            procs, "free_ports", lambda n, host="127.0.0.1": [stolen] if not tried else real(n, host)
        )
        proc = procs.start_on_free_ports(1, start, [log], what="the test server")
        try:
            assert tried[0] == stolen and len(tried) == 2
            assert procs.holds_ports(proc.pid, [tried[1]])
        finally:
            procs.terminate(proc, grace=5.0)


def test_a_start_that_failed_for_another_reason_is_not_tried_again(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("an earlier run: [Errno 98] Address already in use\n")
    tried: list[list[int]] = []

    def start(ports: list[int]) -> subprocess.Popen[bytes]:
        tried.append(ports)
        return procs.spawn_ready(
            [sys.executable, "-c", "import sys; print('no config'); sys.exit(3)"],
            log,
            ready_url=f"http://127.0.0.1:{ports[0]}/ready",
            what="the test server",
            timeout=30.0,
        )

    with pytest.raises(RuntimeError, match="no config"):
        procs.start_on_free_ports(1, start, [log], what="the test server")
    assert len(tried) == 1
