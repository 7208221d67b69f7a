import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts.envelope import CloudEvent, EnvelopeError
from contracts.status import CaseStatus, CaseStatusChanged, Place


def status_event() -> CloudEvent:
    return CloudEvent.new(
        CaseStatusChanged(
            case_id=uuid.uuid4(),
            status=CaseStatus.EXIT_CLEARED,
            occurred_at=datetime.now(UTC),
            members=3,
            place=Place(country="KAZ", name="Zhibek-Zholy", checkpoint_id="kaz-zhibek-zholy-exit"),
        ),
        source="/missions/KAZ/border_clearance",
    )


def test_binary_mode_round_trip() -> None:
    event = status_event()
    headers = event.headers()
    names = dict(headers)
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == b"org.corridor.case.status-changed.v1"
    assert names["ce_subject"] == str(event.data.case_id).encode()  # type: ignore[attr-defined]
    assert names["content-type"] == b"application/json"
    back = CloudEvent.from_record(headers, event.value())
    assert back.data == event.data and back.id == event.id and back.source == event.source


@pytest.mark.parametrize(
    ("drop", "value", "code"),
    [
        ("ce_id", None, "missing_header"),
        ("ce_type", None, "missing_header"),
        (None, b"{not json", "malformed_json"),
        (None, b'{"case_id": "nope"}', "schema_violation"),
    ],
)
def test_invalid_records_are_named(drop: str | None, value: bytes | None, code: str) -> None:
    event = status_event()
    headers = [(k, v) for k, v in event.headers() if k != drop]
    with pytest.raises(EnvelopeError) as caught:
        CloudEvent.from_record(headers, value if value is not None else event.value())
    assert caught.value.code == code


def test_unknown_type_and_specversion() -> None:
    event = status_event()
    unknown = [(k, b"org.example.other.v9" if k == "ce_type" else v) for k, v in event.headers()]
    with pytest.raises(EnvelopeError, match="unknown_type"):
        CloudEvent.from_record(unknown, event.value())
    old = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in event.headers()]
    with pytest.raises(EnvelopeError, match="unsupported_specversion"):
        CloudEvent.from_record(old, event.value())


def test_status_event_schema_has_no_personal_data_fields() -> None:
    fields = set(json.dumps(CaseStatusChanged.model_json_schema()).lower().split('"'))
    for forbidden in ("surname", "given_names", "birth_date", "document_number", "vulnerabilities"):
        assert forbidden not in fields


def test_structured_mode_attributes_must_be_strings() -> None:
    event = status_event().structured()
    assert CloudEvent.from_structured(json.dumps(event)).id == event["id"]
    with pytest.raises(EnvelopeError, match="bad_header"):
        CloudEvent.from_structured(json.dumps({**event, "specversion": 1.0}))
