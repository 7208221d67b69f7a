"""The public status stream's reasons: an enumerated code, and for each code one fixed text.

Anyone with access to ``corridor.case-status`` (every country mission, operations dashboards) reads
every reason on it, so a reason is never written for the case at hand: a writer picks a code from
``PUBLIC_REASONS`` and the text comes with it. Free text (a supervisor's override note, a mission's
report, a hold list entry, an officer's words), names, dates and medical facts stay on restricted
topics and in the service that owns them. ``CaseStatusChanged`` refuses any other code, and any
text that is not its code's text, when a writer builds one.

Readers must tolerate codes added in later minor releases (and records written before the table
existed, whose texts are free): the check applies where a change is written, not where it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Eligibility: the rule that blocks the case, where the rule's name says nothing personal, else a
# code that several causes share (a fit-to-travel check is needed only for a member flagged
# pregnant or seriously ill: its rule name alone would be a health fact).
_ELIGIBILITY = {
    "consent_recorded": "Consent to travel and to share data with the missions on the route is not recorded",
    "nationality_matches_destination": "A member's nationality does not match the route's destination",
    "document_valid_on_travel_date": "A travel document is not shown valid on the planned travel date",
    "certificate_of_return_usable": "A certificate of return cannot be used for this journey",
    "route_known": "The case's route is not configured for eligibility",
    "evidence_pending": "Evidence required for travel is not recorded yet",
    "travel_condition_not_met": "A condition for travel is not met; the host mission's caseworker has the details",
    "eligibility_decided": "Decided by eligibility; the host mission's caseworker has the details",
    "supervisor_override_eligible": "A supervisor decided the case is eligible",
    "supervisor_override_ineligible": "A supervisor decided the case is not eligible",
    "supervisor_override_pending": "A supervisor put the case on hold",
}

_TRANSPORT = {
    "withdrawn_by_applicant": "Withdrawn by the applicant before departure",
    "personal_data_erased": "Withdrawn: the personal data of the case was erased",
    "taken_off_vehicle": "Taken off the vehicle before departure: the travel date, route or number of seats changed",
    "no_show": "Not present at boarding",
    "seat_offered": "Offered a seat freed at boarding",
}

_BORDER = {
    "document_mismatch": "A travel document does not match the manifest; the family is held together",
    "held_at_border": "Held at the border post; the family is held together",
    "refused_by_officer": "Refused by the border post's officer; the family is held together",
}

# Country missions report with these codes; any other code a mission sends is shown as
# ``reported_by_mission`` (its code and words stay in intake's records of the report).
_MISSIONS = {
    "reported_by_mission": "Reported by a country mission",
    "vehicle_breakdown": "The vehicle broke down on the way",
    "road_closed": "The road is closed",
    "delayed_on_route": "Delayed on the way",
    "received_at_reception": "Received at the reception point",
    "case_closed_by_mission": "Closed by the receiving mission",
}

PUBLIC_REASONS: Mapping[str, str] = MappingProxyType(_ELIGIBILITY | _TRANSPORT | _BORDER | _MISSIONS)
"""Every reason code the public status stream may carry, and its one text."""

MISSION_REPORT = "reported_by_mission"
MISSION_CODES: frozenset[str] = frozenset(_MISSIONS)
"""The codes a mission's report keeps on the stream."""


class UnknownReason(ValueError):
    """A code the public stream does not carry, or a text that is not its code's."""


def text_of(code: str) -> str:
    """The fixed text of a public reason code; ``UnknownReason`` for any other code."""
    try:
        return PUBLIC_REASONS[code]
    except KeyError:
        raise UnknownReason(f"reason code {code!r} is not a public reason code") from None


def check(code: str | None, text: str | None) -> None:
    """Raise ``UnknownReason`` unless (code, text) may go on the public stream: no reason at all,
    or a public code with its own text."""
    if code is None:
        if text is not None:
            raise UnknownReason("a reason text needs a public reason code")
        return
    if text is not None and text != text_of(code):
        raise UnknownReason(f"the text of reason code {code!r} is fixed: {text_of(code)!r}")
    text_of(code)


def public_or(code: str | None, fallback: str) -> str | None:
    """``code`` when the public stream carries it, else ``fallback`` (a writer passing on a code it
    received, from a producer older or newer than this table)."""
    if code is None:
        return None
    return code if code in PUBLIC_REASONS else fallback


def mission_code(reported: str | None) -> str | None:
    """The public code for a mission's report: its own code when public, else the generic one
    (none when the mission gave none)."""
    if reported is None:
        return None
    return reported if reported in MISSION_CODES else MISSION_REPORT
