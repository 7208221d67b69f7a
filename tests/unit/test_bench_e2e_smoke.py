"""The end-to-end benchmark (python -m bench e2e) answers --help and computes its figures from what
the status stream showed. A smoke test only: no server, nothing about speed."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

from bench import e2e
from contracts.routes import RouteBook
from contracts.status import CaseStatus
from corridor.settings import REPO_ROOT


def test_python_dash_m_bench_e2e_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "e2e", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--cases", "--rate", "--seconds", "--naive-records", "--json"):
        assert option in result.stdout


def test_figures_come_from_the_stream() -> None:
    route = RouteBook.load(Path(REPO_ROOT / "deploy" / "routes" / "central-asia.json")).routes[0]
    stream = e2e.TimedStream.__new__(e2e.TimedStream)
    stream.seen = []
    drive = e2e.Drive(travel=date(2030, 1, 1))
    for n in range(4):
        case = uuid.uuid4()
        drive.case_ids.append(case)
        t = 100.0 + n
        # registered at t (read 10 ms later), arrived 5 s later (read 20 ms after the change)
        stream.seen.append((case, CaseStatus.REGISTERED, "registered", t, t + 0.010))
        stream.seen.append((case, CaseStatus.ARRIVED, "arrived", t + 5.0, t + 5.020))
    stream.seen.append((uuid.uuid4(), CaseStatus.REGISTERED, "registered", 0.0, 500.0))  # not ours
    usage = e2e.Usage(cpu={"intake": 2.0}, peak_rss_mib={"intake": 80.0})
    f = e2e._figures("test", stream, drive, 40, usage, route)
    assert f.cases == 4 and f.events == 8
    assert abs(f.seconds - 8.02) < 1e-6  # first registration to last arrival read
    assert abs(f.cases_per_second - 4 / 8.02) < 1e-6
    assert abs(f.registration_to_arrival_s[1] - 5.02) < 1e-6
    assert [s["stage"] for s in f.stages] == ["registered", "arrived"]
    assert abs(f.stages[0]["ms"][0] - 10.0) < 1e-6 and abs(f.stages[1]["ms"][0] - 20.0) < 1e-6
    assert abs(f.stages[0]["per_second"] - 1.0) < 1e-6  # 4 events over 3 s: 3 intervals
