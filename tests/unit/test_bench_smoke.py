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


def test_python_dash_m_bench_bulk_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "bulk", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--rows", "--baseline-rows", "--request-rows", "--chunk-rows"):
        assert option in result.stdout


def test_the_bulk_benchmark_generates_what_the_import_reads(tmp_path: Path) -> None:
    from datetime import date, timedelta

    from bench.bulk import generate
    from services.intake import bulk

    path = tmp_path / "rows.csv"
    persons = generate(path, 1_000, travel=date.today() + timedelta(days=60), salt=1)
    rows = bulk.parse_csv(path.read_bytes())
    assert len(rows) == 1_000 and sum(len(r.lines) for r in rows) == persons
    reasons = [bulk.command_for(r, "bench")[1] for r in rows]
    assert sum(1 for r in reasons if r) == 10  # the 1% invalid rows, and only those
