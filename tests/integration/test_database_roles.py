"""Each service connects to PostgreSQL as a role of its own that owns only its own database: not
the superuser, and not able to read another service's data (issue 11, item 5)."""

from __future__ import annotations

import asyncpg
import pytest

from devkit.devstack import Stack
from tests.conftest import report_figure


async def _connect_as(stack: Stack, service: str, database: str) -> asyncpg.Connection:
    password = stack.db_password_file(service).read_text().strip()
    return await asyncpg.connect(stack.postgres.url(database, stack.db_roles[service]), password=password)


async def test_every_service_connects_as_its_own_role_and_no_service_as_the_superuser(stack: Stack) -> None:
    admin = await asyncpg.connect(stack.postgres.dsn())
    try:
        rows = await admin.fetch(
            """SELECT datname, usename FROM pg_stat_activity
               WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"""
        )
        roles = {r["rolname"]: r for r in await admin.fetch("SELECT * FROM pg_roles")}
    finally:
        await admin.close()
    by_database: dict[str, set[str]] = {}
    for r in rows:
        by_database.setdefault(r["datname"], set()).add(r["usename"])
    for name, spec in stack.specs.items():
        role = stack.db_roles[name]
        # Every service runs and holds connections (its pool, its outbox relay's listener).
        assert by_database.get(spec.database) == {role}, (name, by_database.get(spec.database))
        assert (
            not roles[role]["rolsuper"]
            and not roles[role]["rolcreatedb"]
            and not roles[role]["rolcreaterole"]
        )
    assert len(set(stack.db_roles.values())) == len(stack.specs)


async def test_a_service_s_role_cannot_reach_another_service_s_database(stack: Stack) -> None:
    tried = refused = 0
    names = list(stack.specs)
    for name in names:
        for other in names:
            if other == name:
                continue
            tried += 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await _connect_as(stack, name, stack.specs[other].database)
            refused += 1
    # Its own database: yes, and it owns what is in it.
    conn = await _connect_as(stack, "intake", stack.specs["intake"].database)
    try:
        owners = {
            r["tableowner"]
            for r in await conn.fetch("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
        }
        assert owners == {stack.db_roles["intake"]}
        # Nor can it make itself more: no roles, no databases.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE ROLE intruder LOGIN")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE DATABASE intruder")
    finally:
        await conn.close()
    report_figure(
        "PostgreSQL roles", f"{tried} connections to another service's database tried, {refused} refused"
    )


async def test_over_tcp_a_wrong_password_or_none_is_refused(stack: Stack) -> None:
    url = stack.postgres.url(stack.specs["transport"].database, stack.db_roles["transport"])
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(url, password="not-the-password")
    superuser = stack.postgres.url("postgres", "postgres")
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        await asyncpg.connect(superuser, password="")
