"""What ``POST /imports`` answers, for the OpenAPI document (the body itself is written by
``importer.report_json``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from services.intake.bulk.format import Outcome

# --- documentation of the HTTP endpoint ----------------------------------------------------------


class ReasonOut(BaseModel):
    field: str
    msg: str
    line: int | None = None
    column: str | None = None


class EntryOut(BaseModel):
    row_key: str | None
    outcome: Outcome
    case_id: str | None
    reasons: list[ReasonOut]
    flags: list[dict[str, Any]]
    item: int | None = None
    lines: list[int] | None = None
    repeated: bool = Field(
        default=False,
        description="True: the row's key was imported before; outcome, case_id and flags are what "
        "that import answered (exists: not known), and nothing was registered now",
    )


class ImportReport(BaseModel):
    namespace: str
    actor: str
    rows: int
    counts: dict[str, int]
    repeated: int = Field(default=0, description="Entries with repeated true")
    seconds: float
    rows_per_second: float | None
    entries: list[EntryOut]


OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"type": "object", "required": ["row_key"]},
                    "description": "Registrations as POST /cases takes them, each with a row_key",
                }
            },
            "text/csv": {
                "schema": {"type": "string"},
                "description": "One row per person, grouped into cases by row_key",
            },
        },
    }
}
