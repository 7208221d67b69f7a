"""The deployment's Prometheus rules are valid, and every alert fires on the series it is for and
stays quiet just short of them (promtool's rule unit tests, deploy/prometheus/tests)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from devkit.devinfra.prometheus import RULES_DIR, PrometheusServer, Target, binary, rule_files


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("promtool")), *args], capture_output=True, text=True, timeout=120, cwd=RULES_DIR
    )


def test_the_rules_are_valid() -> None:
    files = rule_files()
    assert {p.name for p in files} >= {"alerts.yml", "thresholds.yml"}
    checked = promtool("check", "rules", *map(str, files))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_has_a_unit_test_and_they_pass() -> None:
    tests = sorted((RULES_DIR / "tests").glob("*.yml"))
    assert tests
    ran = promtool("test", "rules", *map(str, tests))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    tested = "".join(t.read_text() for t in tests)
    alerts = [
        line.split(":", 1)[1].strip()
        for line in (RULES_DIR / "alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    ]
    assert len(alerts) >= 6
    for alert in alerts:
        assert f"alertname: {alert}" in tested, f"{alert} has no rule unit test"


def test_the_stacks_configuration_scrapes_each_mission_with_its_own_token(tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, port=9999, interval=1.0)
    targets = [
        Target("intake", "intake", "KAZ", "127.0.0.1:8001"),
        Target("transport", "transport", "KAZ", "127.0.0.1:8002"),
        Target("border_clearance", "border-clearance.uzb-oybek-exit", "UZB", "127.0.0.1:8003"),
    ]
    server.write_config(targets, {"KAZ": "token-kaz", "UZB": "token-uzb"}, rule_files())
    checked = promtool("check", "config", str(server.config_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    written = json.loads(server.config_file.read_text())
    jobs = {job["job_name"]: job for job in written["scrape_configs"]}
    assert set(jobs) == {"corridor-kaz", "corridor-uzb"}
    uzb = jobs["corridor-uzb"]
    token_file = Path(uzb["authorization"]["credentials_file"])
    assert token_file.read_text() == "token-uzb" and token_file.stat().st_mode & 0o777 == 0o600
    assert uzb["static_configs"] == [
        {
            "targets": ["127.0.0.1:8003"],
            "labels": {
                "instance": "border-clearance.uzb-oybek-exit",
                "service": "border_clearance",
                "mission": "UZB",
            },
        }
    ]
    assert written["global"]["scrape_interval"] == "1s"
    assert "token-kaz" not in server.config_file.read_text()
