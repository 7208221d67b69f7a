"""A link that loses answers, as a mobile link at a border post does."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except ConnectionError:
        pass
    finally:
        w.close()


class _Link:
    """A TCP relay to a service, listening on a port of its own while in use (``async with``: its
    base URL); what it does with each connection is the subclass's ``_relay``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class LosesTheFirstAnswer(_Link):
    """A TCP relay to a service that, on its first connection, passes the request on, waits until
    the service starts answering (it has committed) and then drops the connection: the answer is
    lost as on a mobile link. Later connections are relayed as they are."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.connections = 0

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        up_r, up_w = await asyncio.open_connection(self.host, self.port)
        if first:
            to_service = asyncio.create_task(_pipe(client_r, up_w))
            await up_r.read(1)  # the service answers: the command has taken effect
            to_service.cancel()
            for w in (client_w, up_w):
                w.transport.abort()
            return
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))


class HoldsTheAnswer(_Link):
    """A TCP relay that passes every request on and never passes an answer back: a client behind
    it waits until the service's side of the connection closes (the service died), then loses its
    connection. What the service answered, if it got that far, never reaches the client."""

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(self.host, self.port)
        forwarding = asyncio.create_task(_pipe(client_r, up_w))
        try:
            while await up_r.read(65536):  # the answer, dropped
                pass
        except ConnectionError:
            pass
        forwarding.cancel()
        for w in (client_w, up_w):
            w.transport.abort()
