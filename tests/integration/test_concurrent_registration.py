"""Registrations of the same person at the same moment (issue 9): two field offices, or an office's
import and a caseworker's form, must still flag each other, and a form sent twice at once must
still create one case."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from corridor.auth import Role
from devkit import scenario
from devkit.devstack import Stack
from services.intake.duplicates import keys_for, lock_ids

ROUNDS = 40
KEY_ROUNDS = 15
UPDATE_ROUNDS = 15


def _variants(travel_date: date, rng: random.Random) -> list[dict[str, Any]]:
    """One man four ways: in Latin and from his Cyrillic papers, on his passport or another one.
    Any two of them share the name and birth date key; some also share the document number."""
    token = scenario.unique_token().lower()
    born = date(1970, 1, 1) + timedelta(days=rng.randrange(12_000))
    passport, other = scenario.unique_number("71"), scenario.unique_number("72")
    latin = {"surname": f"Jurayev{token}", "given_names": "Bahodur"}
    cyrillic = {
        "surname": f"Dzhuraev{token}",
        "given_names": "Bakhodur",
        "surname_cyrillic": f"Джураев{token}",
        "given_names_cyrillic": "Баходур",
    }
    variants = []
    for names, number in ((latin, passport), (cyrillic, other), (latin, passport), (cyrillic, passport)):
        body = scenario.single_traveller(travel_date)
        body["members"][0] |= names | {"birth_date": born.isoformat()}
        body["members"][0]["document"]["number"] = number
        variants.append(body)
    # Otherwise the test would pass for the wrong reason: every pair must share a key.
    for a, b in itertools.combinations([v["members"][0] for v in variants], 2):
        ka, kb = (_keys(m) for m in (a, b))
        assert ka.document == kb.document or ka.names & kb.names, (a, b)
    return variants


def _keys(m: dict[str, Any]) -> Any:
    return keys_for(
        document_number=m["document"]["number"],
        document_country=m["document"]["issuing_country"],
        surname=m["surname"],
        given_names=m["given_names"],
        birth_date=date.fromisoformat(m["birth_date"]),
        surname_cyrillic=m.get("surname_cyrillic"),
        given_names_cyrillic=m.get("given_names_cyrillic"),
    )


async def _register(client: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> str:
    r = await client.post(stack.url("intake") + "/cases", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["case_id"])


async def _import(client: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> str:
    """The same registration as one row of a field office's import."""
    r = await client.post(
        stack.url("intake") + "/imports",
        params={"namespace": f"race-{uuid.uuid4().hex[:8]}"},
        json=[{k: v for k, v in body.items() if k != "registration_key"} | {"row_key": "R-1"}],
        headers=stack.headers(Role.CASEWORKER, subject="clerk@race"),
    )
    assert r.status_code == 200, r.text
    (row,) = r.json()["entries"]
    assert row["outcome"] in ("created", "flagged"), row
    return str(row["case_id"])


async def _flagged_with(client: httpx.AsyncClient, stack: Stack, case_id: str) -> set[str]:
    r = await client.get(stack.url("intake") + "/duplicate-flags", params={"case_id": case_id})
    assert r.status_code == 200, r.text
    return {c for f in r.json()["flags"] for c in (f["case_id"], f["other_case_id"])} - {case_id}


async def test_the_same_person_registered_at_the_same_moment_is_flagged_both_ways(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    rng = random.Random(9)
    missed: list[str] = []
    for n in range(ROUNDS):
        size = 2 + n % 3
        offset = rng.randrange(4)
        variants = _variants(travel_date, rng)
        bodies = [variants[(offset + i) % 4] for i in range(size)]
        # Every other round, one of them arrives through a bulk import rather than the form.
        sends = [_import if n % 2 and i == 0 else _register for i in range(size)]
        cases = await asyncio.gather(*(send(client, stack, b) for send, b in zip(sends, bodies, strict=True)))
        assert len(set(cases)) == size
        flagged = await asyncio.gather(*(_flagged_with(client, stack, c) for c in cases))
        for case, others in zip(cases, flagged, strict=True):
            if others != set(cases) - {case}:
                missed.append(f"round {n} ({size} at once): {case} flagged with {len(others)} of {size - 1}")
                break
    assert not missed, f"{len(missed)} of {ROUNDS} rounds left a pair unflagged:\n" + "\n".join(missed)


async def test_a_registration_sent_several_times_at_once_creates_one_case(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    for n in range(KEY_ROUNDS):
        body = scenario.single_traveller(travel_date, key=f"race-{uuid.uuid4()}")
        if n % 2:  # the same key for another person: the key alone decides
            bodies = [body] + [scenario.single_traveller(travel_date, key=body["registration_key"])] * 2
        else:
            bodies = [body] * (2 + n % 3)
        answers = await asyncio.gather(*(client.post(stack.url("intake") + "/cases", json=b) for b in bodies))
        assert sorted(r.status_code for r in answers) == [200] * (len(bodies) - 1) + [201], [
            (r.status_code, r.text) for r in answers
        ]
        assert [r.json()["created"] for r in answers].count(True) == 1
        assert len({r.json()["case_id"] for r in answers}) == 1


async def test_a_case_changed_into_a_person_registered_at_the_same_moment_is_flagged(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    rng = random.Random(10)
    missed = []
    for n in range(UPDATE_ROUNDS):
        case_id = await _register(client, stack, scenario.single_traveller(travel_date))
        changed, registered = _variants(travel_date, rng)[n % 2 :][:2]
        put, new_case = await asyncio.gather(
            client.put(f"{stack.url('intake')}/cases/{case_id}", json=changed),
            _register(client, stack, registered),
        )
        assert put.status_code == 200, put.text
        if await _flagged_with(client, stack, new_case) != {case_id}:
            missed.append(n)
    assert not missed, f"{len(missed)} of {UPDATE_ROUNDS} rounds unflagged: {missed}"


def test_lock_ids_are_stable_unique_and_ordered() -> None:
    born = date(1991, 5, 17)
    latin = keys_for(
        document_number="A1",
        document_country="TJK",
        surname="Jurayev",
        given_names="Bahodur",
        birth_date=born,
    )
    cyrillic = keys_for(
        document_number="a1 ",
        document_country="TJK",
        surname="Dzhuraev",
        given_names="Bakhodur",
        birth_date=born,
        surname_cyrillic="Джураев",
        given_names_cyrillic="Баходур",
    )
    ids = lock_ids([latin])
    assert ids == lock_ids([cyrillic]) == lock_ids([cyrillic, latin]) == sorted(set(ids))
    assert len(ids) == 2 and all(-(2**31) <= i < 2**31 for i in ids)
