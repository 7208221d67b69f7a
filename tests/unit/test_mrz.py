from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corridor.mrz import MRZError, char_value, check_digit, parse

# ICAO Doc 9303 Part 4, Appendix A: the specimen passport of Anna Maria Eriksson.
SPECIMEN = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TODAY = date(2010, 1, 1)
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"


def test_the_icao_specimen_parses_and_validates() -> None:
    zone = parse(SPECIMEN, today=TODAY)
    assert (zone.surname, zone.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert zone.document_number == "L898902C3" and zone.nationality == "UTO"
    assert zone.birth_date == date(1974, 8, 12) and zone.expiry_date == date(2012, 4, 15)
    assert zone.sex == "F" and zone.optional_data == "ZE184226B"


LINE2 = SPECIMEN[45:]
SEX = 20
NATIONALITY = range(10, 13)
CHECKED_ALPHANUMERIC = [*range(0, 9), *range(28, 42)]  # document number, optional data


def _undetectable(i: int, new: str) -> bool:
    """Corruptions no MRZ can reveal. The sex and nationality fields have no check digit. A check
    digit sums values mod 10 with weights coprime to 10, so a letter read as a digit 10, 20 or 30
    values away (C/2, L/1, Z/5, E/4, B/1) keeps it, and so does a trailing filler read as 0."""
    old = LINE2[i]
    if i == SEX:
        return new in "MFX<"
    if i in NATIONALITY:
        return new.isalpha() or (new == "<" and i == 12)
    if i in CHECKED_ALPHANUMERIC:
        if (char_value(new) - char_value(old)) % 10 == 0 and new.isalnum():
            return True
        return old == "<" and new == "0"
    return False


def _corrupt(i: int, ch: str) -> str:
    return SPECIMEN[: 45 + i] + ch + SPECIMEN[45 + i + 1 :]


def test_every_detectable_single_character_corruption_of_line_two_is_rejected() -> None:
    accepted, rejected, undetectable = [], 0, 0
    for i in range(44):
        for ch in ALPHABET:
            if ch == LINE2[i]:
                continue
            if _undetectable(i, ch):
                undetectable += 1
                continue
            try:
                parse(_corrupt(i, ch), today=TODAY)
                accepted.append(f"{i}:{LINE2[i]}->{ch}")
            except MRZError:
                rejected += 1
    assert accepted == []
    # Most of what is left unseen is the nationality, which no check digit covers in a TD3 zone.
    assert rejected + undetectable == 44 * (len(ALPHABET) - 1)
    assert rejected / (rejected + undetectable) > 0.9


def test_every_digit_for_digit_corruption_is_rejected_by_a_check_digit() -> None:
    for i in range(44):
        if not LINE2[i].isdigit() or i == SEX:
            continue
        for ch in "0123456789":
            if ch != LINE2[i]:
                with pytest.raises(MRZError, match="check digit"):
                    parse(_corrupt(i, ch), today=TODAY)


def test_the_limits_of_check_digits_are_what_icao_says() -> None:
    """A letter misread as the digit 10 values away passes every check: the reason the platform
    also compares MRZ fields with the manifest, not only check digits."""
    misread = _corrupt(7, "2")  # C (12) read as 2
    assert parse(misread, today=TODAY).document_number == "L89890223"


def test_the_error_names_the_field_whose_check_digit_fails() -> None:
    wrong_birth = SPECIMEN.replace("7408122F", "7408132F")
    with pytest.raises(MRZError) as caught:
        parse(wrong_birth, today=TODAY)
    assert caught.value.field == "birth_date" and caught.value.reason == "check digit is 2, expected 3"


def test_length_and_alphabet_are_checked() -> None:
    with pytest.raises(MRZError, match="2 x 44"):
        parse(SPECIMEN[:-1], today=TODAY)
    with pytest.raises(MRZError, match="not allowed"):
        parse(SPECIMEN.replace("ERIKSSON", "ERIKSSON".replace("K", "#")), today=TODAY)


@given(st.text(alphabet=ALPHABET, min_size=1, max_size=40))
def test_check_digit_is_a_digit_and_weighted_sum_mod_ten(data: str) -> None:
    digit = check_digit(data)
    assert 0 <= digit <= 9
    assert digit == sum(char_value(c) * (7, 3, 1)[i % 3] for i, c in enumerate(data)) % 10


@given(
    st.text(alphabet=ALPHABET, min_size=1, max_size=40),
    st.integers(min_value=0, max_value=39),
    st.sampled_from("0123456789"),
)
def test_changing_one_digit_changes_the_check_digit(data: str, index: int, digit: str) -> None:
    index %= len(data)
    if data[index] in "0123456789" and data[index] != digit:
        changed = data[:index] + digit + data[index + 1 :]
        # Weights 7, 3 and 1 are coprime with 10: one changed digit always changes the sum mod 10.
        assert check_digit(changed) != check_digit(data)


@given(st.text(alphabet=ALPHABET, min_size=0, max_size=30))
def test_filler_at_the_end_does_not_change_the_check_digit(data: str) -> None:
    assert check_digit(data + "<<<") == check_digit(data)


# Which field each position of line two belongs to (its check digit included): an officer is told
# the field at fault, so each detected corruption must name the field it is in.
OWNER = {
    **dict.fromkeys(range(0, 10), "document_number"),
    **dict.fromkeys(NATIONALITY, "nationality"),
    **dict.fromkeys(range(13, 20), "birth_date"),
    SEX: "sex",
    **dict.fromkeys(range(21, 28), "expiry_date"),
    **dict.fromkeys(range(28, 43), "optional_data"),
    43: "composite",
}


def test_every_detected_corruption_of_line_two_names_the_field_it_is_in() -> None:
    wrong = []
    for i in range(44):
        for ch in ALPHABET:
            if ch == LINE2[i] or _undetectable(i, ch):
                continue
            try:
                parse(_corrupt(i, ch), today=TODAY)
            except MRZError as error:
                if error.field != OWNER[i]:
                    wrong.append(f"{i}:{LINE2[i]}->{ch} named {error.field}")
    assert not wrong, wrong[:20]


def test_line_one_names_the_document_type_and_the_issuing_country_at_fault() -> None:
    with pytest.raises(MRZError) as caught:
        parse("V" + SPECIMEN[1:], today=TODAY)
    assert caught.value.field == "document_type" and caught.value.reason.startswith("'V'")
    for i in range(2, 5):
        for ch in "0<":
            if ch == "<" and i == 4:
                continue  # a two-letter code padded with a filler is a code
            with pytest.raises(MRZError) as caught:
                parse(SPECIMEN[:i] + ch + SPECIMEN[i + 1 :], today=TODAY)
            assert caught.value.field == "issuing_country", (i, ch)
