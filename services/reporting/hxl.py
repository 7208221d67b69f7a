"""HXL exports: the tables of ``domain.tabulate`` as CSV with a Humanitarian Exchange Language
hashtag row under the headers, so HDX and the HXL Proxy read them without a manual.

One row per figure (and crossing and reason, where the figure has them) per group; the people of
each row disaggregated by sex and age band. Suppressed numbers are left empty, and the row says so
(``#meta+suppressed``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from contracts import reasons
from contracts.intake import AgeBand
from services.reporting.domain import (
    AT_CROSSING,
    CELLS,
    FIGURE_LABELS,
    Dimension,
    Fact,
    Figure,
    Row,
    ShownCount,
    suppress,
    tabulate,
)

_BAND_TAG = {
    AgeBand.UNDER_5: "infants",
    AgeBand.CHILD: "children",
    AgeBand.ADULT: "adults",
    AgeBand.OLDER: "elderly",
}
_SEX_TAG = {"F": "f", "M": "m", "X": "x"}
_SEX_NAME = {"F": "Women and girls", "M": "Men and boys", "X": "Sex X"}

DIMENSION_COLUMNS: dict[Dimension, tuple[str, str]] = {
    "day": ("Date", "#date"),
    "movement_id": ("Movement", "#activity+code"),
    "route_id": ("Route", "#x_route+code"),
    "origin": ("Origin city", "#loc+origin+name"),
}
FIGURE_COLUMNS: tuple[tuple[str, str, Callable[[Row], str]], ...] = (
    ("Figure", "#indicator+code", lambda r: r.get("figure")),
    ("Figure name", "#indicator+name", lambda r: FIGURE_LABELS[Figure(r.get("figure"))]),
    ("Crossing", "#loc+crossing+code", lambda r: r.get("checkpoint_id")),
    ("Crossing name", "#loc+crossing+name", lambda r: r.get("crossing")),
    ("Crossing country", "#country+code", lambda r: r.get("country")),
    ("Reason", "#cause+code", lambda r: r.get("reason_code")),
    (
        "Reason text",
        "#cause+name",
        lambda r: reasons.PUBLIC_REASONS.get(r.get("reason_code"), "") if r.get("reason_code") else "",
    ),
)
COUNT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Cases (families)", "#affected+hh"),
    ("People", "#affected+total"),
    *(
        (f"{_SEX_NAME[sex]} {band.value}", f"#affected+{_SEX_TAG[sex]}+{_BAND_TAG[band]}")
        for sex, band in CELLS
    ),
    ("Sex and age unknown", "#affected+unknown"),
    ("With a vulnerability", "#affected+vulnerable"),
    ("Suppressed", "#meta+suppressed"),
)


@dataclass(frozen=True)
class Report:
    """One HXL export: what it groups by, and which figures it has."""

    name: str
    title: str
    dimensions: tuple[Dimension, ...]
    figures: frozenset[Figure] | None = None

    def columns(self) -> list[tuple[str, str]]:
        return [
            *(DIMENSION_COLUMNS[d] for d in self.dimensions),
            *((header, tag) for header, tag, _ in FIGURE_COLUMNS),
            *COUNT_COLUMNS,
        ]


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report("daily", "Figures of one day", ("day",)),
        Report("movements", "Figures per movement", ("movement_id",)),
        Report(
            "crossings", "Crossings per day, route and crossing", ("day", "route_id"), frozenset(AT_CROSSING)
        ),
        Report("origins", "Figures per origin city", ("origin",)),
    )
}


def select(found: Iterable[Fact], *, day: date | None = None, movement_id: str | None = None) -> list[Fact]:
    return [
        f
        for f in found
        if (day is None or f.day == day) and (movement_id is None or f.movement_id == movement_id)
    ]


def rows(report: Report, found: Iterable[Fact]) -> list[Row]:
    wanted = [f for f in found if report.figures is None or f.figure in report.figures]
    return tabulate(wanted, report.dimensions)


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _counts(shown: ShownCount) -> list[str]:
    return [
        _number(shown.cases),
        _number(shown.people),
        *(_number(shown.cells[c]) for c in CELLS),
        _number(shown.unknown),
        _number(shown.vulnerable),
        "yes" if shown.suppressed else "",
    ]


def to_csv(report: Report, found: Iterable[Fact], threshold: int) -> str:
    """The report as HXL CSV: headers, hashtags, one row per figure of each group."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = report.columns()
    writer.writerow([header for header, _ in columns])
    writer.writerow([tag for _, tag in columns])
    for row in rows(report, found):
        writer.writerow(
            [
                *(row.get(d) for d in report.dimensions),
                *(value(row) for _, _, value in FIGURE_COLUMNS),
                *_counts(suppress(row.count, threshold)),
            ]
        )
    return out.getvalue()
