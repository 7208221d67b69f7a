"""The benchmark command (python -m bench, make bench) imports and answers --help.

Only a smoke test: it starts no server and asserts nothing about speed (figures come from
running the benchmarks, bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_bench_modules_import() -> None:
    import bench.__main__ as cli
    from bench import consuming, infra, publishing, registration, stats

    assert cli.app is not None
    for module in (consuming, infra, publishing, registration, stats):
        assert module.__doc__


def test_bench_help_lists_the_options() -> None:
    from bench.__main__ import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for option in ("--events", "--repeat", "--durable", "--http", "--json"):
        assert option in result.output


def test_python_dash_m_bench_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--events" in result.stdout
