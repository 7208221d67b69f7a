"""Hypothesis' share of the bad records, on the topics that take the most varied input from
outside: valid events with fields dropped or altered, and random bytes with random header sets.

Generated derandomized and without shrinking, so every run sends the same records.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from contracts import topics
from contracts.envelope import STRUCTURED_CONTENT_TYPE, CloudEvent
from contracts.intake import CaseRegistered
from tests.integration.bad_input.records import REQUIRED, Bad, Maker, decode, encoded

# Hypothesis seeds a derandomized run from the generating function's source, which calls it _h.
from tests.integration.bad_input.records import headers_with as _h

HYPOTHESIS_EXAMPLES = 50  # per fuzzed topic
FUZZED = (topics.CASES, topics.STATUS, topics.inbound_status("TJK"))  # these also get Hypothesis' records

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
_header_values = (
    st.none()
    | st.binary(max_size=24)
    | st.sampled_from([b"", b"1.0", b"0.3", b"\xff", STRUCTURED_CONTENT_TYPE.encode()])
)
_header_names = st.sampled_from([*REQUIRED, "ce_time", "content-type"])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _mutate(data: Any, path: tuple[Any, ...], drop: bool, new: Any) -> None:
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new


def fuzzed(topic: str, make: Maker) -> list[Bad]:
    """Hypothesis' records for ``topic``: valid events mutated, and random bytes and headers."""
    value, headers = encoded(*make())
    mutations = st.lists(st.tuples(st.integers(0, 10_000), st.booleans(), _json), min_size=1, max_size=3)
    mutated = st.tuples(
        st.just("mutated event"), mutations, st.lists(st.tuples(_header_names, _header_values), max_size=2)
    )
    random_bytes = st.tuples(
        st.just("random bytes"),
        st.binary(max_size=300),
        st.none() | st.dictionaries(_header_names | st.just("x"), _header_values),  # None: valid headers
    )
    found: list[Bad] = []

    @settings(
        max_examples=HYPOTHESIS_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(mutated, random_bytes))
    def collect(example: tuple[Any, ...]) -> None:
        kind, first, second = example
        if kind == "random bytes":
            if second is None:
                found.append(Bad("hypothesis: random bytes, valid headers", topic, first, _h(headers)))
            else:
                chosen = [(k, v) for k, v in second.items() if v is not None]
                found.append(Bad("hypothesis: random bytes and headers", topic, first, chosen))
            return
        data = json.loads(value)
        for index, drop, new in first:
            paths = _paths(data)
            if paths:
                _mutate(data, paths[index % len(paths)], drop, new)
        changed = _h(headers, **{name.replace("-", "__"): v for name, v in second})
        found.append(Bad(f"hypothesis: {kind}", topic, json.dumps(data).encode(), changed))

    collect()
    # A registration left valid must not land on a date another test plans a movement for.
    return [b for b in found if not _near_date(b)]


def _near_date(bad: Bad) -> bool:
    event = decode(bad)[1]
    return (
        isinstance(event, CloudEvent)
        and isinstance(event.data, CaseRegistered)
        and event.data.planned_travel_date < date(2100, 1, 1)
    )
