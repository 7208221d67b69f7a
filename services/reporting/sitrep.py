"""The daily situation report's content: what a coordinator sends about one day, as data.

Pure: built from the facts (``domain.facts``), the status records and the crossing requirements'
changes; drawn by ``render``. Every number in it has passed small-cell suppression.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from contracts import reasons
from contracts.intake import AgeBand
from contracts.routes import Checkpoint, RouteBook
from contracts.status import ANNOTATIONS, CaseStatus
from services.reporting.domain import (
    FIGURE_LABELS,
    SEXES,
    Count,
    Fact,
    Figure,
    Shown,
    StatusRecord,
    suppress,
    tabulate,
)


@dataclass(frozen=True)
class RequirementChange:
    """A crossing requirement published or lifted (from ``border.requirements.<checkpoint>``)."""

    requirement_id: uuid.UUID
    checkpoint_id: str
    change: str  # "published" | "lifted"
    at: datetime
    code: str = ""
    description: str = ""
    effective_from: date | None = None


@dataclass(frozen=True)
class Headline:
    figure: Figure
    label: str
    cases: Shown
    people: Shown


@dataclass(frozen=True)
class CrossingFlow:
    checkpoint_id: str
    name: str
    country: str
    cleared: Shown
    refused: Shown


@dataclass(frozen=True)
class Hold:
    reason_code: str
    reason: str
    new_today: Shown
    on_hold_at_end: Shown
    """People on hold for this reason when the day ended"""


@dataclass(frozen=True)
class SituationReport:
    day: date
    generated_at: datetime
    threshold: int
    headlines: tuple[Headline, ...]
    returned_women: Shown
    returned_children: Shown
    returned_elderly: Shown
    returned_vulnerable: Shown
    returned_to_date: Shown
    cumulative_returns: tuple[tuple[date, int], ...]
    """(day, people arrived from the first day to that day), for every day up to this one"""
    crossings: tuple[CrossingFlow, ...]
    holds: tuple[Hold, ...]
    changes: tuple[RequirementChange, ...]


HEADLINE_FIGURES = (
    Figure.REGISTERED,
    Figure.ELIGIBLE,
    Figure.HELD,
    Figure.DEPARTED,
    Figure.ARRIVED,
    Figure.REFUSED,
    Figure.WITHDRAWN,
    Figure.NO_SHOW,
)


def _shown(n: int, threshold: int) -> Shown:
    return None if 0 < n < threshold else n


def build(
    day: date,
    found: list[Fact],
    records: list[StatusRecord],
    changes: list[RequirementChange],
    routes: RouteBook,
    *,
    threshold: int,
    tz: tzinfo,
    generated_at: datetime,
) -> SituationReport:
    today = [f for f in found if f.day == day]
    per_figure = {Figure(r.get("figure")): r.count for r in tabulate(today, ("day",), split=False)}
    headlines = tuple(
        Headline(
            figure,
            FIGURE_LABELS[figure],
            suppress(per_figure.get(figure, Count()), threshold).cases,
            suppress(per_figure.get(figure, Count()), threshold).people,
        )
        for figure in HEADLINE_FIGURES
    )
    arrived = per_figure.get(Figure.ARRIVED, Count())
    women = sum(arrived.cells.get(("F", b), 0) for b in AgeBand)
    children = sum(arrived.cells.get((s, b), 0) for s in SEXES for b in (AgeBand.UNDER_5, AgeBand.CHILD))
    elderly = sum(arrived.cells.get((s, AgeBand.OLDER), 0) for s in SEXES)

    arrivals: Counter[date] = Counter()
    seen: set[uuid.UUID] = set()
    for f in found:
        if f.figure is Figure.ARRIVED and f.day <= day and f.case_id not in seen:
            seen.add(f.case_id)
            arrivals[f.day] += f.people
    # From the operation's first counted day, so the chart shows the days before the first return.
    first = min([*(f.day for f in found), day])
    cumulative: list[tuple[date, int]] = []
    total = 0
    d = first
    while d <= day:
        total += arrivals[d]
        cumulative.append((d, total))
        d += timedelta(days=1)

    crossing_rows = tabulate([f for f in today if f.checkpoint_id], ("checkpoint_id",), split=False)
    by_checkpoint: dict[str, dict[Figure, int]] = {}
    for row in crossing_rows:
        by_checkpoint.setdefault(row.get("checkpoint_id"), {})[Figure(row.get("figure"))] = row.count.people
    crossings = tuple(
        CrossingFlow(
            cp.checkpoint_id,
            f"{cp.post} ({cp.direction})",
            cp.country,
            _shown(by_checkpoint.get(cp.checkpoint_id, {}).get(Figure.CLEARED, 0), threshold),
            _shown(by_checkpoint.get(cp.checkpoint_id, {}).get(Figure.REFUSED, 0), threshold),
        )
        for cp in _checkpoints_in_order(routes)
    )

    new_holds: Counter[str] = Counter()
    counted: set[tuple[uuid.UUID, str]] = set()
    for f in today:
        if f.figure is Figure.HELD and (f.case_id, f.reason_code) not in counted:
            counted.add((f.case_id, f.reason_code))
            new_holds[f.reason_code] += f.people
    held_at_end = _on_hold_at_end(records, day, tz)
    holds = tuple(
        Hold(
            code,
            reasons.PUBLIC_REASONS.get(code, "") if code else "",
            _shown(new_holds.get(code, 0), threshold),
            _shown(held_at_end.get(code, 0), threshold),
        )
        for code in sorted(set(new_holds) | set(held_at_end))
    )
    return SituationReport(
        day=day,
        generated_at=generated_at,
        threshold=threshold,
        headlines=headlines,
        returned_women=_shown(women, threshold),
        returned_children=_shown(children, threshold),
        returned_elderly=_shown(elderly, threshold),
        returned_vulnerable=_shown(arrived.vulnerable, threshold),
        returned_to_date=_shown(total, threshold),
        cumulative_returns=tuple(cumulative),
        crossings=crossings,
        holds=holds,
        changes=tuple(c for c in changes if c.at.astimezone(tz).date() == day),
    )


def _checkpoints_in_order(routes: RouteBook) -> list[Checkpoint]:
    seen: dict[str, Checkpoint] = {}
    for route in routes.routes:
        for cp in route.checkpoints:
            seen.setdefault(cp.checkpoint_id, cp)
    return list(seen.values())


def _on_hold_at_end(records: list[StatusRecord], day: date, tz: tzinfo) -> Counter[str]:
    """People on hold, by reason, as the day ended: each case's last status up to then."""
    last: dict[uuid.UUID, StatusRecord] = {}
    for r in sorted(records, key=lambda r: r.occurred_at):
        if r.occurred_at.astimezone(tz).date() > day:
            continue
        try:
            if CaseStatus(r.status) in ANNOTATIONS:
                continue  # notes the journey, does not move the case
        except ValueError:
            continue
        last[r.case_id] = r
    held: Counter[str] = Counter()
    for r in last.values():
        if r.status == CaseStatus.ON_HOLD:
            held[r.reason_code or ""] += r.members
    return held
