"""One case's journey read back from Jaeger's query API: every span tagged with the case, from
every service, in time order (``python -m devkit journey <case id>``).

The Jaeger built from its Go module serves the query API but not the web UI (the UI's assets are
built separately, from the jaeger-ui repository, and no package registry ships them), so this is
how a developer looks at a case without one; any Jaeger UI pointed at the same API shows the same.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CASE_TAG = "corridor.case_id"


def query_url(workdir: Path) -> str:
    """The query API of the Jaeger a stack in ``workdir`` runs (from its configuration)."""
    config = json.loads((workdir / "jaeger" / "jaeger.json").read_text())
    return "http://" + config["extensions"]["jaeger_query"]["http"]["endpoint"]


def case_traces(jaeger: str, case_id: uuid.UUID | str, *, lookback: str = "2h") -> dict[str, dict[str, Any]]:
    """Every trace holding a span tagged with the case, by trace id, asking service by service
    (Jaeger's search wants a service)."""
    traces: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=10.0) as http:
        services = http.get(f"{jaeger}/api/services").raise_for_status().json()["data"] or []
        for service in services:
            found = http.get(
                f"{jaeger}/api/traces",
                params={
                    "service": service,
                    "tags": json.dumps({CASE_TAG: str(case_id)}),
                    "limit": 1000,
                    "lookback": lookback,
                },
            ).raise_for_status()
            for trace in found.json()["data"] or []:
                traces[trace["traceID"]] = trace
    return traces


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def service_of(trace: dict[str, Any], span: dict[str, Any]) -> str:
    return str(trace["processes"][span["processID"]]["serviceName"])


@dataclass(frozen=True)
class Step:
    start_us: int
    service: str
    operation: str
    trace_id: str
    links: tuple[str, ...]
    """Other traces this span links to (FOLLOWS_FROM references)."""


def steps(traces: dict[str, dict[str, Any]], case_id: uuid.UUID | str, *, queries: bool = True) -> list[Step]:
    """The spans tagged with the case, oldest first (without its database queries, unless
    ``queries``: a whole journey has hundreds)."""
    found = [
        Step(
            start_us=int(s["startTime"]),
            service=service_of(t, s),
            operation=s["operationName"],
            trace_id=t["traceID"],
            links=tuple(r["traceID"] for r in s.get("references", []) if r["traceID"] != t["traceID"]),
        )
        for t in traces.values()
        for s in t["spans"]
        if tags(s).get(CASE_TAG) == str(case_id) and (queries or "db.system" not in tags(s))
    ]
    return sorted(found, key=lambda step: step.start_us)
