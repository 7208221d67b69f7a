# ruff: noqa: RUF001 -- Cyrillic letters are the point of this file (as in test_duplicates.py).
"""Duplicate names (issue 16): every letter the transliteration maps, every spelling variant it
folds, and doubled letters, each pinned to the form it must take."""

import pytest

from services.intake.duplicates import normalise_name, transliterate

# Every letter the transliteration maps, as passports and field forms spell it.
CYRILLIC_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ғ": "gh", "д": "d", "е": "e", "ё": "yo", "ж": "zh",
    "з": "z", "и": "i", "ӣ": "i", "й": "y", "к": "k", "қ": "q", "л": "l", "м": "m", "н": "n",
    "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ӯ": "u", "ф": "f", "х": "kh",
    "ҳ": "h", "ц": "ts", "ч": "ch", "ҷ": "j", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip


@pytest.mark.parametrize(("cyrillic", "latin"), CYRILLIC_TO_LATIN.items())
def test_every_cyrillic_letter_is_transliterated_as_records_spell_it(cyrillic: str, latin: str) -> None:
    assert transliterate(cyrillic) == latin
    assert transliterate(cyrillic.upper()) == latin
    # Between consonants, so no fold or collapse at the edges hides the letter.
    assert normalise_name(f"б{cyrillic}т") == normalise_name(f"b{latin}t")


# Each spelling variant records use interchangeably, with the form both fold to.
FOLDED = [
    ("Dzhuraev", "Juraev", "juraev"),
    ("Zhamshed", "Jamshed", "jamshed"),
    ("Khodjaev", "Hodjaev", "hodjaev"),
    ("Ghafurov", "Gafurov", "gafurov"),
    ("Qodirov", "Kodirov", "kodirov"),
    ("Fyodor", "Fodor", "fodor"),
    ("Yusuf", "Usuf", "usuf"),
    ("Yakubov", "Akubov", "akubov"),
    ("Rajabaye", "Rajabae", "rajabae"),
    ("Boye", "Boe", "boe"),
    ("Aliyev", "Aliev", "aliev"),
    ("Saydov", "Saidov", "saidov"),
    ("Wali", "Vali", "vali"),
    ("Xolmatov", "Holmatov", "holmatov"),
    ("Sheer", "Shir", "shir"),
    ("Noor", "Nur", "nur"),
]


@pytest.mark.parametrize(("one", "other", "folded"), FOLDED)
def test_every_spelling_variant_folds_to_one_form(one: str, other: str, folded: str) -> None:
    assert normalise_name(one) == normalise_name(other) == folded


@pytest.mark.parametrize(
    ("doubled", "single", "folded"),
    [
        ("Farrukh", "Farukh", "faruh"),
        ("Muhammadjon", "Muhamadjon", "muhamadjon"),
        ("Nazzarov", "Nazarov", "nazarov"),
        ("Фаррух", "Farukh", "faruh"),
        ("Rakhimmova", "Rakhimova", "rahimova"),
    ],
)
def test_doubled_letters_collapse(doubled: str, single: str, folded: str) -> None:
    assert normalise_name(doubled) == normalise_name(single) == folded
