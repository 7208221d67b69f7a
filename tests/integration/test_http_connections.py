"""Every process's HTTP server keeps an idle connection open longer than its clients do.

uvicorn's default closes one after 5 s idle, the very time httpx keeps it for reuse: a client that
sent a request at that moment met "Server disconnected without sending a response" (a CI run of
test_erasure did, between two erasure requests a few seconds apart). Mission clients, proxies and
the operations page reuse connections the same way.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from devkit.devstack import Stack

HTTPX_KEEPALIVE_SECONDS = 5.0  # httpx.Limits' default keepalive_expiry


async def ask_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One GET /health/live on an open connection; the status line of its answer."""
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: corridor\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0]


async def status_after_idle(url: str, idle: float) -> tuple[bytes, bytes]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        first = await ask_health(reader, writer)
        await asyncio.sleep(idle)
        try:
            second = await ask_health(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            second = b""
        return first, second
    finally:
        writer.close()


async def test_an_idle_connection_outlives_a_clients_keepalive_on_every_process(stack: Stack) -> None:
    urls = {name: stack.url(name) for name in stack.specs}
    # Stopped after, like every test's page: the rest of the session does without its polling.
    urls["operations"] = stack.start_operations_page()
    try:
        idle = HTTPX_KEEPALIVE_SECONDS + 1.5
        answers = await asyncio.gather(*(status_after_idle(url, idle) for url in urls.values()))
    finally:
        stack.stop_operations_page()
    assert dict(zip(urls, answers, strict=True)) == {
        name: (b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK") for name in urls
    }
