"""The bulk import's file format and its report: the registration forms field offices collect
offline, thousands at a time.

One *row* of the import is one case (one person, or a family that travels together). Each row
carries a ``row_key`` chosen by the office; the import registers it under the registration key
``bulk:<namespace>:<row_key>``, where the namespace names the office or batch (so two offices'
row keys never collide).

Every row gets one outcome in the report:

``created``   registered; ``case_id`` is the new case.
``flagged``   registered, and it may repeat a case already registered (or an earlier row of the
              same file): ``flags`` name the other case, for a caseworker to resolve.
``exists``    its key was taken by a registration whose answer the import does not know (one
              sent to ``POST /cases`` with that ``registration_key``, or imported before imports
              kept their answers); ``case_id`` is that case.
``rejected``  not registered; ``reasons`` say why, each naming its field (``members.1.nationality``)
              and, for CSV, the file line and column.
``failed``    not registered because the service had a problem (database unavailable): import
              the same file again to retry, nothing is registered twice.

A row's problem never stops the import of the others.

Sending rows again (a lost answer, a re-run of the file) is safe and answers what the first
import answered: a row whose key was imported before creates nothing and is reported with the
first import's outcome, ``case_id`` and ``flags`` (``created`` or ``flagged``, with the same flag
ids and other cases, even if a caseworker has resolved them since), and ``repeated: true``; every
other entry says ``repeated: false``, and the report's ``repeated`` counts the repeats. The key
decides, as a registration key does for ``POST /cases``: a row sent again with different content
is answered the first import's answer and changes nothing (change a case with ``PUT
/cases/{case_id}``). A row ``rejected`` or ``failed`` the first time left nothing behind and is
registered afresh. Once a case's personal data is erased its key is forgotten with it: the row
sent again registers a new case.

JSON format
-----------
A list of registration objects as ``POST /cases`` takes them, each with a ``row_key`` (string,
at most 128 characters) and without ``registration_key``::

    [{"row_key": "KRG-0001", "route_id": "kaz-uzb-tjk", "planned_travel_date": "2030-06-15",
      "consent": {"given": true, "kind": "explicit", "scope": ["UZB", "TJK"]},
      "members": [{"role": "principal", "given_names": "Murod", "surname": "Rahimov", ...}]}]

CSV format
----------
UTF-8 (a byte-order mark is allowed), a header row, then **one row per person**. The rows of a
case share its ``row_key`` (they need not be adjacent, but keep them together for the reader).
The separator is a comma; a header written with ``;`` or tabs (Excel in some locales) is read
with that separator. Header names are case-insensitive; an unknown or repeated column, or a
missing required one (*), rejects the whole file. Empty cells are absent values.

Case columns (give them on the first row of the case; later rows may repeat them or leave them
empty, but may not contradict them):

==========================  ===================================================================
row_key *                   the office's key of the case
route_id *                  e.g. ``kaz-uzb-tjk``
planned_travel_date *       ``YYYY-MM-DD``
consent_given *             ``true`` / ``false`` (also yes/no, 1/0)
consent_kind                ``explicit`` (default) or ``proxy``
consent_scope               missions personal data may go to, ``;``-separated: ``UZB;TJK``
proxy_name, proxy_reason    for proxy consent: who gave it and why
==========================  ===================================================================

Person columns:

==========================  ===================================================================
role *                      ``principal`` (exactly one per case), spouse, child, parent, sibling,
                            relative
given_names *, surname *    as in the travel document, Latin script
given_names_cyrillic,       as in Cyrillic papers (used to recognise the same person registered
surname_cyrillic            twice in either script)
birth_date *                ``YYYY-MM-DD``
sex *                       M, F or X
nationality *               ISO 3166 alpha-3, e.g. ``TJK``
phone, current_city         optional
vulnerabilities             ``;``-separated: unaccompanied_minor, pregnant, elderly, disability,
                            serious_illness, single_parent, survivor_of_trafficking_or_violence
needs_escort                ``true`` / ``false`` (default false)
document_type *             ``passport`` or ``certificate_of_return``
document_number *           upper-case letters and digits
document_issuing_country *  alpha-3
document_issued_on          ``YYYY-MM-DD``; required for a certificate of return
document_expires_on *       ``YYYY-MM-DD``
document_mrz                a passport's machine-readable zone, both lines (88 characters)
proof_type, proof_number,   optional proof of citizenship (``internal_passport`` or
proof_issuing_country       ``birth_certificate``), e.g. for a child on a certificate of return
==========================  ===================================================================

``docs/bulk-import-sample.csv`` is a sample: a family of three and two single travellers.

Over HTTP: ``POST /imports?namespace=NS`` with ``Content-Type: text/csv`` or
``application/json`` and a caseworker's bearer token. From a file: ``python -m services.intake.bulk
FILE --namespace NS --url http://intake:8001 --token $TOKEN`` sends the file in chunks and writes
the whole report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ROW_KEY_MAX = 128
MAX_BYTES = 20 * 1024 * 1024
Outcome = Literal["created", "flagged", "exists", "rejected", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("created", "flagged", "exists", "rejected", "failed")

CASE_COLUMNS = (
    "route_id",
    "planned_travel_date",
    "consent_given",
    "consent_kind",
    "consent_scope",
    "proxy_name",
    "proxy_reason",
)
PERSON_COLUMNS = (
    "role",
    "given_names",
    "surname",
    "given_names_cyrillic",
    "surname_cyrillic",
    "birth_date",
    "sex",
    "nationality",
    "phone",
    "current_city",
    "vulnerabilities",
    "needs_escort",
    "document_type",
    "document_number",
    "document_issuing_country",
    "document_issued_on",
    "document_expires_on",
    "document_mrz",
    "proof_type",
    "proof_number",
    "proof_issuing_country",
)
COLUMNS = ("row_key", *CASE_COLUMNS, *PERSON_COLUMNS)
REQUIRED_COLUMNS = frozenset(
    {
        "row_key",
        "route_id",
        "planned_travel_date",
        "consent_given",
        "role",
        "given_names",
        "surname",
        "birth_date",
        "sex",
        "nationality",
        "document_type",
        "document_number",
        "document_issuing_country",
        "document_expires_on",
    }
)
CONSENT_COLUMNS = {
    "consent_given": "given",
    "consent_kind": "kind",
    "consent_scope": "scope",
    "proxy_name": "proxy_name",
    "proxy_reason": "proxy_reason",
}
PERSON_PLAIN_COLUMNS = (
    "role",
    "given_names",
    "surname",
    "given_names_cyrillic",
    "surname_cyrillic",
    "birth_date",
    "sex",
    "nationality",
    "phone",
    "current_city",
    "needs_escort",
)


class FileRejected(ValueError):
    """The file as a whole cannot be read (400), or is too large (413): nothing of it is imported."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


# --- rows ----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One case as read from the file, before validation."""

    row_key: str | None
    body: dict[str, Any] | None
    item: int | None = None
    """JSON: the position in the list, from 0."""
    lines: list[int] = field(default_factory=list)
    """CSV: the file line of each member, in member order."""
    value_lines: dict[str, int] = field(default_factory=dict)
    """CSV: the line each case value was read from."""
    problems: list[dict[str, Any]] = field(default_factory=list)

    def where(self) -> dict[str, Any]:
        return {"lines": self.lines} if self.lines else {"item": self.item}

    def annotate(self, reasons: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the CSV line and column a reason is about, where there is one."""
        out = []
        for reason in reasons:
            reason = dict(reason)
            if self.lines and "line" not in reason:
                member, column = csv_column(reason.get("field") or "")
                if member is not None and member < len(self.lines):
                    reason["line"] = self.lines[member]
                elif column in self.value_lines:
                    reason["line"] = self.value_lines[column]
                else:
                    reason["line"] = self.lines[0]
                if column is not None:
                    reason["column"] = column
            out.append(reason)
        return out

    def as_item(self) -> dict[str, Any]:
        """The row as a JSON import item."""
        assert self.body is not None
        return {"row_key": self.row_key, **self.body}


def csv_column(field_path: str) -> tuple[int | None, str | None]:
    """The member index and the CSV column a field path (``members.1.document.issued_on``) names."""
    parts = field_path.split(".") if field_path else []
    if len(parts) >= 3 and parts[0] == "members" and parts[1].isdigit():
        member, rest = int(parts[1]), parts[2:]
        if rest[0] == "document" and len(rest) > 1:
            column: str | None = f"document_{rest[1]}"
        elif rest[0] == "proof_of_citizenship" and len(rest) > 1:
            column = f"proof_{rest[1]}"
        else:
            column = rest[0]
        return member, column if column in PERSON_COLUMNS else None
    if parts[:1] == ["consent"] and len(parts) > 1:
        return None, {v: k for k, v in CONSENT_COLUMNS.items()}.get(parts[1])
    if parts and parts[0] in ("route_id", "planned_travel_date", "row_key"):
        return None, parts[0]
    return None, None


def reason(loc: Sequence[Any], msg: str) -> dict[str, Any]:
    return {"field": ".".join(str(p) for p in loc), "msg": msg}


def registration_key(namespace: str, row_key: str) -> str:
    return f"bulk:{namespace}:{row_key}"


# --- the report ---------------------------------------------------------------------------------


def entry(row: Row, outcome: Outcome, **details: Any) -> dict[str, Any]:
    return {
        "row_key": row.row_key,
        "outcome": outcome,
        "case_id": details.get("case_id"),
        "reasons": details.get("reasons", []),
        "flags": details.get("flags", []),
        "repeated": details.get("repeated", False),
        **row.where(),
    }


def repeats(entries: Iterable[dict[str, Any]]) -> int:
    """Rows answered as an earlier import of their key answered (``repeated``)."""
    return sum(1 for e in entries if e.get("repeated"))


def counts(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for e in entries:
        totals[e["outcome"]] += 1
    return totals
