"""What an officer reads off a machine-readable zone beyond the ICAO specimens: filler handling
(short document numbers, two-letter country codes, unspecified sex, an empty optional-data field),
the century of two-digit years at the edges of their windows, the exact field and reason of every
refusal, and the characters a scanner may send around a zone (spaces, CRLF, lower case).

Zones are built field by field with their check digits (``td3`` and ``td1`` below, which rebuild the
ICAO specimens exactly), so each case changes one thing and keeps every check digit right.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from corridor.mrz import MachineReadableZone, MRZError, char_value, check_digit, parse

TODAY = date(2010, 1, 1)
TD3_SPECIMEN = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TD1_SPECIMEN = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)


def _digit(data: str) -> str:
    return str(check_digit(data))


def td3(
    *,
    document_type: str = "P<",
    country: str = "UTO",
    names: str = "ERIKSSON<<ANNA<MARIA",
    number: str = "L898902C3",
    nationality: str = "UTO",
    birth: str = "740812",
    sex: str = "F",
    expiry: str = "120415",
    optional: str = "ZE184226B",
    digits: dict[str, str] | None = None,
) -> str:
    """A passport zone; ``digits`` overrides a check digit by field name (the composite is then
    computed over the overridden digit, so only the named field is wrong)."""
    given = digits or {}
    number = number.ljust(9, "<")
    optional = optional.ljust(14, "<")
    line1 = (document_type + country + names).ljust(44, "<")
    line2 = (
        number
        + given.get("document_number", _digit(number))
        + nationality
        + birth
        + given.get("birth_date", _digit(birth))
        + sex
        + expiry
        + given.get("expiry_date", _digit(expiry))
        + optional
        + given.get("optional_data", _digit(optional))
    )
    composite = _digit(line2[0:10] + line2[13:20] + line2[21:43])
    return line1 + "\n" + line2 + given.get("composite", composite)


def td1(
    *,
    document_type: str = "I<",
    country: str = "UTO",
    number: str = "D23145890",
    optional1: str = "",
    birth: str = "740812",
    sex: str = "F",
    expiry: str = "120415",
    nationality: str = "UTO",
    optional2: str = "",
    names: str = "ERIKSSON<<ANNA<MARIA",
    digits: dict[str, str] | None = None,
) -> str:
    """An identity-card zone, built like ``td3``."""
    given = digits or {}
    number = number.ljust(9, "<")
    line1 = (
        document_type + country + number + given.get("document_number", _digit(number)) + optional1
    ).ljust(30, "<")
    line2 = (
        birth
        + given.get("birth_date", _digit(birth))
        + sex
        + expiry
        + given.get("expiry_date", _digit(expiry))
        + nationality
        + optional2.ljust(11, "<")
    )
    composite = _digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    return "\n".join((line1, line2 + given.get("composite", composite), names.ljust(30, "<")))


def refusal(zone: str, today: date = TODAY) -> tuple[str, str]:
    with pytest.raises(MRZError) as caught:
        parse(zone, today=today)
    return caught.value.field, caught.value.reason


def test_the_builders_rebuild_the_icao_specimens() -> None:
    assert td3() == TD3_SPECIMEN
    assert td1() == TD1_SPECIMEN


# --- the ICAO value table --------------------------------------------------------------------


def test_characters_count_as_the_icao_table_says() -> None:
    """Doc 9303 Part 3: digits as themselves, A-Z as 10-35, the filler as 0."""
    table = {**{str(d): d for d in range(10)}, **{chr(ord("A") + i): 10 + i for i in range(26)}, "<": 0}
    assert {ch: char_value(ch) for ch in table} == table


# A scanner or a caseworker's paste can bring anything; only the ICAO alphabet is a zone.
FOREIGN = ["#", "[", "_", "`", "É", "\t", "\u0663", "\u00b2", "\u0660"]


@pytest.mark.parametrize("ch", FOREIGN)
def test_a_character_outside_the_icao_alphabet_is_refused_as_a_misread(ch: str) -> None:
    for zone in (td3(names=f"ERIKS{ch}ON<<ANNA"), td1(names=f"ERIKS{ch}ON<<ANNA")):
        assert refusal(zone) == ("mrz", f"character {ch!r} is not allowed in a machine-readable zone")


def test_a_zone_of_the_wrong_length_is_refused_as_a_whole() -> None:
    assert refusal(TD3_SPECIMEN[:-1]) == (
        "mrz",
        "87 characters: a passport zone has 2 x 44, an identity card 3 x 30",
    )
    assert refusal(TD1_SPECIMEN + "<") == (
        "mrz",
        "91 characters: a passport zone has 2 x 44, an identity card 3 x 30",
    )


# --- what a scanner sends around the zone ----------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda z: z.replace("\n", "\r\n"), id="CRLF line ends"),
        pytest.param(lambda z: "  " + z.replace("\n", " \n ") + "\n", id="spaces around lines"),
        pytest.param(lambda z: z.replace("<<", "< <"), id="spaces inside lines"),
        pytest.param(str.lower, id="lower case"),
        pytest.param(lambda z: z.replace("\n", "\n\n"), id="blank lines"),
    ],
)
def test_line_ends_spaces_and_case_do_not_change_what_is_read(variant: Callable[[str], str]) -> None:
    for zone in (TD3_SPECIMEN, TD1_SPECIMEN):
        assert parse(variant(zone), today=TODAY) == parse(zone, today=TODAY)


# --- fillers: what is read out of padded fields ----------------------------------------------


def _read(zone: str) -> MachineReadableZone:
    return parse(zone, today=TODAY)


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
def test_a_two_letter_country_padded_with_fillers_is_read_without_them(build: Callable[..., str]) -> None:
    """Germany is ``D<<`` in every zone it issues."""
    zone = _read(build(country="D<<", nationality="D<<"))
    assert (zone.issuing_country, zone.nationality) == ("D", "D")


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize("code", ["AUS", "ARM", "XXX", "XXA", "ZZZ"])
def test_every_letter_is_a_country_code_letter(build: Callable[..., str], code: str) -> None:
    """Including A and Z, and ICAO's XXX (unspecified) and XXA (stateless)."""
    zone = _read(build(country=code, nationality=code))
    assert (zone.issuing_country, zone.nationality) == (code, code)


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("issuing_country", "U1O"),
        ("issuing_country", "<UT"),
        ("issuing_country", "U<O"),
        ("issuing_country", "<<<"),
        ("nationality", "UT0"),
        ("nationality", "<<<"),
        ("nationality", "D<D"),
    ],
)
def test_a_country_code_that_is_not_letters_then_fillers_is_refused_and_named(
    build: Callable[..., str], field: str, code: str
) -> None:
    zone = build(**{"country" if field == "issuing_country" else "nationality": code})
    assert refusal(zone) == (field, f"{code!r} is not a three-letter country code")


def test_the_passport_document_type_is_read_without_its_filler() -> None:
    assert _read(td3()).document_type == "P"
    assert _read(td3(document_type="PD")).document_type == "PD"
    assert _read(td1(document_type="ID")).document_type == "ID"
    assert _read(td1(document_type="I<")).document_type == "I"


def test_a_passport_zone_that_does_not_start_with_p_is_refused_and_named() -> None:
    for first in "VI<":
        assert refusal(td3(document_type=first + "<")) == (
            "document_type",
            f"{first!r}: a TD3 passport zone starts with P",
        )


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize("number", ["A", "A1", "AB12345", "12345678X", "XX"])
def test_a_short_document_number_is_read_without_its_fillers(build: Callable[..., str], number: str) -> None:
    assert _read(build(number=number)).document_number == number


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize("number", ["<12345678", "A<2345678", "1234<678X", "AB<X", "<<<<<<<<A"])
def test_a_filler_inside_the_document_number_is_a_misread(build: Callable[..., str], number: str) -> None:
    padded = number.ljust(9, "<")
    assert refusal(build(number=number)) == ("document_number", f"{padded!r} has a filler inside the data")


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
def test_an_empty_document_number_is_refused_though_its_check_digit_fits(build: Callable[..., str]) -> None:
    assert check_digit("<" * 9) == 0
    assert refusal(build(number="")) == ("document_number", "is empty")


def test_an_empty_passport_optional_data_field_may_have_a_filler_for_its_check_digit() -> None:
    """Doc 9303 Part 4: '<' or 0 over an all-filler personal-number field."""
    for digit in "<0":
        zone = _read(td3(optional="", digits={"optional_data": digit}))
        assert zone.optional_data == ""


def test_only_an_empty_optional_data_field_may_have_a_filler_check_digit() -> None:
    assert refusal(td3(digits={"optional_data": "<"})) == ("optional_data", "check digit '<' is not a digit")
    assert refusal(td3(optional="", digits={"optional_data": "5"})) == (
        "optional_data",
        "check digit is 5, expected 0",
    )


@pytest.mark.parametrize("field", ["document_number", "birth_date", "expiry_date", "composite"])
def test_no_other_check_digit_may_be_a_filler(field: str) -> None:
    assert refusal(td3(digits={field: "<"})) == (field, "check digit '<' is not a digit")
    assert refusal(td1(digits={field: "<"})) == (field, "check digit '<' is not a digit")


def test_a_birth_date_of_fillers_is_refused_at_its_check_digit() -> None:
    """Unknown dates are not read as fillers: the officer is told the check digit is no digit."""
    for build in (td3, td1):
        assert refusal(build(birth="<<<<<<", digits={"birth_date": "<"})) == (
            "birth_date",
            "check digit '<' is not a digit",
        )


@pytest.mark.parametrize(
    "optional", ["<ZE184226B", "ZE<184226B", "ZE184226B<<<<1", "<<<<<<<<<<<<<A"], ids=str
)
def test_a_filler_inside_the_passport_optional_data_is_a_misread(optional: str) -> None:
    assert refusal(td3(optional=optional)) == (
        "optional_data",
        f"{optional.ljust(14, '<')!r} has a filler inside the data",
    )


def test_td1_optional_data_is_read_from_line_one_and_never_leaks_into_the_nationality() -> None:
    zone = _read(td1(optional1="SPECIMEN12345AB", optional2="X7"))
    assert zone.optional_data == "SPECIMEN12345AB"
    assert zone.nationality == "UTO"
    assert _read(td1(optional2="1")).nationality == "UTO"


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
def test_names_split_at_the_double_filler_and_single_fillers_become_spaces(build: Callable[..., str]) -> None:
    zone = _read(build(names="VAN<DER<BERG<<ANA<MARIA"))
    assert (zone.surname, zone.given_names) == ("VAN DER BERG", "ANA MARIA")
    only = _read(build(names="MADONNA"))
    assert (only.surname, only.given_names) == ("MADONNA", "")


# --- sex ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize(("printed", "read"), [("M", "M"), ("F", "F"), ("X", "X"), ("<", "X")])
def test_sex_is_read_with_an_unspecified_filler_as_x(
    build: Callable[..., str], printed: str, read: str
) -> None:
    assert _read(build(sex=printed)).sex == read


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize("printed", ["0", "1", "Y", "W"])
def test_any_other_sex_is_refused_and_named(build: Callable[..., str], printed: str) -> None:
    assert refusal(build(sex=printed)) == ("sex", f"{printed!r} is not M, F, X or <")


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize(
    ("field", "yymmdd", "reason"),
    [
        ("birth_date", "741312", "741312 is not a calendar date"),
        ("birth_date", "740230", "740230 is not a calendar date"),
        ("birth_date", "740800", "740800 is not a calendar date"),
        ("birth_date", "7408L2", "'7408L2' is not a YYMMDD date"),
        ("expiry_date", "121315", "121315 is not a calendar date"),
        ("expiry_date", "120431", "120431 is not a calendar date"),
        ("expiry_date", "1204L5", "'1204L5' is not a YYMMDD date"),
    ],
)
def test_a_date_that_passes_its_check_digit_but_is_no_date_is_refused_and_named(
    build: Callable[..., str], field: str, yymmdd: str, reason: str
) -> None:
    """A same-sum letter (L for 1) or an impossible day passes the check digit; the date catches it."""
    zone = build(**{"birth" if field == "birth_date" else "expiry": yymmdd})
    assert refusal(zone) == (field, reason)


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize(
    ("birth", "read"),
    [("741012", date(1974, 10, 12)), ("741130", date(1974, 11, 30)), ("741231", date(1974, 12, 31))],
)
def test_two_digit_months_are_read_whole(build: Callable[..., str], birth: str, read: date) -> None:
    assert _read(build(birth=birth)).birth_date == read


# (today, birth YYMMDD, birth date read): a birth date is never after today, at most 100 years back.
BIRTHS = [
    (date(2026, 6, 1), "260101", date(2026, 1, 1)),  # born this year
    (date(2026, 6, 1), "260601", date(2026, 6, 1)),  # born today
    (date(2026, 6, 1), "260602", date(1926, 6, 2)),  # a day later this year: a hundred years back
    (date(2026, 12, 1), "261215", date(1926, 12, 15)),
    (date(2026, 6, 1), "270101", date(1927, 1, 1)),  # next year's YY is last century
    (date(2026, 6, 1), "000101", date(2000, 1, 1)),
    (date(2026, 6, 1), "991231", date(1999, 12, 31)),
    (date(2015, 3, 1), "050704", date(2005, 7, 4)),  # a child, read in the 2010s
    (date(2015, 3, 1), "150101", date(2015, 1, 1)),
    (date(2015, 3, 1), "160101", date(1916, 1, 1)),
    (date(2010, 1, 1), "740812", date(1974, 8, 12)),
    (date(2000, 1, 1), "000101", date(2000, 1, 1)),
    (date(2000, 1, 1), "010101", date(1901, 1, 1)),
]


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize(("today", "birth", "read"), BIRTHS)
def test_the_century_of_a_birth_date(build: Callable[..., str], today: date, birth: str, read: date) -> None:
    assert parse(build(birth=birth), today=today).birth_date == read


# (today, expiry YYMMDD, expiry read): the window runs from 50 years back to 49 years ahead.
EXPIRIES = [
    (date(2010, 1, 1), "120415", date(2012, 4, 15)),
    (date(2026, 6, 1), "991231", date(2099, 12, 31)),
    (date(2026, 6, 1), "000101", date(2000, 1, 1)),
    (date(2070, 1, 1), "200101", date(2020, 1, 1)),  # exactly 50 years back: this century
    (date(2070, 1, 1), "191231", date(2119, 12, 31)),  # 51 years back: the next century
    (date(2070, 1, 1), "050101", date(2105, 1, 1)),
    (date(2070, 1, 1), "690101", date(2069, 1, 1)),
    (date(2099, 12, 31), "480101", date(2148, 1, 1)),
    (date(2099, 12, 31), "490101", date(2049, 1, 1)),
    (date(2015, 3, 1), "050101", date(2005, 1, 1)),  # read in the 2010s: still this century
    (date(2015, 3, 1), "250101", date(2025, 1, 1)),
]


@pytest.mark.parametrize("build", [td3, td1], ids=["TD3", "TD1"])
@pytest.mark.parametrize(("today", "expiry", "read"), EXPIRIES)
def test_the_century_of_an_expiry_date(
    build: Callable[..., str], today: date, expiry: str, read: date
) -> None:
    assert parse(build(expiry=expiry), today=today).expiry_date == read


# --- identity cards: every detected corruption names its field --------------------------------

TD1_LINES = TD1_SPECIMEN.split("\n")
# Which field each position of lines one and two belongs to, its check digit included. Optional
# data is covered by the composite check digit only, so a change there is blamed on the composite.
TD1_OWNER = {
    0: {
        **dict.fromkeys(range(0, 2), "document_type"),
        **dict.fromkeys(range(2, 5), "issuing_country"),
        **dict.fromkeys(range(5, 15), "document_number"),
        **dict.fromkeys(range(15, 30), "composite"),
    },
    1: {
        **dict.fromkeys(range(0, 7), "birth_date"),
        7: "sex",
        **dict.fromkeys(range(8, 15), "expiry_date"),
        **dict.fromkeys(range(15, 18), "nationality"),
        **dict.fromkeys(range(18, 30), "composite"),
    },
}


def test_every_detected_corruption_of_an_identity_card_names_the_field_it_is_in() -> None:
    wrong, named = [], 0
    for line in (0, 1):
        for i in range(30):
            for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<":
                lines = list(TD1_LINES)
                if ch == lines[line][i]:
                    continue
                lines[line] = lines[line][:i] + ch + lines[line][i + 1 :]
                try:
                    parse("\n".join(lines), today=TODAY)
                except MRZError as error:
                    named += 1
                    if error.field != TD1_OWNER[line][i]:
                        wrong.append(f"line {line + 1} {i}:{TD1_LINES[line][i]}->{ch} named {error.field}")
    assert not wrong, wrong[:20]
    # test_mrz_td1.py proves which corruptions are detected; here, that there are many to name.
    assert named > 1500
