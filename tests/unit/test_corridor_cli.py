"""The `corridor` command as a person meets it: help that says everything the code says, one
address format for dead letters, and one clear line (never a traceback) when nothing runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from corridor import entrypoint
from devkit import cli, stackinfo
from opstools.deadletters import parse_address
from services.intake import app as intake_app
from tests.paths import REPO as REPO_ROOT

runner = CliRunner()


def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the tree (typer carries a click of its own: walk it by its attributes)."""
    found = [(path, group)]
    if hasattr(group, "commands"):
        for name, sub in group.commands.items():
            found += commands(sub, (*path, name))
    return found


COMMANDS = commands(typer.main.get_command(cli.app))


def test_the_command_offers_what_a_person_runs() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"up", "demo", "import", "tail", "token", "kafka-tool"} <= names
    assert {"deadletters list", "deadletters show", "deadletters replay"} <= names
    assert {"contracts export", "contracts check", "contracts compat"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "corridor" for p, _ in COMMANDS])
def test_every_help_shows_every_option_s_words_as_written(path: tuple[str, ...], command: Any) -> None:
    result = runner.invoke(cli.app, [*path, "--help"], terminal_width=10_000, env={"COLUMNS": "10000"})
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            # Brackets are words here ("[the file's name]"), not markup to be swallowed.
            assert " ".join(text.split()) in shown, f"{param.name}: {text!r} is not in the help as written"


def test_up_can_print_its_addresses_as_json() -> None:
    result = runner.invoke(cli.app, ["up", "--help"], env={"COLUMNS": "200"})
    assert "--json" in result.output and "stack.json" in " ".join(result.output.split())


def test_a_dead_letter_has_one_address_everywhere() -> None:
    assert parse_address("dlt.intake-inbound:0:12") == ("dlt.intake-inbound", 0, 12)
    for wrong in ("dlt.intake-inbound 0 12", "intake-inbound:0:12", "dlt.x:0", "dlt.x:a:1", "0:12"):
        with pytest.raises(ValueError, match=r"dlt\.<consumer>:<partition>:<offset>"):
            parse_address(wrong)


def run_corridor(*args: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRIDOR_")}
    env["CORRIDOR_RUN_DIR"] = str(run_dir)
    return subprocess.run(
        [sys.executable, "-m", "devkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO_ROOT,
    )


@pytest.mark.parametrize(
    "args",
    [("deadletters", "list"), ("tail",), ("import", str(REPO_ROOT / "docs" / "bulk-import-sample.csv"))],
)
def test_without_a_running_stack_each_command_says_so_in_one_line(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    result = run_corridor(*args, run_dir=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "no local stack 'up' is running: start one with `corridor up` (or `make up`)"
    ]


def test_an_unreachable_broker_is_one_line_with_what_to_do(tmp_path: Path) -> None:
    secrets = tmp_path / "up" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "operations.password").write_text("not-used\n")
    stackinfo.RUN_DIR = tmp_path  # this process writes; the command reads CORRIDOR_RUN_DIR
    info = stackinfo.StackInfo(
        name="up",
        pid=os.getpid(),  # alive while the test runs
        workdir=tmp_path / "up",
        logs=tmp_path / "up" / "logs",
        services={"intake": "http://127.0.0.1:9"},
        kafka_bootstrap="127.0.0.1:9",  # discard: nothing listens
        kafka_secrets=secrets,
        issuer=tmp_path / "up" / "idp",
    )
    (tmp_path / "up" / "stack.json").write_text(info.model_dump_json())
    result = run_corridor("deadletters", "list", run_dir=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("cannot reach Kafka") and "corridor up" in line


def test_a_service_entrypoint_answers_help_with_its_settings(capsys: pytest.CaptureFixture[str]) -> None:
    started: list[bool] = []
    code = entrypoint.main(
        "services.intake",
        intake_app.__doc__ or "",
        intake_app.IntakeSettings,
        lambda: started.append(True),
        ["--help"],
    )
    out = capsys.readouterr().out
    assert code == 0 and not started
    assert "CORRIDOR_KAFKA_BOOTSTRAP" in out and "CORRIDOR_HTTP_PORT  [default: 8001]" in out
    assert "registers cases" in out


def test_a_service_entrypoint_refuses_an_argument_instead_of_starting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    started: list[bool] = []
    code = entrypoint.main(
        "services.intake", "", intake_app.IntakeSettings, lambda: started.append(True), ["--port", "1"]
    )
    assert code == 2 and not started
    assert "takes no arguments" in capsys.readouterr().err


def test_the_entrypoints_are_wired(tmp_path: Path) -> None:
    for service in ("intake", "eligibility", "transport", "border_clearance", "operations"):
        result = subprocess.run(
            [sys.executable, "-m", f"services.{service}", "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
        )
        assert result.returncode == 0 and "Settings (environment variables):" in result.stdout, result.stderr
