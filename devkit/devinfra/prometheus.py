"""A real Prometheus (Debian's ``prometheus`` package) scraping every service of a local stack.

Each service's ``/metrics`` wants a bearer token of the operations-viewer role in its own mission,
so there is one scrape job per mission, each reading its token from a file (``authorization:
credentials_file``) that only this process's user may read. The alert rules are the deployment's
own (``deploy/prometheus``), loaded as they are.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from corridor.settings import REPO_ROOT
from devkit.devinfra import procs

RULES_DIR = REPO_ROOT / "deploy" / "prometheus"


@dataclass(frozen=True)
class Target:
    service: str
    """The service (``border_clearance`` for every post): a bounded label."""
    instance: str
    """The instance's own name (``border-clearance.kaz-zhibek-zholy-exit``)."""
    mission: str
    address: str
    """host:port"""


def binary(name: str = "prometheus") -> Path:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is missing: install Debian's package prometheus (make setup does)")
    return Path(found)


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    """The alert and threshold rules an operator deploys (their tests live in ``tests/``)."""
    return sorted(directory.glob("*.yml"))


def config(
    targets: Iterable[Target],
    tokens: Mapping[str, Path],
    *,
    interval: float,
    rules: Iterable[Path],
) -> dict[str, Any]:
    """The configuration: one job per mission (the token differs), the instance label being the
    service instance's name rather than its address, which changes every start."""
    by_mission: dict[str, list[Target]] = {}
    for target in targets:
        by_mission.setdefault(target.mission, []).append(target)
    seconds = f"{max(1, round(interval))}s"
    return {
        "global": {"scrape_interval": seconds, "evaluation_interval": seconds, "scrape_timeout": seconds},
        "rule_files": [str(p) for p in rules],
        "scrape_configs": [
            {
                "job_name": f"corridor-{mission.lower()}",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(tokens[mission])},
                "static_configs": [
                    {
                        "targets": [t.address],
                        "labels": {"instance": t.instance, "service": t.service, "mission": mission},
                    }
                    for t in group
                ],
            }
            for mission, group in sorted(by_mission.items())
        ],
    }


class PrometheusServer:
    def __init__(self, workdir: Path, *, port: int | None = None, interval: float = 5.0) -> None:
        self.workdir = workdir
        self.fixed_port = port
        """A port the caller chose; otherwise one is chosen at the first start (0 until then), kept
        across restarts while it is free"""
        self.port = port or 0
        self.interval = interval
        self.process: subprocess.Popen[bytes] | None = None
        self.started_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def log_file(self) -> Path:
        return self.workdir / "prometheus.log"

    def write_config(
        self, targets: Iterable[Target], tokens: Mapping[str, str], rules: Iterable[Path]
    ) -> None:
        """The configuration and each mission's token in a file of mode 600 beside it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        secrets = self.workdir / "secrets"
        secrets.mkdir(mode=0o700, exist_ok=True)
        files: dict[str, Path] = {}
        for mission, token in tokens.items():
            path = secrets / f"{mission.lower()}.token"
            path.touch(mode=0o600)
            path.write_text(token)
            files[mission] = path
        # JSON is YAML: Prometheus reads it as it is, and no YAML writer is needed.
        self.config_file.write_text(
            json.dumps(config(targets, files, interval=self.interval, rules=rules), indent=2)
        )

    def start(self, timeout: float = 60.0) -> None:
        started = time.monotonic()
        procs.run_checked(
            [binary("promtool"), "check", "config", self.config_file],
            self.workdir / "promtool-check.log",
            timeout=60.0,
            what="promtool check config",
        )
        if self.fixed_port:
            self.process = self._start_on(self.fixed_port, timeout)
        else:
            self.process = procs.start_on_free_ports(
                1,
                lambda ports: self._start_on(ports[0], timeout),
                [self.log_file],
                what="Prometheus",
                first=[self.port] if self.port else None,
            )
        self.started_seconds = time.monotonic() - started

    def _start_on(self, port: int, timeout: float) -> subprocess.Popen[bytes]:
        self.port = port
        return procs.spawn_ready(
            [
                binary(),
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",  # POST /-/reload after the targets change
                "--log.level=warn",
            ],
            self.log_file,
            ready_url=self.url + "/-/ready",
            ports=[port],
            what="Prometheus",
            timeout=timeout,
            cwd=self.workdir,
            stop_signal=signal.SIGTERM,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result (``/api/v1/query``): each series' labels and value."""
        answer = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10.0)
        body = answer.raise_for_status().json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r}: {body}")
        return list(body["data"]["result"])

    def targets(self) -> list[dict[str, Any]]:
        """The scrape targets and how their last scrape went (``/api/v1/targets``)."""
        answer = httpx.get(self.url + "/api/v1/targets", timeout=10.0).raise_for_status().json()
        return list(answer["data"]["activeTargets"])

    def stop(self) -> None:
        if self.process is not None:
            procs.terminate(self.process, signal.SIGTERM, grace=15.0)
            self.process = None
