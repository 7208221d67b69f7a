"""What logs say about bad input and failures: never the input (issue 11, item 5)."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from corridor.redaction import RedactedServerErrors, described, detail_ref, fingerprint, frames
from tests.problemcheck import answered

PERSONAL = "Zqxova Qamilat, born 1957-03-04, passport 712345678"


def app() -> FastAPI:
    api = FastAPI()
    api.add_middleware(RedactedServerErrors)

    @api.get("/boom")
    async def boom() -> None:
        raise ValueError(f"cannot handle {PERSONAL}")

    @api.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such case")

    return api


async def test_an_unhandled_error_is_a_bare_500_and_its_message_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        r = await client.get("/boom")
        assert answered(r) == (500, "internal_error", "internal error")
        # Answers a handler gives are not touched.
        assert (await client.get("/missing")).status_code == 404
    logged = "\n".join(caplog.messages) + "\n".join(
        logging.Formatter().formatException(rec.exc_info) for rec in caplog.records if rec.exc_info
    )
    assert "ValueError" in logged and "boom" in logged  # what and where
    assert r.json()["instance"] in logged  # what the caller quotes leads to the line
    assert "Zqxova" not in logged and "1957" not in logged


def test_a_described_exception_has_its_type_and_sqlstate_never_its_message() -> None:
    class DataError(Exception):
        sqlstate = "22P05"

    assert described(DataError(PERSONAL)) == "DataError (SQLSTATE 22P05)"
    assert described(ValueError(PERSONAL)) == "ValueError"
    try:
        raise ValueError(PERSONAL)
    except ValueError as exc:
        assert "raise ValueError" in frames(exc) and "Zqxova" not in frames(exc)


def test_a_detail_is_referred_to_by_a_stable_fingerprint() -> None:
    assert fingerprint(PERSONAL) == fingerprint(PERSONAL) != fingerprint(PERSONAL + ".")
    assert "Zqxova" not in detail_ref(PERSONAL) and fingerprint(PERSONAL) in detail_ref(PERSONAL)
