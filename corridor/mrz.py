"""ICAO Doc 9303 machine-readable zones: TD3 (passports, 2 x 44) and TD1 (cards, 3 x 30).

Every check digit is verified; an error names the field whose check digit fails, so an officer or
caseworker knows which part was misread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

_WEIGHTS = (7, 3, 1)


class MRZError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def char_value(ch: str) -> int:
    # Not str.isdigit(): it also holds for other scripts' digits and for superscripts, which are
    # no MRZ characters (and int() refuses some of them with a plain ValueError).
    if "0" <= ch <= "9":
        return int(ch)
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    if ch == "<":
        return 0
    raise MRZError("mrz", f"character {ch!r} is not allowed in a machine-readable zone")


def check_digit(data: str) -> int:
    """Weights 7, 3, 1 repeating; digits as values, A-Z as 10-35, '<' as 0; sum mod 10."""
    return sum(char_value(ch) * _WEIGHTS[i % 3] for i, ch in enumerate(data)) % 10


@dataclass(frozen=True)
class MachineReadableZone:
    document_type: str
    issuing_country: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: date
    sex: str
    expiry_date: date
    optional_data: str


def _verify(field: str, data: str, digit: str, *, may_be_filler: bool = False) -> None:
    # '<' stands for a check digit only over an empty optional-data field (Doc 9303 Part 4).
    if digit == "<" and may_be_filler and set(data) == {"<"}:
        return
    if not digit.isdigit():
        raise MRZError(field, f"check digit {digit!r} is not a digit")
    expected = check_digit(data)
    if int(digit) != expected:
        raise MRZError(field, f"check digit is {digit}, expected {expected}")


def _letters(field: str, value: str) -> None:
    letters = value.rstrip("<")
    if not letters or any(not "A" <= ch <= "Z" for ch in letters):
        raise MRZError(field, f"{value!r} is not a three-letter country code")


def _padded(field: str, value: str) -> None:
    """Alphanumeric data, then fillers: a filler inside the data is a misread."""
    stripped = value.rstrip("<")
    if not stripped and field == "document_number":
        raise MRZError(field, "is empty")
    if "<" in stripped:
        raise MRZError(field, f"{value!r} has a filler inside the data")


def _date(field: str, yymmdd: str, *, future: bool, today: date) -> date:
    if not yymmdd.isdigit():
        raise MRZError(field, f"{yymmdd!r} is not a YYMMDD date")
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    # Two-digit years: expiry dates lie in this century's window ahead, birth dates not after today
    # (a day later this year is a hundred years back, not a birth still to come).
    century = today.year // 100 * 100
    year = century + yy
    if future and year < today.year - 50:
        year += 100
    if not future and (year, mm, dd) > (today.year, today.month, today.day):
        year -= 100
    try:
        return date(year, mm, dd)
    except ValueError as exc:
        raise MRZError(field, f"{yymmdd} is not a calendar date") from exc


def _names(field: str) -> tuple[str, str]:
    surname, _, given = field.partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def parse(mrz: str, *, today: date | None = None) -> MachineReadableZone:
    """Parse a TD3 or TD1 zone given as lines (newline separated) or one concatenated string."""
    today = today or date.today()
    text = mrz.strip().upper().replace(" ", "")
    lines = [line for line in text.replace("\r", "").split("\n") if line]
    joined = "".join(lines)
    if len(joined) == 88:
        return _td3(joined[:44], joined[44:], today)
    if len(joined) == 90:
        return _td1(joined[:30], joined[30:60], joined[60:], today)
    raise MRZError("mrz", f"{len(joined)} characters: a passport zone has 2 x 44, an identity card 3 x 30")


def _td3(line1: str, line2: str, today: date) -> MachineReadableZone:
    for ch in line1 + line2:
        char_value(ch)
    if line1[0] != "P":
        raise MRZError("document_type", f"{line1[0]!r}: a TD3 passport zone starts with P")
    _letters("issuing_country", line1[2:5])
    _letters("nationality", line2[10:13])
    _padded("document_number", line2[0:9])
    _padded("optional_data", line2[28:42])
    _verify("document_number", line2[0:9], line2[9])
    _verify("birth_date", line2[13:19], line2[19])
    _verify("expiry_date", line2[21:27], line2[27])
    _verify("optional_data", line2[28:42], line2[42], may_be_filler=True)
    _verify("composite", line2[0:10] + line2[13:20] + line2[21:43], line2[43])
    if line2[20] not in "MFX<":
        raise MRZError("sex", f"{line2[20]!r} is not M, F, X or <")
    surname, given = _names(line1[5:44])
    return MachineReadableZone(
        document_type=line1[0:2].replace("<", ""),
        issuing_country=line1[2:5].replace("<", ""),
        surname=surname,
        given_names=given,
        document_number=line2[0:9].replace("<", ""),
        nationality=line2[10:13].replace("<", ""),
        birth_date=_date("birth_date", line2[13:19], future=False, today=today),
        sex="X" if line2[20] == "<" else line2[20],
        expiry_date=_date("expiry_date", line2[21:27], future=True, today=today),
        optional_data=line2[28:42].replace("<", ""),
    )


def _td1(line1: str, line2: str, line3: str, today: date) -> MachineReadableZone:
    for ch in line1 + line2 + line3:
        char_value(ch)
    _letters("issuing_country", line1[2:5])
    _letters("nationality", line2[15:18])
    _padded("document_number", line1[5:14])
    _verify("document_number", line1[5:14], line1[14])
    _verify("birth_date", line2[0:6], line2[6])
    _verify("expiry_date", line2[8:14], line2[14])
    _verify("composite", line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29], line2[29])
    if line2[7] not in "MFX<":
        raise MRZError("sex", f"{line2[7]!r} is not M, F, X or <")
    surname, given = _names(line3)
    return MachineReadableZone(
        document_type=line1[0:2].replace("<", ""),
        issuing_country=line1[2:5].replace("<", ""),
        surname=surname,
        given_names=given,
        document_number=line1[5:14].replace("<", ""),
        nationality=line2[15:18].replace("<", ""),
        birth_date=_date("birth_date", line2[0:6], future=False, today=today),
        sex="X" if line2[7] == "<" else line2[7],
        expiry_date=_date("expiry_date", line2[8:14], future=True, today=today),
        optional_data=line1[15:30].replace("<", ""),
    )
