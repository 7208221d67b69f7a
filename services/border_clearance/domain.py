"""Border clearance rules, without I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.routes import Route
from corridor.mrz import MachineReadableZone


@dataclass(frozen=True)
class Refusal:
    person_id: uuid.UUID
    reason_code: str
    reason: str


def previous_checkpoint(route: Route, checkpoint_id: str) -> str | None:
    """The checkpoint a traveller must have cleared before this one; None for the first."""
    index = route.index_of(checkpoint_id)
    return route.checkpoints[index - 1].checkpoint_id if index > 0 else None


def case_outcome(person_ids: list[uuid.UUID], refusals: dict[uuid.UUID, Refusal]) -> bool:
    """A family crosses together: the case is cleared only if nobody in it is refused."""
    return not any(p in refusals for p in person_ids)


def _normal(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalpha())


def document_mismatches(zone: MachineReadableZone, expected: Mapping[str, Any]) -> list[str]:
    """Fields of the scanned document that differ from the manifest sent ahead."""
    found = []
    if zone.document_number != expected["document_number"].replace("<", ""):
        found.append("document_number")
    if zone.birth_date != expected["birth_date"]:
        found.append("birth_date")
    if zone.nationality != expected["nationality"]:
        found.append("nationality")
    if zone.sex != expected["sex"]:
        found.append("sex")
    if _normal(zone.surname) != _normal(expected["surname"]):
        found.append("surname")
    return found
