"""Reporting's rules: how the public status stream and the cases' profiles become figures, and which
figures may be shown.

Pure functions over what the projection keeps: ``StatusRecord`` (one change on the status stream)
and ``Profile`` (a case's aggregate-safe attributes from intake's ``CaseProfiled``). Nothing here
ever sees a name, a birth date or a document: the inputs do not carry them.

A *fact* is one case reaching one figure (registered, held for a reason, cleared at a crossing...)
on one day; a table counts facts by the dimensions a report asks for, each case once per cell,
and its people by sex and age band from the case's profile. Small cells are then suppressed
(``suppress``) so that no published figure singles anyone out.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from enum import StrEnum

from contracts.intake import AgeBand
from contracts.status import CaseStatus

SEXES = ("F", "M", "X")
BANDS = tuple(AgeBand)
Cell = tuple[str, AgeBand]
"""(sex, age band): one disaggregation cell"""
CELLS: tuple[Cell, ...] = tuple((s, b) for s in SEXES for b in BANDS)


class Figure(StrEnum):
    """What a report counts: a case reaching a status (each is counted when it happens)."""

    REGISTERED = "registered"
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    HELD = "held"
    DEPARTED = "departed"
    CLEARED = "cleared"
    REFUSED = "refused"
    ARRIVED = "arrived"
    WITHDRAWN = "withdrawn"
    NO_SHOW = "no_show"


FIGURE_OF: dict[CaseStatus, Figure] = {
    CaseStatus.REGISTERED: Figure.REGISTERED,
    CaseStatus.ELIGIBLE: Figure.ELIGIBLE,
    CaseStatus.INELIGIBLE: Figure.INELIGIBLE,
    CaseStatus.ON_HOLD: Figure.HELD,
    CaseStatus.DEPARTED: Figure.DEPARTED,
    CaseStatus.EXIT_CLEARED: Figure.CLEARED,
    CaseStatus.ENTRY_CLEARED: Figure.CLEARED,
    CaseStatus.REFUSED_AT_BORDER: Figure.REFUSED,
    CaseStatus.ARRIVED: Figure.ARRIVED,
    CaseStatus.WITHDRAWN: Figure.WITHDRAWN,
    CaseStatus.NO_SHOW: Figure.NO_SHOW,
}
"""The statuses a report counts; the others (manifested, received, closed, transit incidents) are
steps no report asks for."""

FIGURE_LABELS: dict[Figure, str] = {
    Figure.REGISTERED: "Registered",
    Figure.ELIGIBLE: "Found eligible",
    Figure.INELIGIBLE: "Found ineligible",
    Figure.HELD: "Put on hold",
    Figure.DEPARTED: "Departed",
    Figure.CLEARED: "Cleared at a crossing",
    Figure.REFUSED: "Refused at a crossing",
    Figure.ARRIVED: "Arrived (returned)",
    Figure.WITHDRAWN: "Withdrew",
    Figure.NO_SHOW: "Did not show up",
}

BY_REASON = frozenset({Figure.HELD, Figure.INELIGIBLE, Figure.REFUSED, Figure.WITHDRAWN})
"""Figures counted per reason code (their status change carries one that says why)."""
AT_CROSSING = frozenset({Figure.CLEARED, Figure.REFUSED})
"""Figures counted per crossing (their status change happens at a checkpoint)."""

UNKNOWN = "unknown"
"""The route or origin of a case with no profile (yet), or an origin intake does not hold."""


@dataclass(frozen=True)
class StatusRecord:
    """One change on the public status stream, as reporting keeps it."""

    case_id: uuid.UUID
    status: str
    occurred_at: datetime
    members: int
    movement_id: str | None = None
    checkpoint_id: str | None = None
    place_name: str | None = None
    country: str | None = None
    reason_code: str | None = None


@dataclass(frozen=True)
class Member:
    sex: str
    age_band: AgeBand
    vulnerabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """A case's aggregate-safe attributes (intake's ``CaseProfiled``, the latest one)."""

    case_id: uuid.UUID
    route_id: str
    registered_on: date
    planned_travel_date: date
    origin_city: str | None
    members: tuple[Member, ...]
    erased: bool = False


@dataclass(frozen=True)
class Fact:
    """One case reaching one figure on one day, with what a report may group it by."""

    figure: Figure
    case_id: uuid.UUID
    day: date
    movement_id: str
    route_id: str
    origin: str
    checkpoint_id: str
    crossing: str
    country: str
    reason_code: str
    people: int
    cells: tuple[tuple[Cell, int], ...]
    """People by (sex, age band); empty when the profile does not describe them (``unknown``)"""
    vulnerable: int


def facts(records: Iterable[StatusRecord], profiles: dict[uuid.UUID, Profile], tz: tzinfo) -> list[Fact]:
    """Every counted status change as a fact, in stream order (by time)."""
    ordered = sorted(records, key=lambda r: r.occurred_at)
    # The movement a case travels on: its registration and decisions come before any change that
    # names it, and belong to the same journey.
    movement_of: dict[uuid.UUID, str] = {}
    for r in ordered:
        if r.movement_id:
            movement_of[r.case_id] = r.movement_id
    found = []
    for r in ordered:
        try:
            figure = FIGURE_OF[CaseStatus(r.status)]
        except (ValueError, KeyError):
            continue  # not counted, or a status added after this reader was written
        profile = profiles.get(r.case_id)
        cells: Counter[Cell] = Counter()
        vulnerable = 0
        # The profile describes the people only while it counts as many as the change does (an
        # update not read yet may have added or removed someone): else they are counted unknown.
        if profile is not None and len(profile.members) == r.members:
            for m in profile.members:
                cells[(m.sex, m.age_band)] += 1
                vulnerable += bool(m.vulnerabilities)
        found.append(
            Fact(
                figure=figure,
                case_id=r.case_id,
                day=r.occurred_at.astimezone(tz).date(),
                movement_id=r.movement_id or movement_of.get(r.case_id, ""),
                route_id=profile.route_id if profile else UNKNOWN,
                origin=(profile.origin_city or UNKNOWN) if profile else UNKNOWN,
                checkpoint_id=(r.checkpoint_id or "") if figure in AT_CROSSING else "",
                crossing=(r.place_name or "") if figure in AT_CROSSING else "",
                country=(r.country or "") if figure in AT_CROSSING else "",
                reason_code=(r.reason_code or "") if figure in BY_REASON else "",
                people=r.members,
                cells=tuple(sorted(cells.items())),
                vulnerable=vulnerable,
            )
        )
    return found


OTHER_ORIGINS = "other"


def pooled_origins(found: list[Fact], threshold: int) -> list[Fact]:
    """Cities fewer than ``threshold`` people come from are pooled as ``other``: the name of a
    small place, even with its numbers suppressed, would say that someone from there returned."""
    people: dict[str, int] = {}
    counted: set[uuid.UUID] = set()
    for f in found:
        if f.figure is Figure.REGISTERED and f.case_id not in counted:
            counted.add(f.case_id)
            people[f.origin] = people.get(f.origin, 0) + f.people
    return [
        f if f.origin == UNKNOWN or people.get(f.origin, 0) >= threshold else replace(f, origin=OTHER_ORIGINS)
        for f in found
    ]


# --- tables ----------------------------------------------------------------------------------------

Dimension = str
"""A Fact attribute a report groups by: day, movement_id, route_id, origin, checkpoint_id..."""


@dataclass
class Count:
    """A table's cell: cases and people, the people by sex and age band."""

    cases: int = 0
    people: int = 0
    cells: Counter[Cell] = field(default_factory=Counter)
    unknown: int = 0
    """People whose sex and age band the profile does not give"""
    vulnerable: int = 0

    def add(self, fact: Fact) -> None:
        self.cases += 1
        self.people += fact.people
        described = sum(n for _, n in fact.cells)
        for cell, n in fact.cells:
            self.cells[cell] += n
        self.unknown += fact.people - described
        self.vulnerable += fact.vulnerable


@dataclass(frozen=True)
class Row:
    key: tuple[tuple[Dimension, str], ...]
    count: Count

    def get(self, dimension: Dimension) -> str:
        return dict(self.key).get(dimension, "")


SPLITS = ("checkpoint_id", "crossing", "country", "reason_code")


def tabulate(found: Iterable[Fact], dimensions: Sequence[Dimension], *, split: bool = True) -> list[Row]:
    """Count ``found`` by ``dimensions`` and figure (``split``: and by crossing and reason where
    the figure has them): each case once per row, however often it reached the figure there."""
    keys = (*dimensions, "figure", *(SPLITS if split else ()))
    keys = tuple(dict.fromkeys(keys))  # a dimension asked for twice is one
    seen: set[tuple[object, ...]] = set()
    counts: dict[tuple[str, ...], Count] = defaultdict(Count)
    for f in found:
        key = tuple(str(getattr(f, k)) for k in keys)
        if (key, f.case_id) in seen:
            continue
        seen.add((key, f.case_id))
        counts[key].add(f)
    order = {figure: i for i, figure in enumerate(Figure)}
    rows = [Row(tuple(zip(keys, key, strict=True)), count) for key, count in counts.items()]
    rows.sort(
        key=lambda row: tuple(
            order[Figure(v)] if k == "figure" else v for k, v in row.key
        )  # days and names in order, figures in the order of a journey
    )
    return rows


# --- small cells -----------------------------------------------------------------------------------


Shown = int | None
"""A published number, or None where it is suppressed"""


@dataclass(frozen=True)
class ShownCount:
    """A count as it may be published: every number from 1 to threshold-1 suppressed (None)."""

    cases: Shown
    people: Shown
    cells: dict[Cell, Shown]
    unknown: Shown
    vulnerable: Shown

    @property
    def suppressed(self) -> bool:
        values = [self.cases, self.people, self.unknown, self.vulnerable, *self.cells.values()]
        return any(v is None for v in values)


def small(n: int, threshold: int) -> bool:
    """A small cell: someone counted, but fewer than ``threshold``. Zero is shown: nobody is no one."""
    return 0 < n < threshold


def suppress(count: Count, threshold: int) -> ShownCount:
    """The count as it may be published.

    Primary suppression: every number from 1 to ``threshold`` - 1. Secondary: the people total is
    shown beside its sex and age cells (and the unknown ones), so when exactly one of them is
    suppressed it could be worked out by subtraction; the smallest other non-zero one is
    suppressed with it. A row whose people total is small shows no breakdown at all.
    """

    def shown(n: int) -> Shown:
        return None if small(n, threshold) else n

    parts: dict[Cell | str, int] = {**{c: count.cells.get(c, 0) for c in CELLS}, UNKNOWN: count.unknown}
    hidden = {k for k, n in parts.items() if small(n, threshold)}
    if small(count.people, threshold):
        hidden = {k for k, n in parts.items() if n > 0}
    elif len(hidden) == 1:
        others = sorted((n, str(k)) for k, n in parts.items() if n > 0 and k not in hidden)
        if others:
            smallest = others[0][1]
            hidden |= {k for k in parts if str(k) == smallest}
    return ShownCount(
        cases=shown(count.cases),
        people=shown(count.people),
        cells={c: None if c in hidden else parts[c] for c in CELLS},
        unknown=None if UNKNOWN in hidden else count.unknown,
        vulnerable=shown(count.vulnerable),
    )


def shown_text(value: Shown, threshold: int) -> str:
    """A number for a reader: a suppressed one says what it hides."""
    return f"<{threshold}" if value is None else f"{value:,}"
