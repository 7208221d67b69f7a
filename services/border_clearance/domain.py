"""Border clearance rules, without I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts.routes import Route


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
