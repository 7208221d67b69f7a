"""Every unit test's services trust one development issuer (``devkit.devidp``), as the local stack's
do: the API tests send real signed tokens through the same verification a running service does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from devkit.devidp import DevIssuer, OperationRules, RoleAuth
from tests.problemcheck import DocumentedAnswers


@pytest.fixture(scope="session", autouse=True)
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIssuer]:
    dev = DevIssuer(Path(tmp_path_factory.mktemp("idp")))
    with pytest.MonkeyPatch.context() as env:
        for name, value in dev.env().items():
            env.setenv(name, value)
        yield dev


def role_auth(issuer: DevIssuer, app: FastAPI) -> httpx.Auth:
    """Each request signed in the first role its route admits (as in the integration tests), and
    each answer checked against the route's OpenAPI document (``tests.problemcheck``): every status
    the API tests meet is one the document lists, every error a problem."""
    return DocumentedAnswers(
        RoleAuth(issuer, lambda _url: OperationRules(app.openapi())), lambda _url: app.openapi()
    )
