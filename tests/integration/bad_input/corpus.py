"""The fixed corpus of bad records on every consumed topic, and the valid records behind them.

For every topic: malformed JSON, wrong schema, unknown type, each required ``ce_`` header missing,
headers that are not UTF-8, tombstones, an oversized value and one at the broker's size limit,
deep nesting, structured mode, values PostgreSQL refuses, and what the consuming domain refuses
(illegal transitions, unknown cases, unauthorised sources). Hypothesis adds its own on some
topics (``strategies``). Behind everything, on every partition, goes one valid record.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import TYPE_CHECKING, Any

from contracts import topics
from contracts.base import Event
from contracts.envelope import STRUCTURED_CONTENT_TYPE
from contracts.missions import CaseStatusReported
from tests.integration.bad_input import RECEPTION
from tests.integration.bad_input.records import (
    REQUIRED,
    SOURCE,
    Bad,
    Headers,
    Maker,
    encoded,
    headers_with,
    now,
)
from tests.integration.bad_input.strategies import FUZZED, fuzzed

if TYPE_CHECKING:
    from tests.integration.bad_input.running import Topology


def fixed_corpus(topic: str, makers: dict[str, Maker], readers: dict[str, list[str]]) -> list[Bad]:
    """What every topic gets: bad envelopes, bad values, values PostgreSQL cannot store."""
    value, headers = encoded(*makers[topic]())
    structured = {"content__type": STRUCTURED_CONTENT_TYPE.encode()}
    deep = b"[" * 100_000 + b"]" * 100_000

    def bad(what: str, value: bytes | None, headers: Headers, expect: set[str] | None = None) -> Bad:
        return Bad(what, topic, value, headers, expect=expect)

    corpus = [
        bad("malformed JSON", value[: len(value) // 2], headers_with(headers)),
        bad("value not UTF-8", b"\xff\xfe" + value, headers_with(headers)),
        bad("wrong schema", b'{"hello": "world"}', headers_with(headers)),
        bad("JSON array", b"[" + value + b"]", headers_with(headers)),
        bad("JSON number", b"42", headers_with(headers)),
        bad("JSON string", json.dumps(value.decode()).encode(), headers_with(headers)),
        bad("unknown ce_type", value, headers_with(headers, ce_type=b"org.example.teleported.v1")),
        *(bad(f"{name} missing", value, headers_with(headers, **{name: None})) for name in REQUIRED),
        bad("ce_id empty", value, headers_with(headers, ce_id=b"")),
        bad("no headers", value, []),
        bad("ce_source not UTF-8", value, headers_with(headers, ce_source=b"/missions/\xff\xfe")),
        bad("ce_type not UTF-8", value, headers_with(headers, ce_type=b"\xc3\x28")),
        bad("ce_time not RFC 3339", value, headers_with(headers, ce_time=b"yesterday")),
        bad("specversion 0.3", value, headers_with(headers, ce_specversion=b"0.3")),
        bad("tombstone", None, headers_with(headers)),
        bad("empty value", b"", headers_with(headers)),
        bad("deeply nested JSON", deep, headers_with(headers)),
        bad("structured: malformed", b'{"specversion": ', headers_with(headers, **structured)),
        bad("structured: deeply nested", deep, headers_with(headers, **structured)),
        bad(
            "structured: surrogate in type",
            json.dumps(
                {"specversion": "1.0", "id": "x", "source": SOURCE, "type": "\ud800", "data": {}}
            ).encode(),
            headers_with(headers, **structured),
        ),
        # Valid envelopes that PostgreSQL cannot store: parked at once, not retried.
        bad(
            "NUL in ce_id",
            value,
            headers_with(headers, ce_id=b"nul\x00" + uuid.uuid4().hex.encode()),
            {"dlt:invalid_value"},
        ),
        bad(
            "ce_id of 10 kB (too long to index)",
            value,
            headers_with(headers, ce_id=random.Random(topic).randbytes(5_000).hex().encode()),
            {"dlt:invalid_value"},
        ),
    ]
    other = next((t for t in readers if set(readers[t]).isdisjoint(readers[topic])), None)
    if other is not None:
        foreign, foreign_source = makers[other]()
        other_value, other_headers = encoded(foreign, foreign_source)
        corpus.append(
            Bad(
                "event of another topic",
                topic,
                other_value,
                headers_with(other_headers),
                foreign_type=type(foreign).__name__,
            )
        )
    if topic in FUZZED:
        padded = json.dumps({**json.loads(value), "case_id": None, "padding": "p" * 900_000}).encode()
        corpus += [
            bad("oversized value (900 kB), invalid", padded, headers_with(headers)),
            # The broker takes it, but its dead letter (with the dlt_* headers) would not fit.
            bad("value at the broker's size limit", b"{" + b" " * 1_048_000 + b"}", headers_with(headers)),
        ]
    return corpus


def domain_corpus(topic: str, make: Maker, terminal: uuid.UUID, arrived: list[uuid.UUID]) -> list[Bad]:
    """Valid envelopes with content the consumer's domain or database refuses."""
    value, headers = encoded(*make())
    data = json.loads(value)

    def bad(what: str, changes: dict[str, Any], expect: set[str], **header: bytes) -> Bad:
        return Bad(
            what,
            topic,
            json.dumps({**data, **changes}).encode(),
            headers_with(headers, **header),
            expect=expect,
        )

    if topic == topics.STATUS:
        return [
            # A reader that keeps the text refuses it (PostgreSQL text holds no NUL); reporting keeps
            # only the reason code and applies it.
            bad("NUL in reason", {"reason": "a\x00b"}, {"applied", "dlt:invalid_value"}),
            bad(
                "occurred_at out of range",
                {"occurred_at": "0001-01-01T00:00:00+14:00"},
                {"dlt:invalid_value"},
            ),
            bad("members 2**70", {"members": 2**70}, {"applied", "dlt:invalid_value"}),
        ]
    if topic == topics.CASES:
        return [
            bad(
                "NUL in a name",
                {"members": [{**data["members"][0], "given_names": "a\x00b"}]},
                {"applied", "dlt:invalid_value"},
            ),
            bad(
                "registered_at out of range",
                {"registered_at": "0001-01-01T00:00:00+14:00"},
                {"applied", "dlt:invalid_value"},
            ),
        ]
    if topic == topics.inbound_status("KAZ"):
        # The origin's mission may report an incident in transit, not after the case arrived.
        return [
            bad(
                "illegal transition: incident after arrival",
                {"case_id": str(arrived[0]), "status": "transit_incident"},
                {"dlt:illegal_transition"},
                ce_source=b"/missions/KAZ/operations",
            )
        ]
    if topic == topics.inbound_status("UZB"):
        # A transit mission may not report the destination's "received"; nor speak for another.
        return [
            bad("unauthorised source", {"case_id": str(arrived[0])}, {"dlt:unauthorised_source"}),
            bad(
                "another mission's source", {}, {"dlt:source_mismatch"}, ce_source=b"/missions/TJK/reception"
            ),
        ]
    if topic == topics.inbound_status("TJK"):
        later = bad(
            "illegal transition: closed before received (retried)",
            {"case_id": str(arrived[0]), "status": "closed"},
            {"dlt:illegal_transition"},
        )
        # Possibly only the stream lagging, so retried with backoff before it is parked; on the
        # partition of this case's valid report, so that the report comes after it.
        later.partition = 0
        return [
            bad("unknown case", {"case_id": str(uuid.uuid4())}, {"dlt:unknown_case"}),
            bad(
                "another mission's source", {}, {"dlt:source_mismatch"}, ce_source=b"/missions/UZB/reception"
            ),
            bad(
                "illegal transition: case withdrawn",
                {"case_id": str(terminal)},
                {"dlt:illegal_transition"},
            ),
            later,
        ]
    member = topics.family_member(topic)
    if member is not None and member[0].owner_writes and member[0].per == "checkpoint":
        # A post's own topic carrying another's claims: forged or misrouted, refused by every reader.
        return [
            bad(
                "another country's source",
                {},
                {"dlt:source_mismatch"},
                ce_source=b"/missions/AFG/border_clearance",
            ),
            bad("another checkpoint", {"checkpoint_id": "fuzz-checkpoint"}, {"dlt:source_mismatch"}),
        ]
    return []


def bad_records(
    topology: Topology,
    makers: dict[str, Maker],
    terminal: uuid.UUID,
    arrived: list[uuid.UUID],
    partitions: int,
) -> list[Bad]:
    """Every topic's bad records (the fixed corpus, the domain's, Hypothesis' where it fuzzes),
    spread over the partitions, some without a key."""
    records: list[Bad] = []
    for topic, make in makers.items():
        corpus = fixed_corpus(topic, makers, topology.readers) + domain_corpus(topic, make, terminal, arrived)
        if topic in FUZZED:
            corpus += fuzzed(topic, make)
        for i, record in enumerate(corpus):
            if record.partition is None:
                record.partition = i % partitions
            if i % 7 == 3 and record.value is not None:  # a record needs a key or a value
                record.key = None
        records += corpus
    return records


def sentinels(makers: dict[str, Maker], arrived: list[uuid.UUID], partitions: int) -> list[Bad]:
    """Behind everything, on every partition of every topic, one valid record to be applied (on a
    topic this test knows no event of, the groups' committed offsets show they got past it all)."""
    records: list[Bad] = []
    for topic, make in makers.items():
        if type(make()[0]) not in topics.events_on(topic):
            continue
        if topic in (topics.inbound_status("KAZ"), topics.inbound_status("UZB")):
            continue  # the origin's and a transit mission's reports of this test's cases: all refused
        for p in range(partitions):
            if topic == topics.inbound_status("TJK"):  # the reception of an arrived case: applied
                event: Event = CaseStatusReported.model_validate(
                    {"case_id": str(arrived[p]), "status": "received", "occurred_at": now().isoformat()}
                )
                value, headers = encoded(event, RECEPTION)
            else:
                value, headers = encoded(*make())
            records.append(
                Bad("valid record behind", topic, value, headers_with(headers), partition=p, sentinel=True)
            )
    return records
