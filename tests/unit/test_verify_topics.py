"""A service checks at start that its topics exist: a broker of several being down at that moment
(its metadata still names it) delays the check, it does not stop the service; anything else does."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from aiokafka.errors import NodeNotReadyError, TopicAuthorizationFailedError

from corridor import runtime
from corridor.kafkaclient import KafkaAccess

ACCESS = KafkaAccess(bootstrap="127.0.0.1:1", username="transport", password="x")


class Admin:
    """``AIOKafkaAdminClient`` answering ``list_topics`` from a script: an error is raised."""

    script: ClassVar[list[Any]] = []

    def __init__(self, **_: Any) -> None:
        self.closed = False

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def list_topics(self) -> list[str]:
        answer = Admin.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return list(answer)


@pytest.fixture(autouse=True)
def admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "AIOKafkaAdminClient", Admin)


async def test_a_broker_down_at_start_only_delays_the_check() -> None:
    Admin.script = [NodeNotReadyError("node 3"), NodeNotReadyError("node 3"), ["corridor.case-status"]]
    await runtime.verify_topics(ACCESS, ["corridor.case-status"])
    assert Admin.script == []


async def test_an_error_that_another_try_cannot_mend_stops_the_start() -> None:
    Admin.script = [TopicAuthorizationFailedError("no"), ["corridor.case-status"]]
    with pytest.raises(TopicAuthorizationFailedError):
        await runtime.verify_topics(ACCESS, ["corridor.case-status"])


async def test_a_broker_down_for_longer_than_the_wait_stops_the_start() -> None:
    Admin.script = [NodeNotReadyError("node 3")] * 3
    with pytest.raises(NodeNotReadyError):
        await runtime.verify_topics(ACCESS, ["corridor.case-status"], timeout=-1)


async def test_a_missing_topic_still_stops_the_start() -> None:
    Admin.script = [[]]
    with pytest.raises(runtime.MissingTopics):
        await runtime.verify_topics(ACCESS, ["corridor.case-status"], timeout=-1)
