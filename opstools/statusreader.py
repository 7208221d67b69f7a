"""Read the public status stream into per-case timelines (demo, tests, operations tooling)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer

from contracts import topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.status import CaseStatus, CaseStatusChanged, illegal_steps
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of

# The platform's own services; anything else on the stream (a test's or a fuzzer's records) is not
# held to the legal transitions.
PLATFORM_SOURCE = re.compile(r"^/missions/[A-Z]{3}/(intake|eligibility|transport|border_clearance)$")


class StatusStream:
    """Follows ``corridor.case-status`` from the beginning, without a consumer group."""

    def __init__(self, access: KafkaAccess) -> None:
        self._access = access
        self._consumer = AIOKafkaConsumer(
            **access.aiokafka(), enable_auto_commit=False, auto_offset_reset="earliest"
        )
        self.timelines: dict[uuid.UUID, list[CloudEvent]] = defaultdict(list)
        self.raw_count = 0
        # Records of an event already read (same ce_source and ce_id): at-least-once delivery shows
        # here, per case, before the timelines drop them (each timeline holds an event once).
        self.repeats: Counter[uuid.UUID] = Counter()
        self.invalid: list[str] = []
        self._seen: set[tuple[str, str]] = set()
        self._reached: dict[uuid.UUID, set[CaseStatus]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        tps = await partitions_of(self._access, topics.STATUS)
        await self._consumer.start()
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _follow(self) -> None:
        async for record in self._consumer:
            self.raw_count += 1
            try:
                event = CloudEvent.from_record(decode_headers(record.headers), record.value)
            except Exception as exc:  # a reader of a shared stream must outlive any record on it
                self.invalid.append(f"{record.partition}@{record.offset}: {exc!r}"[:500])
                continue
            if not isinstance(event.data, CaseStatusChanged):
                continue
            if event.dedup_key in self._seen:
                self.repeats[event.data.case_id] += 1
                continue
            self._seen.add(event.dedup_key)
            self.timelines[event.data.case_id].append(event)
            self._reached[event.data.case_id].add(event.data.status)

    async def caught_up(self, timeout: float = 30.0) -> None:
        """Wait until every record on the stream now has been read: what was published before this
        call is in the timelines (the positive signal behind "nothing else happened")."""
        assigned = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(assigned)
        async with asyncio.timeout(timeout):
            for tp, end in ends.items():
                while await self._consumer.position(tp) < end:
                    if self._task is not None and self._task.done():
                        self._task.result()  # the reader died: say why
                    await asyncio.sleep(0.05)

    def illegal(self, registered: set[uuid.UUID] | None = None) -> dict[uuid.UUID, list[str]]:
        """Every case whose stream, as the platform published it, takes a step the legal
        transitions do not allow: the case's statuses, for the message. With ``registered`` (the
        cases intake registered), a case outside it entered the platform some other way (a test
        wrote its registration straight to intake.cases) and is judged from "registered" on."""
        found = {}
        for case_id, events in list(self.timelines.items()):
            statuses = [e.data.status for e in events if PLATFORM_SOURCE.match(e.source)]  # type: ignore[attr-defined]
            if not statuses:
                continue
            if (
                registered is not None
                and case_id not in registered
                and statuses[0] is not CaseStatus.REGISTERED
            ):
                statuses = [CaseStatus.REGISTERED, *statuses]
            if illegal_steps(statuses):
                found[case_id] = [s.value for s in statuses]
        return found

    def statuses(self, case_id: uuid.UUID) -> list[CaseStatus]:
        return [e.data.status for e in self.timelines.get(case_id, [])]  # type: ignore[attr-defined]

    async def wait_for(
        self, case_ids: Iterable[uuid.UUID], status: CaseStatus | set[CaseStatus], timeout: float = 60.0
    ) -> None:
        """Wait until every case has reached one of ``status``; TimeoutError says which did not."""
        wanted = {status} if isinstance(status, CaseStatus) else status
        pending = set(case_ids)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            pending = {c for c in pending if not wanted & self._reached[c]}
            if not pending:
                return
            if self._task is not None and self._task.done():
                self._task.result()  # the reader died: say why
            if asyncio.get_running_loop().time() > deadline:
                missing = {str(c): [s.value for s in self.statuses(c)] for c in list(pending)[:20]}
                raise TimeoutError(f"{len(pending)} case(s) never reached {sorted(wanted)}, e.g. {missing}")
            await asyncio.sleep(0.1)
