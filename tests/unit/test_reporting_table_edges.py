"""The tables a report publishes: rows in the order of a journey, crossings and reasons split only
when asked, people with a vulnerability summed over cases, and small cells suppressed so that no
published number (nor one worked out by subtraction) singles anyone out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.intake import AgeBand
from contracts.status import CaseStatus
from services.reporting import domain
from services.reporting.domain import Count, Figure, Member, Profile, StatusRecord

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
A, C = AgeBand.ADULT, AgeBand.CHILD


def record(case: uuid.UUID, status: CaseStatus, minutes: int, members: int = 1, **extra: str) -> StatusRecord:
    return StatusRecord(case, status.value, T0 + timedelta(minutes=minutes), members, **extra)  # type: ignore[arg-type]


def test_rows_follow_the_journey_not_the_alphabet() -> None:
    case, held, refused = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    records = [
        record(case, CaseStatus.REGISTERED, 0),
        record(case, CaseStatus.ELIGIBLE, 1),
        record(case, CaseStatus.DEPARTED, 2),
        record(case, CaseStatus.EXIT_CLEARED, 3, checkpoint_id="KAZ-ZHIBEK"),
        record(case, CaseStatus.ARRIVED, 4),
        record(held, CaseStatus.ON_HOLD, 5, reason_code="evidence_pending"),
        record(refused, CaseStatus.REFUSED_AT_BORDER, 6, checkpoint_id="UZB-OYBEK"),
    ]
    rows = domain.tabulate(domain.facts(records, {}, UTC), ("day",))
    assert [row.get("figure") for row in rows] == [
        "registered",
        "eligible",
        "held",
        "departed",
        "cleared",
        "refused",
        "arrived",
    ]


def test_a_table_not_split_counts_every_crossing_and_reason_in_one_row() -> None:
    cleared = [uuid.uuid4() for _ in range(3)]
    records = [
        record(case, CaseStatus.EXIT_CLEARED, i, checkpoint_id=post, place_name=post, country="KAZ")
        for i, (case, post) in enumerate(zip(cleared, ["A", "B", "B"], strict=True))
    ]
    found = domain.facts(records, {}, UTC)
    [row] = domain.tabulate(found, ("day",), split=False)
    assert (row.get("figure"), row.count.cases) == ("cleared", 3)
    # A table that does not group by crossing or reason names none.
    assert (row.get("checkpoint_id"), row.get("crossing"), row.get("reason_code")) == ("", "", "")
    split = domain.tabulate(found, ("day",))
    assert [(r.get("crossing"), r.count.cases) for r in split] == [("A", 1), ("B", 2)]


def test_people_with_a_vulnerability_add_up_over_the_cases_of_a_row() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    vulnerable = Member("F", A, ("disability",))
    profiles = {
        one: Profile(one, "R", T0.date(), T0.date(), None, (vulnerable, Member("M", A))),
        two: Profile(two, "R", T0.date(), T0.date(), None, (vulnerable, vulnerable, Member("F", C))),
    }
    records = [record(one, CaseStatus.REGISTERED, 0, 2), record(two, CaseStatus.REGISTERED, 1, 3)]
    [row] = domain.tabulate(domain.facts(records, profiles, UTC), ("day",))
    assert (row.count.people, row.count.vulnerable) == (5, 3)


# --- small cells -----------------------------------------------------------------------------------

FA, MA, MC = ("F", A), ("M", A), ("M", C)


def count(people: int, unknown: int = 0, **cells: int) -> Count:
    counted = Count(cases=people, people=people, unknown=unknown)
    counted.cells.update({{"FA": FA, "MA": MA, "MC": MC}[k]: n for k, n in cells.items()})
    return counted


@pytest.mark.parametrize(
    ("counted", "hidden"),
    [
        # A small total hides every part someone is in, ones included.
        (count(2, FA=1, MC=1), {FA, MC}),
        (count(4, FA=3, unknown=1), {FA, "unknown"}),
        # Unknown people are suppressed like any other small part, and not left to subtraction.
        (count(12, FA=10, unknown=2), {FA, "unknown"}),
        (count(12, FA=6, MA=5, unknown=1), {MA, "unknown"}),
        # Two small parts cannot be worked out from the total: nothing else is hidden.
        (count(14, FA=10, MA=2, MC=2), {MA, MC}),
        (count(15, FA=10, MA=5), set()),
    ],
)
def test_which_parts_of_a_count_are_suppressed(counted: Count, hidden: set[object]) -> None:
    shown = domain.suppress(counted, 5)
    suppressed: set[object] = {k for k, v in shown.cells.items() if v is None}
    if shown.unknown is None:
        suppressed.add("unknown")
    assert suppressed == hidden
    nobody = [k for k in domain.CELLS if counted.cells.get(k, 0) == 0]
    assert all(shown.cells[k] == 0 for k in nobody)  # nobody is shown as nobody, even in a small row
    if "unknown" not in hidden:
        assert shown.unknown == counted.unknown
    assert shown.suppressed == bool(hidden)


@pytest.mark.parametrize(("value", "text"), [(None, "<5"), (0, "0"), (12345, "12,345")])
def test_a_suppressed_number_says_what_it_hides(value: int | None, text: str) -> None:
    assert domain.shown_text(value, 5) == text


def test_figures_have_reader_labels() -> None:
    assert set(domain.FIGURE_LABELS) == set(Figure)
