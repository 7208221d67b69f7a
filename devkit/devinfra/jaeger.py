"""A real trace backend for the local stack: Jaeger (v2, the OpenTelemetry-collector-based binary),
built from its Go module by ``make jaeger`` (tools/jaeger), with in-memory storage.

It receives spans over OTLP (protobuf over HTTP) and answers Jaeger's query API and UI, each on a
free port of the loopback interface; nothing else listens (no metrics, health or sampling ports).
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from devkit.devinfra import gotools, procs

BINARY = gotools.JAEGER


def config(*, otlp_port: int, query_port: int, query_grpc_port: int, max_traces: int) -> dict[str, Any]:
    """The collector configuration (JSON is YAML): OTLP in, memory store, query API and UI."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            # Its own metrics would listen on a fixed port (8888), which two stacks would share.
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": max_traces}}}},
            "jaeger_query": {
                "storage": {"traces": "memstore"},
                "enable_tracing": False,  # traces of its own queries would fill the store
                "http": {"endpoint": f"127.0.0.1:{query_port}"},
                "grpc": {"endpoint": f"127.0.0.1:{query_grpc_port}"},
            },
        },
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp_port}"}}}},
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }


class JaegerServer:
    def __init__(self, workdir: Path, *, max_traces: int = 50_000, binary: Path = BINARY) -> None:
        self.workdir = workdir
        self.binary = binary
        self.max_traces = max_traces
        self.process: subprocess.Popen[bytes] | None = None
        self.otlp_port = 0
        self.query_port = 0

    @property
    def otlp_endpoint(self) -> str:
        """The base URL services send spans to (``CORRIDOR_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def url(self) -> str:
        """The UI and the query API (``/api/traces``, ``/api/v3/...``)."""
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "jaeger.log"

    def start(self, timeout: float = 60.0) -> None:
        if self.binary == gotools.JAEGER:
            gotools.ensure(self.binary)  # built now, or waited for while the suite builds it beside it
        elif not self.binary.is_file():
            raise RuntimeError(f"{self.binary} is missing")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = procs.start_on_free_ports(
            3, lambda ports: self._start_on(ports, timeout), [self.log_path], what="Jaeger"
        )

    def _start_on(self, ports: list[int], timeout: float) -> subprocess.Popen[bytes]:
        self.otlp_port, self.query_port, grpc_port = ports
        path = self.workdir / "jaeger.json"
        path.write_text(
            json.dumps(
                config(
                    otlp_port=self.otlp_port,
                    query_port=self.query_port,
                    query_grpc_port=grpc_port,
                    max_traces=self.max_traces,
                ),
                indent=2,
            )
        )
        return procs.spawn_ready(
            [self.binary, "--config", f"file:{path}"],
            self.log_path,
            # Ready when it takes spans and answers queries.
            ready_url=self.url + "/api/services",
            listening=lambda: procs.tcp_open("127.0.0.1", self.otlp_port),
            ports=ports,
            what="Jaeger",
            timeout=timeout,
            cwd=self.workdir,
            stop_signal=signal.SIGTERM,
        )

    def stop(self) -> None:
        if self.process is not None:
            procs.terminate(self.process, signal.SIGTERM, grace=10.0)
            self.process = None

    def rss_bytes(self) -> int:
        """Resident memory of the running process (Linux), for reports."""
        if self.process is None:
            return 0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0
