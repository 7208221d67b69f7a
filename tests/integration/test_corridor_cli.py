"""`corridor import` and `corridor tail` against a running stack with no address given: they find
it where `corridor up` writes it (issue 15), as a newcomer types them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from devkit import stackinfo
from devkit.devstack import Stack
from tests.paths import REPO

SAMPLE = REPO / "docs" / "bulk-import-sample.csv"


def describe(stack: Stack, run_dir: Path) -> None:
    """What `corridor up` writes, for the session's stack (this process is its owner)."""
    info = stackinfo.StackInfo(
        name="up",
        pid=os.getpid(),
        workdir=stack.workdir,
        logs=stack.workdir / "logs",
        services={name: spec.url for name, spec in stack.specs.items()},
        kafka_bootstrap=stack.bootstrap,
        kafka_secrets=stack.secrets_dir,
        issuer=stack.issuer.directory,
    )
    (run_dir / "up").mkdir(parents=True)
    (run_dir / "up" / stackinfo.FILE_NAME).write_text(info.model_dump_json())


async def corridor(run_dir: Path, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRIDOR_")}
    env["CORRIDOR_RUN_DIR"] = str(run_dir)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devkit.cli", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_import_and_tail_find_the_running_stack(stack: Stack, tmp_path: Path) -> None:
    describe(stack, tmp_path)
    namespace = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = await corridor(tmp_path, "import", str(SAMPLE), "--namespace", namespace)
    assert code == 0, err + out
    report = json.loads((stack.workdir / "imports" / f"{SAMPLE.name}.report.json").read_text())
    assert report["namespace"] == namespace
    created = [e for e in report["entries"] if e.get("case_id")]
    assert created, report["counts"]
    case_id = created[0]["case_id"]
    assert f"the report of every row: {stack.workdir / 'imports'}" in " ".join(out.split())

    code, out, err = await corridor(
        tmp_path, "tail", "--from-beginning", "--case", case_id, "--limit", "1", "--json", timeout=60
    )
    assert code == 0, err
    [line] = out.strip().splitlines()
    change = json.loads(line)
    assert change["data"]["case_id"] == case_id and change["data"]["status"] == "registered"

    code, out, err = await corridor(tmp_path, "tail", "--from-beginning", "--case", case_id, "--limit", "1")
    assert code == 0 and f"{case_id} registered" in out, err
