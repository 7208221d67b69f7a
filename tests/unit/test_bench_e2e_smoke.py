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
    stream.sent = []
    drive = e2e.Drive(travel=date(2030, 1, 1))
    for n in range(4):
        case = uuid.uuid4()
        drive.case_ids.append(case)
        t = 100.0 + n
        # registered at t (read 10 ms later), arrived 5 s later (read 20 ms after the change)
        stream.seen.append((case, CaseStatus.REGISTERED, "registered", t, t + 0.010))
        stream.sent.append(t + 0.004)  # sent by the relay 4 ms after the change
        stream.seen.append((case, CaseStatus.ARRIVED, "arrived", t + 5.0, t + 5.020))
        stream.sent.append(t + 5.004)
    stream.seen.append((uuid.uuid4(), CaseStatus.REGISTERED, "registered", 0.0, 500.0))  # not ours
    stream.sent.append(400.0)
    usage = e2e.Usage(cpu={"intake": 2.0}, peak_rss_mib={"intake": 80.0})
    f = e2e._figures("test", stream, drive, 40, usage, route)
    assert f.cases == 4 and f.events == 8
    assert abs(f.seconds - 8.02) < 1e-6  # first registration to last arrival read
    assert abs(f.cases_per_second - 4 / 8.02) < 1e-6
    assert abs(f.registration_to_arrival_s[1] - 5.02) < 1e-6
    assert [s["stage"] for s in f.stages] == ["registered", "arrived"]
    assert abs(f.stages[0]["ms"][0] - 10.0) < 1e-6 and abs(f.stages[1]["ms"][0] - 20.0) < 1e-6
    assert abs(f.stages[0]["per_second"] - 1.0) < 1e-6  # 4 events over 3 s: 3 intervals
    # change → read split at the relay's send: 4 ms before it, the other 6 or 16 ms after
    assert max(abs(v - 4.0) for v in f.change_to_sent_ms) < 1e-6
    for whole, after in zip(f.change_to_stream_ms, f.sent_to_read_ms, strict=True):
        assert abs(after - (whole - 4.0)) < 1e-6
