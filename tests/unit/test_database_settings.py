"""A service's database settings: its own role, the password apart from the URL and never shown;
the one formatted SQL statement quotes its name (finding 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from corridor.db import quote_identifier
from corridor.settings import ServiceSettings


def test_a_password_in_the_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="CORRIDOR_DATABASE_PASSWORD"):
        ServiceSettings(database_url="postgresql://intake:hunter2@db:5432/intake")


def test_the_password_joins_the_url_only_for_the_driver_and_is_never_shown(tmp_path: Path) -> None:
    settings = ServiceSettings(
        database_url="postgresql://intake@db:5432/intake", database_password="p@ss:w/rd"
    )
    assert settings.database_dsn() == "postgresql://intake:p%40ss%3Aw%2Frd@db:5432/intake"
    assert "p@ss" not in repr(settings) and "p@ss" not in str(settings.model_dump())
    # A secret file (Docker, Kubernetes) wins over the variable.
    secret = tmp_path / "intake.password"
    secret.write_text("from-the-file\n")
    from_file = ServiceSettings(
        database_url="postgresql://intake@db/intake",
        database_password="ignored",
        database_password_file=secret,
    )
    assert from_file.database_dsn() == "postgresql://intake:from-the-file@db/intake"


def test_without_a_password_the_url_is_used_as_it_is() -> None:
    settings = ServiceSettings(database_url="postgresql://intake@db:5432/intake")
    assert settings.database_dsn() == "postgresql://intake@db:5432/intake"


def test_the_default_is_no_superuser() -> None:
    assert "postgres@" not in ServiceSettings().database_url


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("intake", '"intake"'),
        ('x"; DROP DATABASE intake; --', '"x""; DROP DATABASE intake; --"'),
        ("Ä b", '"Ä b"'),
    ],
)
def test_a_database_name_is_quoted_as_an_identifier(name: str, quoted: str) -> None:
    assert quote_identifier(name) == quoted


def test_a_nul_cannot_be_part_of_an_identifier() -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote_identifier("a\x00b")
