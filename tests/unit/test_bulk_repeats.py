"""A bulk import's row sent again (a lost answer, the same file re-run) is answered what its first
import answered, marked ``repeated``, and registers nothing: the import's use cases
(``usecases.import_case`` row by row, ``usecases.import_cases`` in chunks, ``answers_before``)
on the fake store, and the report's entries (``importer._entry``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts.intake import ErasureBasis
from contracts.status import CaseStatus
from services.intake import bulk, usecases
from services.intake.bulk.importer import _entry
from services.intake.domain import (
    EraseCase,
    FlagStatus,
    RegisterCase,
    RegistrationRejected,
    ResolveDuplicate,
    ResolveFlag,
)
from services.intake.store import RaisedFlag
from tests.unit.intake_doubles import (
    CTX,
    KARIMOVA,
    NAZAROV,
    NAZAROV_IN_CYRILLIC,
    NOW,
    FakeIntakeStore,
    person,
    prepared,
    registration,
    unit,
)


def _rows() -> list[RegisterCase]:
    """A man, the same man in Cyrillic (flagged), a row the checks reject, a woman, a family whose
    spouse is that woman by her passport (flagged)."""
    return [
        registration(NAZAROV, key="r0"),
        registration(NAZAROV_IN_CYRILLIC, key="r1"),
        registration(NAZAROV, key="r2", route_id="kaz-nowhere"),
        registration(KARIMOVA, key="r3"),
        registration(
            person("principal", "Rustam", "Aliev", "1980-01-01", "402000001"),
            person("spouse", "Dilnoza", "Alieva", "1959-01-01", "400998877"),
            key="r4",
        ),
    ]


async def _import(store: FakeIntakeStore, rows: list[RegisterCase], size: int) -> list[Any]:
    """Each row's registration (None: rejected), row by row (``size`` 0) or in chunks of ``size``."""
    answers: list[Any] = []
    if size == 0:
        for command in rows:
            try:
                answers.append(await usecases.import_case(command, unit(store), CTX, now=NOW))
            except RegistrationRejected:
                answers.append(None)
        return answers
    for start in range(0, len(rows), size):
        ready = prepared(rows[start : start + size])
        done = iter(await usecases.import_cases([n for n in ready if n], unit(store), now=NOW))
        answers += [next(done) if n else None for n in ready]
    return answers


def _written(store: FakeIntakeStore) -> tuple[int, ...]:
    return len(store.cases), len(store.persons), len(store.keys), len(store.flags), len(store.answers)


@pytest.mark.parametrize("size", [0, 1, 2, 5])
async def test_a_row_sent_again_is_answered_what_its_first_import_answered(size: int) -> None:
    store = FakeIntakeStore()
    rows = _rows()
    first = await _import(store, rows, size)
    assert [(a.created, len(a.duplicate_flags), a.repeated) if a else None for a in first] == [
        (True, 0, False),
        (True, 1, False),
        None,
        (True, 0, False),
        (True, 1, False),
    ]
    written = _written(store)
    # A caseworker resolves a flag meanwhile: the answer named it, and still does.
    flag = first[1].duplicate_flags[0].flag_id
    decision = ResolveDuplicate(decision="not_duplicate", note="two people")
    await usecases.resolve_duplicate_flag(ResolveFlag(flag, decision, "caseworker"), unit(store))
    assert store.flags[0].status is FlagStatus.NOT_DUPLICATE

    uow = unit(store)
    again = await _import(store, rows, size)
    expected = [None if a is None else _as_repeat(a) for a in first]
    assert again == expected
    # The import's first read (every key at once) answers the same.
    keys = [r.registration_key for r in rows if r.registration_key]
    before = await usecases.answers_before(keys, unit(store), for_import=True)
    assert [before.get(k) for k in keys] == expected
    assert _written(store) == written and uow.published == []


async def test_a_row_sent_again_with_other_content_is_answered_the_first_answer() -> None:
    """As ``POST /cases`` with a registration key: the key decides, the first registration stands."""
    store = FakeIntakeStore()
    first = await _import(store, [registration(NAZAROV, key="r0")], 0)
    written = _written(store)
    other = registration(KARIMOVA, key="r0")
    for size in (0, 1):
        assert await _import(store, [other], size) == [_as_repeat(first[0])]
    assert _written(store) == written
    assert await usecases.register_case(other, unit(store), CTX) == usecases.Registration(
        first[0].case_id, created=False
    )


async def test_a_key_registered_over_post_cases_is_answered_exists() -> None:
    """``POST /cases`` keeps its own answer, but the import never answered the key."""
    store = FakeIntakeStore()
    done = await usecases.register_or_repeat(registration(NAZAROV, key="bulk:ns:r0"), unit(store), CTX)
    assert store.answers == {done.case_id: ([], False)}
    for size in (0, 1):
        [again] = await _import(store, [registration(NAZAROV, key="bulk:ns:r0")], size)
        assert again == usecases.Registration(done.case_id, created=False, repeated=True)
        assert _entry(bulk.Row("r0", {}, item=0), again) == bulk.entry(
            bulk.Row("r0", {}, item=0), "exists", case_id=str(done.case_id), repeated=True
        )


async def test_an_erased_case_s_row_is_registered_afresh() -> None:
    """The erasure clears the case's key and the answer kept with it."""
    store = FakeIntakeStore()
    [first] = await _import(store, [registration(NAZAROV, key="r0")], 1)
    store.cases[first.case_id].status = CaseStatus.WITHDRAWN
    await usecases.erase_personal_data(
        EraseCase(first.case_id, ErasureBasis.DATA_SUBJECT_REQUEST, "supervisor"), unit(store)
    )
    assert store.answers == {}
    [again] = await _import(store, [registration(NAZAROV, key="r0")], 1)
    assert again.created and not again.repeated and again.case_id != first.case_id


async def test_post_cases_repeating_an_imported_key_is_answered_the_import_s_answer() -> None:
    store = FakeIntakeStore()
    [_, first] = await _import(
        store, [registration(NAZAROV, key="r0"), registration(NAZAROV_IN_CYRILLIC, key="r1")], 1
    )
    again = await usecases.register_or_repeat(registration(NAZAROV_IN_CYRILLIC, key="r1"), unit(store), CTX)
    assert again == _as_repeat(first) and len(again.duplicate_flags) == 1


def test_a_repeat_s_entry_is_the_first_one_s_apart_from_its_marker() -> None:
    row = bulk.Row("KRG-1", {}, lines=[2, 3])
    flagged = usecases.Registration(
        uuid.uuid4(), True, [RaisedFlag(7, uuid.uuid4(), uuid.uuid4(), "document")]
    )
    entries = [_entry(row, flagged), _entry(row, _as_repeat(flagged))]
    assert entries[0]["outcome"] == "flagged" and entries[0]["repeated"] is False
    assert entries[1] == {**entries[0], "repeated": True}
    created = usecases.Registration(uuid.uuid4(), True)
    assert _entry(row, _as_repeat(created)) == {**_entry(row, created), "repeated": True}
    assert bulk.repeats(entries) == 1
    # The report's schema only grew: a report without the marker still reads.
    old = {k: v for k, v in entries[0].items() if k != "repeated"}
    assert bulk.EntryOut.model_validate(old).repeated is False


def _as_repeat(first: usecases.Registration) -> usecases.Registration:
    return usecases.Registration(first.case_id, first.created, first.duplicate_flags, repeated=True)
