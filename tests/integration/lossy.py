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


async def _answer(r: asyncio.StreamReader) -> bytes:
    """An HTTP/1.1 answer as the service sent it: head, then the body its Content-Length gives."""
    head = await r.readuntil(b"\r\n\r\n")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    return head + await r.readexactly(lengths[0] if lengths else 0)


class LosesTheFirstAnswer(_Link):
    """A TCP relay to a service that, on its first connection, passes the request on, waits until
    the service starts answering (it has committed) and then drops the connection: the answer is
    lost as on a mobile link. Later connections are relayed as they are."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.connections = 0
        self.lost = b""
        """The answer the client never got, as the service sent it: for a test to compare a repeat's
        answer with what the first would have been."""

    @property
    def lost_answer(self) -> tuple[int, bytes]:
        """The lost answer's status and body."""
        head, _, body = self.lost.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        up_r, up_w = await asyncio.open_connection(self.host, self.port)
        if first:
            to_service = asyncio.create_task(_pipe(client_r, up_w))
            # The service answers: the command has taken effect. Its answer, kept here, is lost.
            self.lost = await _answer(up_r)
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
