"""Where a running local stack is: written by ``corridor up`` (``stack.json`` in its directory),
read by every other command so nobody has to pass ports (``make up`` picks free ones each time)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

from corridor.settings import REPO_ROOT

# CORRIDOR_RUN_DIR lets a test (or a second checkout) keep its stacks elsewhere.
RUN_DIR = Path(os.environ.get("CORRIDOR_RUN_DIR", REPO_ROOT / ".run"))
FILE_NAME = "stack.json"


class StackNotRunning(RuntimeError):
    """No running stack of that name: the message says what to do."""


class StackInfo(BaseModel):
    name: str
    pid: int
    workdir: Path
    logs: Path
    services: dict[str, str]
    """Instance name to base URL (``/docs`` for its API, ``/asyncapi`` for its events)."""
    kafka_bootstrap: str
    kafka_secrets: Path
    """``<principal>.password`` files (SASL/SCRAM)."""
    issuer: Path
    """The development identity provider's directory: ``corridor token`` signs with its key."""
    operations_page: str | None = None
    prometheus: str | None = None
    traces: str | None = None
    deployment: Path | None = None
    """The deployment description it runs (``deploy/deployments``)."""
    clusters: dict[str, str] = {}
    """Cluster per mission: each cluster's bootstrap (``kafka_bootstrap`` is the host mission's)."""

    def url(self, service: str) -> str:
        if service not in self.services:
            raise StackNotRunning(
                f"the stack {self.name!r} runs no {service!r} (it runs {', '.join(self.services)})"
            )
        return self.services[service]

    def password_file(self, principal: str) -> Path:
        return self.kafka_secrets / f"{principal}.password"


def path_of(name: str) -> Path:
    return RUN_DIR / name / FILE_NAME


def write(info: StackInfo) -> Path:
    target = path_of(info.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)
    return target


def remove(name: str) -> None:
    path_of(name).unlink(missing_ok=True)


def find(name: str = "up") -> StackInfo:
    """The running stack called ``name``, or StackNotRunning saying how to start one."""
    path = path_of(name)
    if not path.exists():
        raise StackNotRunning(
            f"no local stack {name!r} is running: start one with `corridor up` (or `make up`)"
        )
    info = StackInfo.model_validate(json.loads(path.read_text(encoding="utf-8")))
    if not _alive(info.pid):
        raise StackNotRunning(
            f"the local stack {name!r} (pid {info.pid}) has stopped: start it again with `corridor up`"
        )
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
