"""What every service's HTTP API shares beyond the runtime: types for response models, and the
HTTP server every process runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import uvicorn
from pydantic import BaseModel, PlainSerializer, WithJsonSchema

from corridor.settings import ServiceSettings

Timestamp = Annotated[
    datetime,
    # As Corridor's answers have always written times: ISO 8601 with the offset ("+00:00", not
    # pydantic's "Z"), so integrators' parsers see no change.
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A point in time in a response model."""


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema with every ``$ref`` replaced by what it names, for an OpenAPI
    operation that reads its body itself (``openapi_extra``): FastAPI registers only the models
    of its own parameters in the document's components."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def request_body(model: type[BaseModel], media_type: str, description: str = "") -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its body itself: the body it takes, documented."""
    body: dict[str, Any] = {"required": True, "content": {media_type: {"schema": inline_schema(model)}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def http_server(app: Any, settings: ServiceSettings, *, graceful_shutdown_seconds: int) -> uvicorn.Server:
    """The process's HTTP server. Its idle connections outlive its clients' (uvicorn's default, 5 s,
    equals httpx's: a client reusing a connection at the moment the server closed it got "Server
    disconnected without sending a response" instead of an answer)."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's records go through the process's JSON lines
            access_log=False,
            timeout_keep_alive=settings.http_keep_alive_seconds,
            timeout_graceful_shutdown=graceful_shutdown_seconds,
        )
    )
