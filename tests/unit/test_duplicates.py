from datetime import date

from services.intake.duplicates import keys_for, normalise_name

BORN = date(1986, 3, 14)


def keys(surname: str, given: str, **kw: str):  # type: ignore[no-untyped-def]
    return keys_for(
        document_number="401234567",
        document_country="TJK",
        surname=surname,
        given_names=given,
        birth_date=BORN,
        **kw,
    )


def test_latin_and_cyrillic_spellings_of_one_person_meet() -> None:
    latin = keys("Nazarov", "Farrukh")
    cyrillic = keys("Nazarov", "Farrukh", surname_cyrillic="Назаров", given_names_cyrillic="Фаррух")
    typed_in_cyrillic_only = keys_for(
        document_number="X1", document_country="TJK", surname="Назаров", given_names="Фаррух", birth_date=BORN
    )
    assert latin.names & typed_in_cyrillic_only.names
    assert cyrillic.names >= latin.names


def test_common_transliteration_variants_fold_together() -> None:
    assert normalise_name("Jurayev") == normalise_name("Dzhuraev") == normalise_name("Джураев")
    assert normalise_name("Khodjaev") == normalise_name("Hodjaev")
    assert normalise_name("Qodirov") == normalise_name("Кодиров") == normalise_name("Қодиров")


def test_different_people_do_not_meet() -> None:
    assert not keys("Nazarov", "Farrukh").names & keys("Nazarova", "Malika").names
    other_birthday = keys_for(
        document_number="1",
        document_country="TJK",
        surname="Nazarov",
        given_names="Farrukh",
        birth_date=date(1987, 3, 14),
    )
    assert not keys("Nazarov", "Farrukh").names & other_birthday.names


def test_document_key_ignores_filler_and_spacing() -> None:
    a = keys_for(
        document_number="4012 34567", document_country="TJK", surname="a", given_names="b", birth_date=BORN
    )
    b = keys_for(
        document_number="401234567<", document_country="TJK", surname="c", given_names="d", birth_date=BORN
    )
    assert a.document == b.document
