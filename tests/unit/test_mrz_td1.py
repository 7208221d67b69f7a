"""Identity cards (TD1, 3 x 30): the ICAO specimen, and every single-character corruption of the
lines check digits cover, as ``test_mrz.py`` does for passports."""

from datetime import date

import pytest

from corridor.mrz import MRZError, char_value, check_digit, parse

# ICAO Doc 9303 Part 5, Appendix A: the specimen identity card of Anna Maria Eriksson.
LINES = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)
SPECIMEN = "\n".join(LINES)
TODAY = date(2010, 1, 1)
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"


def _zone(line1: str = LINES[0], line2: str = LINES[1], line3: str = LINES[2]) -> str:
    return "\n".join((line1, line2, line3))


def _corrupt(line: int, i: int, ch: str) -> str:
    lines = list(LINES)
    lines[line] = lines[line][:i] + ch + lines[line][i + 1 :]
    return "\n".join(lines)


def test_the_icao_td1_specimen_parses_and_validates() -> None:
    zone = parse(SPECIMEN, today=TODAY)
    assert zone.document_type == "I" and zone.issuing_country == "UTO"
    assert (zone.surname, zone.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert zone.document_number == "D23145890" and zone.nationality == "UTO"
    assert zone.birth_date == date(1974, 8, 12) and zone.expiry_date == date(2012, 4, 15)
    assert zone.sex == "F" and zone.optional_data == ""
    # One concatenated string reads the same as three lines.
    assert parse("".join(LINES), today=TODAY) == zone


def test_the_specimen_check_digits_are_the_ones_icao_computes() -> None:
    line1, line2 = LINES[0], LINES[1]
    assert check_digit(line1[5:14]) == int(line1[14]) == 7
    assert check_digit(line2[0:6]) == int(line2[6]) == 2
    assert check_digit(line2[8:14]) == int(line2[14]) == 9
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    assert check_digit(composite) == int(line2[29]) == 6


def _valid_td1(optional1: str, optional2: str) -> str:
    """A TD1 zone with the specimen's fields and the given optional data, every check digit right."""
    line1 = LINES[0][:15] + optional1.ljust(15, "<")
    body2 = LINES[1][:18] + optional2.ljust(11, "<")
    composite = line1[5:30] + body2[0:7] + body2[8:15] + body2[18:29]
    return _zone(line1, body2 + str(check_digit(composite)), LINES[2])


def test_optional_data_is_covered_by_the_composite_check_digit_only() -> None:
    good = _valid_td1("SPECIMEN1", "X7")
    assert parse(good, today=TODAY).optional_data == "SPECIMEN1"
    line1, line2, line3 = good.split("\n")
    tampered1 = _zone(line1.replace("SPECIMEN1", "SPECIMEN2"), line2, line3)
    tampered2 = _zone(line1, line2.replace("X7", "X8"), line3)
    for tampered in (tampered1, tampered2):
        with pytest.raises(MRZError) as caught:
            parse(tampered, today=TODAY)
        assert caught.value.field == "composite"


def test_a_wrong_composite_check_digit_is_refused_and_named() -> None:
    for digit in "012345789":
        with pytest.raises(MRZError) as caught:
            parse(_corrupt(1, 29, digit), today=TODAY)
        assert caught.value.field == "composite"
        assert caught.value.reason == f"check digit is {digit}, expected 6"


# Fields no check digit covers, or covers only up to the mod-10 equivalences (test_mrz.py).
DOCUMENT_TYPE = range(0, 2)  # line 1
ISSUING_COUNTRY = range(2, 5)  # line 1
DOCUMENT_NUMBER = range(5, 14)  # line 1
OPTIONAL_1 = range(15, 30)  # line 1, composite only
SEX = 7  # line 2
NATIONALITY = range(15, 18)  # line 2
OPTIONAL_2 = range(18, 29)  # line 2, composite only


def _same_sum(old: str, new: str) -> bool:
    """A letter read as a digit 10, 20 or 30 values away (or the reverse) keeps every sum mod 10."""
    return new.isalnum() and (char_value(new) - char_value(old)) % 10 == 0


def _undetectable(line: int, i: int, new: str) -> bool:
    """Corruptions no TD1 zone can reveal. The document type, the sex, the nationality and the
    issuing country (a letter for a letter) have no check digit; the names line has none at all
    (not swept here). Alphanumeric data under a check digit hides a same-sum substitution, and a
    trailing 0 read as a filler (both count 0)."""
    old = LINES[line][i]
    if line == 0:
        if i in DOCUMENT_TYPE:
            return True
        if i in ISSUING_COUNTRY:
            return new.isalpha() or (new == "<" and i == ISSUING_COUNTRY[-1])
        if i in DOCUMENT_NUMBER:
            trailing = set(LINES[0][i + 1 : DOCUMENT_NUMBER.stop]) <= {"<"}
            return _same_sum(old, new) or (new == "<" and char_value(old) % 10 == 0 and trailing)
        if i in OPTIONAL_1:
            return _same_sum(old, new)
        return False
    if i == SEX:
        return new in "MFX<"
    if i in NATIONALITY:
        return new.isalpha() or (new == "<" and i == NATIONALITY[-1])
    if i in OPTIONAL_2:
        return _same_sum(old, new)
    # Dates: a same-sum letter passes their check digits but is no date.
    return False


def test_every_detectable_single_character_corruption_of_lines_one_and_two_is_rejected() -> None:
    accepted, rejected, undetectable = [], 0, 0
    for line in (0, 1):
        for i in range(30):
            for ch in ALPHABET:
                if ch == LINES[line][i]:
                    continue
                if _undetectable(line, i, ch):
                    undetectable += 1
                    continue
                try:
                    parse(_corrupt(line, i, ch), today=TODAY)
                    accepted.append(f"line {line + 1} {i}:{LINES[line][i]}->{ch}")
                except MRZError:
                    rejected += 1
    assert accepted == []
    assert rejected + undetectable == 2 * 30 * (len(ALPHABET) - 1)
    # Most of what is left unseen is the document type, issuing country, sex and nationality.
    assert rejected / (rejected + undetectable) > 0.8


def test_every_optional_data_corruption_that_changes_the_sum_is_caught_by_the_composite() -> None:
    """What only the composite check digit stands between: optional data on lines one and two."""
    for line, positions in ((0, OPTIONAL_1), (1, OPTIONAL_2)):
        for i in positions:
            for ch in ALPHABET:
                if ch == LINES[line][i] or _same_sum(LINES[line][i], ch):
                    continue
                with pytest.raises(MRZError) as caught:
                    parse(_corrupt(line, i, ch), today=TODAY)
                assert caught.value.field == "composite", (line, i, ch)


def test_every_digit_for_digit_corruption_is_rejected_by_a_check_digit() -> None:
    for line in (0, 1):
        for i in range(30):
            if not LINES[line][i].isdigit() or (line, i) == (1, SEX):
                continue
            for ch in "0123456789":
                if ch != LINES[line][i]:
                    with pytest.raises(MRZError, match="check digit"):
                        parse(_corrupt(line, i, ch), today=TODAY)


def test_the_names_line_has_no_check_digit() -> None:
    """Why names are compared with the registration, never trusted from the zone alone."""
    misread = _corrupt(2, 1, "F")  # ERIKSSON read as EFIKSSON
    assert parse(misread, today=TODAY).surname == "EFIKSSON"


def test_a_td1_zone_one_character_short_or_long_is_refused() -> None:
    with pytest.raises(MRZError, match="3 x 30"):
        parse(SPECIMEN[:-1], today=TODAY)
    with pytest.raises(MRZError, match="3 x 30"):
        parse(SPECIMEN + "<", today=TODAY)
