"""Human-readable API documentation that works without the internet.

Border posts are where the internet is poorest, and FastAPI's own /docs and /redoc pages load
Swagger UI and ReDoc from a CDN: blank pages there. Swagger UI and ReDoc come from the
``fastapi-offline`` package; the Kafka interface is rendered by the official AsyncAPI React
component (``@asyncapi/react-component``, vendored in ``corridor/static/asyncapi``: see its
README for the version and how to refresh it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

STATIC = Path(__file__).parent / "static"
SWAGGER_ASSETS = "/static-offline-docs"  # fastapi-offline's default mount
CORRIDOR_ASSETS = "/static/corridor"
PUBLIC_MOUNTS = frozenset({"static-offline-docs", "corridor-static"})
"""Mounts anyone may read: the pages' scripts and styles, no data."""

ASYNCAPI_PAGE = "/asyncapi"


def offline_app(*, title: str, **kwargs: Any) -> FastAPI:
    """A FastAPI application whose /docs, /redoc and /asyncapi pages need nothing but the service."""
    description = kwargs.pop("description", "")
    link = (
        f"The service's Kafka interface (events it publishes and consumes) is described at "
        f"[{ASYNCAPI_PAGE}]({ASYNCAPI_PAGE}) (AsyncAPI 3.0; the document itself at "
        f"`/asyncapi.json`, for any authenticated caller)."
    )
    app = FastAPIOffline(title=title, description=f"{description}\n\n{link}".strip(), **kwargs)
    app.mount(CORRIDOR_ASSETS, StaticFiles(directory=STATIC), name="corridor-static")
    # fastapi-offline adds /docs and /redoc as routes of its own (FastAPI's docs_url is None).
    app.state.public_paths = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect", ASYNCAPI_PAGE})
    app.state.public_mounts = PUBLIC_MOUNTS
    app.add_api_route(
        ASYNCAPI_PAGE,
        _asyncapi_page(title),
        methods=["GET"],
        include_in_schema=False,
        response_class=HTMLResponse,
    )
    return app


def _asyncapi_page(title: str) -> Any:
    # The document is for authenticated callers only (as /asyncapi.json): the page asks for the
    # bearer token a person already uses with the API, keeps it for the browser tab only, and
    # fetches the document with it. The page itself holds no data and is public, like /docs.
    html = _PAGE.replace("{title}", title).replace("{assets}", f"{CORRIDOR_ASSETS}/asyncapi")

    async def page() -> HTMLResponse:
        return HTMLResponse(html)

    return page


_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - AsyncAPI</title>
  <link rel="stylesheet" href="{assets}/asyncapi-react.css">
  <style>
    body { font-family: sans-serif; margin: 0; }
    #token-form { padding: 1rem 2rem; background: #f3f4f6; border-bottom: 1px solid #d1d5db; }
    #token-form input { width: 40rem; max-width: 90%; font-family: monospace; }
    #problem { color: #b91c1c; }
  </style>
</head>
<body>
  <form id="token-form">
    <label for="token">Bearer token (the one you use with this API; kept for this tab only)</label><br>
    <input id="token" name="token" type="password" autocomplete="off">
    <button type="submit">Show the Kafka interface</button>
    <span id="problem" role="alert"></span>
  </form>
  <div id="asyncapi"></div>
  <script src="{assets}/asyncapi-react.js"></script>
  <script>
    const form = document.getElementById("token-form");
    const problem = document.getElementById("problem");
    async function show(token) {
      problem.textContent = "";
      const answer = await fetch("asyncapi.json", { headers: { Authorization: "Bearer " + token } });
      if (!answer.ok) {
        problem.textContent = answer.status === 401 || answer.status === 403
          ? "This token is not accepted (" + answer.status + ")."
          : "The service answered " + answer.status + ".";
        return;
      }
      sessionStorage.setItem("corridor-token", token);
      AsyncApiStandalone.render(
        { schema: await answer.text(), config: { show: { sidebar: true } } },
        document.getElementById("asyncapi"),
      );
      form.hidden = true;
    }
    form.addEventListener("submit", (e) => { e.preventDefault(); show(document.getElementById("token").value.trim()); });
    const kept = sessionStorage.getItem("corridor-token");
    if (kept) show(kept);
  </script>
</body>
</html>
"""
