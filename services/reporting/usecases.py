"""What reporting does: keep the projection (every use case for an event records what it says), and
answer reports from it (HXL exports, the daily situation report).

Reporting reads three things and nothing else: the public status stream, intake's case profiles
(aggregate-safe attributes) and the crossing requirements. It publishes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from contracts.base import Event
from contracts.border import CrossingRequirementLifted, CrossingRequirementPublished
from contracts.envelope import CloudEvent
from contracts.intake import CaseProfiled
from contracts.routes import RouteBook
from contracts.status import CaseStatusChanged
from corridor.errors import Invalid, NotFound
from services.reporting import domain, hxl, render, sitrep
from services.reporting.domain import Member, Profile, StatusRecord
from services.reporting.sitrep import RequirementChange
from services.reporting.store import StoredReport


@dataclass(frozen=True)
class Context:
    routes: RouteBook
    threshold: int
    """Numbers from 1 to threshold - 1 are suppressed in every report"""
    tz: tzinfo
    """Where a day begins and ends, for every report"""


class Store(Protocol):
    async def add_statuses(self, records: Sequence[StatusRecord]) -> None: ...
    async def save_profiles(self, profiles: Sequence[tuple[Profile, datetime]]) -> None: ...
    async def add_requirement_change(self, c: RequirementChange) -> None: ...
    async def status_records(self, until: datetime | None = None) -> list[StatusRecord]: ...
    async def profiles(self) -> dict[Any, Profile]: ...
    async def requirement_changes(self) -> list[RequirementChange]: ...
    async def save_report(self, report: StoredReport) -> None: ...
    async def report(self, day: date) -> StoredReport | None: ...
    async def reports(self) -> list[tuple[date, datetime]]: ...


class Unit(Protocol):
    @property
    def store(self) -> Store: ...

    def now(self) -> datetime: ...


Units = Callable[[], AbstractAsyncContextManager[Unit]]


# --- events ----------------------------------------------------------------------------------------


async def on_status_changes(events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> None:
    """Status changes read from the stream, kept in their order (applied in sets: one statement for
    any number of them)."""
    records = []
    for envelope in events:
        event = envelope.data
        assert isinstance(event, CaseStatusChanged)
        place = event.place
        records.append(
            StatusRecord(
                case_id=event.case_id,
                status=event.status.value,
                occurred_at=event.occurred_at,
                members=event.members,
                movement_id=event.movement_id,
                checkpoint_id=place.checkpoint_id if place else None,
                place_name=place.name if place else None,
                country=place.country if place else None,
                reason_code=event.reason_code,
            )
        )
    await uow.store.add_statuses(records)


async def on_case_profiles(events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> None:
    """Keep each case's newest profile (intake.case-profiles: one a case at least; one read late
    changes nothing), for a run of profiles in one statement."""
    newest: dict[uuid.UUID, tuple[Profile, datetime]] = {}
    for e in events:
        event = e.data
        assert isinstance(event, CaseProfiled), e.type  # IN_SETS
        kept = newest.get(event.case_id)
        if kept is not None and kept[1] > event.profiled_at:
            continue  # as the store keeps the newer: one read after it at the same time replaces it
        newest[event.case_id] = (
            Profile(
                case_id=event.case_id,
                route_id=event.route_id,
                registered_on=event.registered_on,
                planned_travel_date=event.planned_travel_date,
                origin_city=event.origin_city,
                members=tuple(
                    Member(m.sex, m.age_band, tuple(v.value for v in m.vulnerabilities))
                    for m in event.members
                ),
                erased=event.erased,
            ),
            event.profiled_at,
        )
    await uow.store.save_profiles(list(newest.values()))


async def on_requirement_published(event: CrossingRequirementPublished, uow: Unit, ctx: Context) -> None:
    await uow.store.add_requirement_change(
        RequirementChange(
            requirement_id=event.requirement_id,
            checkpoint_id=event.checkpoint_id,
            change="published",
            at=event.published_at,
            code=event.code,
            description=event.description,
            effective_from=event.effective_from,
        )
    )


async def on_requirement_lifted(event: CrossingRequirementLifted, uow: Unit, ctx: Context) -> None:
    await uow.store.add_requirement_change(
        RequirementChange(event.requirement_id, event.checkpoint_id, "lifted", event.lifted_at)
    )


class EventUseCase(Protocol):
    def __call__(self, event: Any, uow: Any, ctx: Context) -> Awaitable[None]: ...


HANDLERS: Mapping[type[Event], EventUseCase] = {
    CrossingRequirementPublished: on_requirement_published,
    CrossingRequirementLifted: on_requirement_lifted,
}
"""The use case for each event reporting applies one at a time (border.requirements.*)."""


class SetUseCase(Protocol):
    def __call__(self, events: Sequence[CloudEvent], uow: Any, ctx: Context) -> Awaitable[None]: ...


IN_SETS: Mapping[type[Event], SetUseCase] = {
    CaseStatusChanged: on_status_changes,
    CaseProfiled: on_case_profiles,
}
"""The events reporting applies many at once (corridor.case-status, most of what it reads, and
intake.case-profiles)."""


# --- HXL exports -----------------------------------------------------------------------------------


async def hxl_report(
    name: str, uow: Unit, ctx: Context, *, day: date | None = None, movement_id: str | None = None
) -> str:
    report = hxl.REPORTS.get(name)
    if report is None:
        raise NotFound(f"no HXL report {name!r}; there are: {', '.join(hxl.REPORTS)}")
    if name == "daily" and day is None:
        raise Invalid(("query", "date"), "the daily report is of one day: give ?date=YYYY-MM-DD")
    found = domain.facts(await uow.store.status_records(), await uow.store.profiles(), ctx.tz)
    # Over the whole operation, whatever the report selects: a city is named or pooled everywhere.
    found = domain.pooled_origins(found, ctx.threshold)
    return hxl.to_csv(report, hxl.select(found, day=day, movement_id=movement_id), ctx.threshold)


# --- the daily situation report --------------------------------------------------------------------


def day_end(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


async def generate_report(day: date, uow: Unit, ctx: Context) -> StoredReport:
    """Build, draw and store the day's report from the projection as it stands now."""
    now = uow.now()
    if day > now.astimezone(ctx.tz).date():
        raise Invalid(("path", "day"), "a situation report is of a day that has begun")
    records = await uow.store.status_records(until=day_end(day, ctx.tz))
    found = domain.facts(records, await uow.store.profiles(), ctx.tz)
    content = sitrep.build(
        day,
        found,
        records,
        await uow.store.requirement_changes(),
        ctx.routes,
        threshold=ctx.threshold,
        tz=ctx.tz,
        generated_at=now.astimezone(ctx.tz),
    )
    # Drawing takes a CPU for a moment: off the event loop, so consumers and requests go on.
    html, pdf = await asyncio.to_thread(_draw, content)
    stored = StoredReport(day=day, generated_at=now, threshold=ctx.threshold, html=html, pdf=pdf)
    await uow.store.save_report(stored)
    return stored


def _draw(content: sitrep.SituationReport) -> tuple[str, bytes]:
    drawn = render.charts(content)
    return render.to_html(content, drawn), render.to_pdf(content, drawn)


async def situation_report(day: date, uow: Unit, ctx: Context) -> StoredReport:
    """The day's report: the one stored if it was generated after the day ended (what was sent
    stays what it was), else generated now."""
    stored = await uow.store.report(day)
    if stored is not None and stored.generated_at >= day_end(day, ctx.tz):
        return stored
    return await generate_report(day, uow, ctx)


async def report_previous_day(units: Units, ctx: Context) -> date | None:
    """The periodic job: once the day is over, its report is generated and stored (once)."""
    async with units() as uow:
        yesterday = uow.now().astimezone(ctx.tz).date() - timedelta(days=1)
        stored = await uow.store.report(yesterday)
        if stored is not None and stored.generated_at >= day_end(yesterday, ctx.tz):
            return None
        await generate_report(yesterday, uow, ctx)
        return yesterday
