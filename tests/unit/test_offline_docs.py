"""Every service's documentation pages work with no internet: a border post's browser gets every
script and style from the service itself (issue 15: /docs and /redoc were blank offline)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import httpx
import pytest

from corridor.auth import Role
from corridor.runtime import ServiceRuntime
from devkit.devidp import DevIssuer
from services import deployment

PAGES = ["/docs", "/redoc", "/asyncapi"]


@pytest.fixture(params=["intake", "eligibility", "transport", "border-clearance.uzb-oybek-exit"])
async def service(request: pytest.FixtureRequest, issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    rt: ServiceRuntime = next(rt for rt in deployment.service_runtimes() if rt.instance == request.param)
    # ASGITransport does not run the lifespan: nothing connects to Kafka or PostgreSQL.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt.http), base_url="http://svc") as client:
        yield client


def referenced(html: str) -> list[str]:
    """Every script, style sheet, image and font a page asks the browser to load."""
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + re.findall(
        r"""url\(["']?([^"')]+)["']?\)""", html
    )


@pytest.mark.parametrize("page", PAGES)
async def test_a_page_loads_everything_from_the_service_itself_without_a_token(
    service: httpx.AsyncClient, page: str
) -> None:
    answer = await service.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assets = [a for a in referenced(answer.text) if not a.startswith("#")]
    assert any(a.endswith(".js") for a in assets), "a page without its script renders blank"
    for asset in assets:
        assert not urlparse(asset).netloc, f"{page} loads {asset} from another host"
        loaded = await service.get(asset if asset.startswith("/") else f"/{asset}")
        assert loaded.status_code == 200 and loaded.content, f"{page}: {asset} is {loaded.status_code}"


async def test_redoc_does_not_ask_for_google_fonts(service: httpx.AsyncClient) -> None:
    assert "fonts.googleapis.com" not in (await service.get("/redoc")).text


async def test_the_docs_link_the_kafka_interface(service: httpx.AsyncClient) -> None:
    openapi = (await service.get("/openapi.json")).json()
    assert "[/asyncapi](/asyncapi)" in openapi["info"]["description"]


async def test_the_asyncapi_page_is_public_but_the_document_still_needs_a_token(
    service: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    page = (await service.get("/asyncapi")).text
    assert 'fetch("asyncapi.json", { headers: { Authorization: "Bearer "' in page
    assert (await service.get("/asyncapi.json")).status_code == 401
    token = issuer.token(Role.INTEGRATION_CLIENT, "TJK")
    document = await service.get("/asyncapi.json", headers={"Authorization": f"Bearer {token}"})
    assert document.status_code == 200 and document.json()["asyncapi"].startswith("3.")


async def test_the_public_mounts_serve_assets_only(service: httpx.AsyncClient) -> None:
    # A public mount must not become a way around authentication for anything but its files.
    assert (await service.get("/static/corridor/../metrics")).status_code in {401, 404}
    assert (await service.get("/static/corridor/asyncapi/missing.js")).status_code == 404
    assert (await service.get("/metrics")).status_code == 401
