"""What may go into a log line about bad input: never the input.

A dead letter's detail, a pydantic summary, an exception's message or PostgreSQL's error text can
quote the value they refuse (a name, a birth date, a document number), and logs are read by more
people, kept longer and shipped further than the restricted topics. Logs get the exception's type,
its SQLSTATE and a fingerprint of the detail instead; the detail itself stays on the dead letter
(``dlt_error``, a topic with its source's access rules), where the fingerprint finds it.
"""

from __future__ import annotations

import hashlib
import logging
import traceback

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corridor import problems

log = logging.getLogger(__name__)


def fingerprint(text: str) -> str:
    """A short, stable, one-way reference to a detail (the same detail, the same fingerprint)."""
    return hashlib.sha256(text.encode(errors="backslashreplace")).hexdigest()[:12]


def described(exc: BaseException) -> str:
    """The exception's type and SQLSTATE (asyncpg), never its message."""
    state = getattr(exc, "sqlstate", None)
    return type(exc).__name__ + (f" (SQLSTATE {state})" if isinstance(state, str) else "")


def detail_ref(detail: str) -> str:
    """How a log line refers to a detail it must not quote."""
    return f"detail of {len(detail)} chars, fingerprint {fingerprint(detail)}"


def frames(exc: BaseException) -> str:
    """Where an exception was raised (the stack's code lines), without its message."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


class RedactedServerErrors:
    """ASGI middleware: an exception no handler answered becomes a 500 with no detail, logged with
    its type and stack but not its message. (Starlette's own error middleware would have the
    server log the message, which may quote the request's data.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            instance = problems.occurrence()  # the caller's answer names this line
            log.error(
                "%s %s: unhandled %s (%s)\n%s",
                scope.get("method"),
                scope.get("path"),
                described(exc),
                instance,
                frames(exc),
            )
            if started:  # too late for a 500: the connection is dropped, without the message
                raise RuntimeError(f"unhandled {described(exc)}") from None
            await problems.send(scope, send, 500, "internal_error", "internal error", instance=instance)
