"""Reporting's HTTP API: stable URLs a coordinator, HDX or the HXL Proxy pull reports from.

Every report is aggregates with small cells suppressed, and no personal data: operations viewers
and supervisors read them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from corridor import idempotency
from corridor.auth import Role, allow
from corridor.http import Timestamp
from services.reporting import usecases
from services.reporting.usecases import Context, Units

READING = allow(Role.OPERATIONS_VIEWER, Role.SUPERVISOR)
"""Aggregates only, never personal data: whoever watches operations."""

CSV = "text/csv; charset=utf-8"
HxlName = Literal["daily", "movements", "crossings", "origins"]


class StoredReportOut(BaseModel):
    day: date
    generated_at: Timestamp
    html: str = Field(description="Its URL")
    pdf: str = Field(description="Its URL")


class StoredReports(BaseModel):
    reports: list[StoredReportOut] = Field(description="Newest day first")


def _out(day: date, generated_at: datetime) -> StoredReportOut:
    base = f"/reports/situation/{day.isoformat()}"
    return StoredReportOut(day=day, generated_at=generated_at, html=f"{base}.html", pdf=f"{base}.pdf")


def router(units: Units, ctx: Context) -> APIRouter:
    api = APIRouter(tags=["reports"], dependencies=[Depends(READING)])

    @api.get(
        "/reports/hxl/{name}.csv",
        response_class=Response,
        responses={200: {"content": {CSV: {}}, "description": "CSV with an HXL hashtag row"}},
    )
    async def hxl_report(
        name: HxlName,
        day: Annotated[date | None, Query(alias="date", description="One day (required for daily)")] = None,
        movement_id: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        """An HXL-tagged CSV: ``daily`` (one day's figures, ``?date=``), ``movements`` (per movement),
        ``crossings`` (per day, route and crossing), ``origins`` (per origin city). Each row is one
        figure (per crossing and reason where it has them), people disaggregated by sex and age band;
        small cells are empty and the row is marked ``#meta+suppressed``."""
        async with units() as uow:
            text = await usecases.hxl_report(name, uow, ctx, day=day, movement_id=movement_id)
        suffix = f"-{day.isoformat()}" if day else ""
        return Response(
            text,
            media_type=CSV,
            headers={"Content-Disposition": f'inline; filename="corridor-{name}{suffix}.csv"'},
        )

    @api.get("/reports/situation", response_model=StoredReports)
    async def stored_reports() -> StoredReports:
        """The situation reports generated so far."""
        async with units() as uow:
            found = await uow.store.reports()
        return StoredReports(reports=[_out(d, at) for d, at in found])

    @api.get(
        "/reports/situation/{day}.pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}, "description": "One A4 page"}},
    )
    async def situation_pdf(day: date) -> Response:
        """The day's situation report as PDF: the one generated after the day ended, or made now."""
        async with units() as uow:
            report = await usecases.situation_report(day, uow, ctx)
        return Response(
            report.pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="corridor-sitrep-{day.isoformat()}.pdf"'},
        )

    @api.get("/reports/situation/{day}.html", response_class=HTMLResponse)
    async def situation_html(day: date) -> HTMLResponse:
        """The day's situation report as one HTML page (charts embedded)."""
        async with units() as uow:
            report = await usecases.situation_report(day, uow, ctx)
        return HTMLResponse(report.html)

    @api.post(
        "/reports/situation/{day}",
        response_model=StoredReportOut,
        status_code=201,
        openapi_extra=idempotency.natural(
            "The day: generating its report again replaces the stored one with the figures as they "
            "stand; a repeat after a lost answer does the same, nothing else."
        ),
    )
    async def regenerate(day: date) -> StoredReportOut:
        """Generate the day's report again from the figures as they stand now (e.g. after late
        changes reached the stream); it replaces the one stored."""
        async with units() as uow:
            report = await usecases.generate_report(day, uow, ctx)
        return _out(report.day, report.generated_at)

    return api
