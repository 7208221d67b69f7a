"""Dead letters: list them, look at one, and replay chosen ones once the cause is fixed.

``python -m opstools.deadletters list|show|replay``. A consumer parks what it cannot handle on
``dlt.<consumer>`` with the original key, value and headers plus ``dlt_*`` headers saying why and
where from (``corridor.consumer.EventConsumer.dead_letter``). ``replay`` puts a dead letter back on
its source topic exactly as it was (``dlt_*`` headers removed, ``dlt_replayed_from`` and
``dlt_replay_count`` added) and writes a marker keyed by the dead letter's position to
``dlt.replays``, so the same dead letter is not replayed twice by accident.

Replaying is safe to repeat: consumers deduplicate on ``ce_source`` + ``ce_id``, so a record that was
in fact applied since (by a redelivery, or by another replay) changes nothing the second time.
A replay reaches every consumer group of the source topic, not only the one that dead-lettered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts import topics
from contracts.envelope import STRUCTURED_CONTENT_TYPE, decode_headers
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of, read_topic

DLT_PREFIX = topics.dead_letters("")
REPLAYS_TOPIC = "dlt.replays"
"""Replay markers, keyed ``<dlt topic>:<partition>:<offset>``; compacted. Not a dead-letter topic."""

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
REPLAYED_FROM = "dlt_replayed_from"
REPLAY_COUNT = "dlt_replay_count"


# --- model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayMarker:
    """One replay of one dead letter, as recorded on ``dlt.replays``."""

    dead_letter: str  # "<dlt topic>:<partition>:<offset>"
    source: str  # "<topic>@<partition>:<offset>" of the record that was dead-lettered
    replayed_to: str  # "<topic>:<partition>:<offset>" of the replayed record
    replay_count: int
    replayed_at: str
    operator: str
    ce_id: str | None = None
    ce_source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dead_letter": self.dead_letter,
            "source": self.source,
            "replayed_to": self.replayed_to,
            "replay_count": self.replay_count,
            "replayed_at": self.replayed_at,
            "operator": self.operator,
            "ce_id": self.ce_id,
            "ce_source": self.ce_source,
        }

    @classmethod
    def from_json(cls, raw: bytes) -> ReplayMarker | None:
        try:
            d = json.loads(raw)
            return cls(
                dead_letter=str(d["dead_letter"]),
                source=str(d.get("source", "")),
                replayed_to=str(d.get("replayed_to", "")),
                replay_count=int(d.get("replay_count", 1)),
                replayed_at=str(d.get("replayed_at", "")),
                operator=str(d.get("operator", "")),
                ce_id=d.get("ce_id"),
                ce_source=d.get("ce_source"),
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    error: str
    consumer: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    failed_at: datetime | None
    ce_id: str | None
    ce_type: str | None
    ce_source: str | None
    headers: list[tuple[str, bytes]]
    """The record's own headers, every ``dlt_*`` header removed."""
    replayed_from: str | None = None
    """Set when the dead-lettered record was itself a replay (of this dead letter)."""
    replay_count: int = 0
    """How often the dead-lettered record's event had been replayed before it failed again."""
    replays: tuple[ReplayMarker, ...] = ()
    """Replays of this very dead letter."""
    replayed_via: tuple[ReplayMarker, ...] = ()
    """Replays of the same source record from another dead letter (e.g. another consumer's)."""

    @property
    def position(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def source(self) -> str:
        p = "?" if self.source_partition is None else self.source_partition
        o = "?" if self.source_offset is None else self.source_offset
        return f"{self.source_topic or '?'}@{p}:{o}"

    @property
    def replayed(self) -> bool:
        return bool(self.replays or self.replayed_via)

    def value_text(self) -> tuple[str, str]:
        """``("utf-8", text)`` when the value decodes, else ``("hex", hex digits)``."""
        if self.value is None:
            return ("none", "")
        try:
            return ("utf-8", self.value.decode())
        except UnicodeDecodeError:
            return ("hex", self.value.hex())

    def to_json(self, *, include_value: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dead_letter": self.position,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": _text(self.key),
            "reason": self.reason,
            "error": self.error,
            "consumer": self.consumer,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "ce_id": self.ce_id,
            "ce_type": self.ce_type,
            "ce_source": self.ce_source,
            "headers": {k: _text(v) for k, v in self.headers},
            "value_bytes": None if self.value is None else len(self.value),
            "replayed_from": self.replayed_from,
            "replay_count": self.replay_count,
            "replayed": self.replayed,
            "replays": [m.to_json() for m in self.replays],
            "replayed_via": [m.to_json() for m in self.replayed_via],
        }
        if include_value:
            encoding, text = self.value_text()
            out["value_encoding"] = encoding
            out["value"] = text if self.value is not None else None
        return out


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode(errors="backslashreplace")


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def parse_dead_letter(record: ConsumerRecord[Any, Any]) -> DeadLetter:
    headers = decode_headers(record.headers)
    own = [(k, v) for k, v in headers if not k.startswith("dlt_")]
    # Last one wins: the consumer appends its dlt_* headers after whatever the record carried.
    dlt = {k: v.decode(errors="replace") for k, v in headers if k.startswith("dlt_")}
    ce = {k: v.decode(errors="replace") for k, v in own if k.startswith("ce_")}
    ce_id, ce_type, ce_source = ce.get("ce_id"), ce.get("ce_type"), ce.get("ce_source")
    content_type = dict(own).get("content-type", b"").decode(errors="replace").split(";")[0].strip()
    if content_type.lower() == STRUCTURED_CONTENT_TYPE and record.value:
        # RecursionError: a dead letter may well be JSON nested too deeply to parse.
        with contextlib.suppress(ValueError, UnicodeDecodeError, AttributeError, RecursionError):
            envelope = json.loads(record.value)
            ce_id = ce_id or _str_or_none(envelope.get("id"))
            ce_type = ce_type or _str_or_none(envelope.get("type"))
            ce_source = ce_source or _str_or_none(envelope.get("source"))
    failed_at = None
    if dlt.get("dlt_failed_at"):
        with contextlib.suppress(ValueError):
            failed_at = datetime.fromisoformat(dlt["dlt_failed_at"])
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        reason=dlt.get("dlt_reason", ""),
        error=dlt.get("dlt_error", ""),
        consumer=dlt.get("dlt_consumer", record.topic.removeprefix(DLT_PREFIX)),
        source_topic=dlt.get("dlt_source_topic", ""),
        source_partition=_int(dlt.get("dlt_source_partition")),
        source_offset=_int(dlt.get("dlt_source_offset")),
        failed_at=failed_at,
        ce_id=ce_id,
        ce_type=ce_type,
        ce_source=ce_source,
        headers=own,
        replayed_from=dlt.get(REPLAYED_FROM),
        replay_count=_int(dlt.get(REPLAY_COUNT)) or 0,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- reading -------------------------------------------------------------------------------------


async def _existing_topics(access: KafkaAccess) -> set[str]:
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def dead_letter_topic(consumer: str) -> str:
    topic = topics.dead_letters(consumer)
    if topic == REPLAYS_TOPIC:
        raise ValueError(f"{REPLAYS_TOPIC} holds replay markers, not dead letters")
    return topic


async def replay_markers(access: KafkaAccess) -> list[ReplayMarker]:
    """Every replay recorded on ``dlt.replays`` (none when the topic does not exist yet)."""
    if REPLAYS_TOPIC not in await _existing_topics(access):
        return []
    markers = []
    for record in await read_topic(access, REPLAYS_TOPIC):
        if record.value is not None and (marker := ReplayMarker.from_json(record.value)):
            markers.append(marker)
    return markers


def _with_replays(letters: Iterable[DeadLetter], markers: Sequence[ReplayMarker]) -> list[DeadLetter]:
    by_position: dict[str, list[ReplayMarker]] = {}
    by_source: dict[str, list[ReplayMarker]] = {}
    for m in markers:
        by_position.setdefault(m.dead_letter, []).append(m)
        by_source.setdefault(m.source, []).append(m)
    out = []
    for dl in letters:
        own = tuple(by_position.get(dl.position, ()))
        via = tuple(m for m in by_source.get(dl.source, ()) if m.dead_letter != dl.position)
        out.append(replace(dl, replays=own, replayed_via=via))
    return out


async def list_dead_letters(access: KafkaAccess, consumer: str | None = None) -> list[DeadLetter]:
    """Every dead letter of ``consumer`` (every ``dlt.*`` topic when None), oldest first per
    partition, each with the replays recorded for it."""
    existing = await _existing_topics(access)
    if consumer is not None:
        wanted = [dead_letter_topic(consumer)]
    else:
        wanted = [t for t in existing if t.startswith(DLT_PREFIX) and t != REPLAYS_TOPIC]
    wanted = sorted(t for t in wanted if t in existing)
    batches = await asyncio.gather(*(read_topic(access, t) for t in wanted))
    letters = [parse_dead_letter(r) for batch in batches for r in batch]
    markers = await replay_markers(access) if REPLAYS_TOPIC in existing else []
    return _with_replays(letters, markers)


async def get_dead_letter(access: KafkaAccess, topic: str, partition: int, offset: int) -> DeadLetter | None:
    """The dead letter at one position, or None when there is none (any more)."""
    if topic not in await _existing_topics(access):
        return None
    tp = TopicPartition(topic, partition)
    if tp not in await partitions_of(access, topic, timeout=10.0):
        return None
    consumer = AIOKafkaConsumer(**access.aiokafka(), enable_auto_commit=False)
    await consumer.start()
    record: ConsumerRecord[Any, Any] | None = None
    try:
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not begin <= offset < end:
            return None
        consumer.seek(tp, offset)
        async with asyncio.timeout(30):
            while record is None:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                record = next((r for r in batch.get(tp, []) if r.offset >= offset), None)
                if record is None and await consumer.position(tp) >= end:
                    return None
    finally:
        await consumer.stop()
    if record.offset != offset:
        return None  # a gap: a transaction marker or a compacted-away record
    markers = await replay_markers(access)
    return _with_replays([parse_dead_letter(record)], markers)[0]


# --- replaying -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayOutcome:
    dead_letter: DeadLetter
    action: str  # "replayed", "would replay", "skipped"
    detail: str = ""
    replay_count: int = 0
    replayed_to: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dead_letter": self.dead_letter.position,
            "action": self.action,
            "detail": self.detail,
            "replay_count": self.replay_count,
            "replayed_to": self.replayed_to,
            "source_topic": self.dead_letter.source_topic,
            "ce_id": self.dead_letter.ce_id,
        }


def replay_headers(dl: DeadLetter, replay_count: int) -> list[tuple[str, bytes]]:
    """The record's own headers, ``dlt_*`` removed, plus where and how often it was replayed."""
    return [
        *dl.headers,
        (REPLAYED_FROM, dl.position.encode()),
        (REPLAY_COUNT, str(replay_count).encode()),
    ]


async def ensure_replays_topic(access: KafkaAccess) -> None:
    """``dlt.replays`` is created, with its ACLs, by the admin step (opstools.kafkaadmin)."""
    if REPLAYS_TOPIC not in await _existing_topics(access):
        raise RuntimeError(
            f"{REPLAYS_TOPIC} does not exist or principal {access.username!r} may not see it: "
            "run python -m opstools.kafkaadmin apply"
        )


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


async def replay(
    access: KafkaAccess,
    dead_letters: Sequence[DeadLetter],
    *,
    again: bool = False,
    dry_run: bool = False,
) -> list[ReplayOutcome]:
    """Re-publish each dead letter to its source topic, in the order given, awaiting every ack.

    Skips a dead letter already replayed (per ``dlt.replays``), or whose source record was already
    replayed from another dead letter or earlier in this batch, unless ``again``.
    """
    markers = await replay_markers(access)
    done_positions: dict[str, int] = {}
    done_sources: dict[str, str] = {}
    for m in markers:
        done_positions[m.dead_letter] = done_positions.get(m.dead_letter, 0) + 1
        done_sources.setdefault(m.source, m.dead_letter)

    plan: list[tuple[DeadLetter, int]] = []
    outcomes: dict[int, ReplayOutcome] = {}
    for i, dl in enumerate(dead_letters):
        previous = done_positions.get(dl.position, 0)
        problem = _unreplayable(dl)
        if problem:
            outcomes[i] = ReplayOutcome(dl, "skipped", problem)
            continue
        if not again and previous:
            outcomes[i] = ReplayOutcome(
                dl, "skipped", f"already replayed {previous}x (use --again to replay it anyway)"
            )
            continue
        if not again and dl.source in done_sources:
            outcomes[i] = ReplayOutcome(
                dl,
                "skipped",
                f"its source record {dl.source} was already replayed from {done_sources[dl.source]} "
                "(use --again to replay it anyway)",
            )
            continue
        done_sources.setdefault(dl.source, dl.position)
        plan.append((dl, i))
        outcomes[i] = ReplayOutcome(dl, "would replay", replay_count=dl.replay_count + previous + 1)

    if dry_run or not plan:
        return [outcomes[i] for i in range(len(dead_letters))]

    await ensure_replays_topic(access)
    producer = AIOKafkaProducer(
        **access.aiokafka(),
        enable_idempotence=True,
        acks="all",
        client_id="corridor-deadletters",
    )
    await producer.start()
    try:
        for dl, i in plan:
            count = outcomes[i].replay_count
            meta = await producer.send_and_wait(
                dl.source_topic, key=dl.key, value=dl.value, headers=replay_headers(dl, count)
            )
            replayed_to = f"{meta.topic}:{meta.partition}:{meta.offset}"
            marker = ReplayMarker(
                dead_letter=dl.position,
                source=dl.source,
                replayed_to=replayed_to,
                replay_count=count,
                replayed_at=datetime.now(UTC).isoformat(),
                operator=_operator(),
                ce_id=dl.ce_id,
                ce_source=dl.ce_source,
            )
            # Written after the replay's ack: a crash in between leaves a replay without its
            # marker, so at worst a later run replays it again, which consumers deduplicate.
            await producer.send_and_wait(
                REPLAYS_TOPIC, key=dl.position.encode(), value=json.dumps(marker.to_json()).encode()
            )
            outcomes[i] = ReplayOutcome(dl, "replayed", replay_count=count, replayed_to=replayed_to)
    finally:
        await producer.stop()
    return [outcomes[i] for i in range(len(dead_letters))]


def _unreplayable(dl: DeadLetter) -> str | None:
    if not dl.source_topic:
        return "no dlt_source_topic header: nowhere to replay it to"
    if dl.source_topic.startswith(DLT_PREFIX):
        return f"source topic {dl.source_topic} is a dead-letter topic"
    return None


def choose(
    dead_letters: Sequence[DeadLetter],
    *,
    offsets: Sequence[tuple[int, int]] = (),
    reason: str | None = None,
    everything: bool = False,
) -> tuple[list[DeadLetter], list[tuple[int, int]]]:
    """The dead letters picked by exactly one selector; also the asked-for offsets not found."""
    if sum((bool(offsets), reason is not None, everything)) != 1:
        raise ValueError("choose exactly one of offsets, reason, everything")
    if everything:
        return list(dead_letters), []
    if reason is not None:
        return [d for d in dead_letters if d.reason == reason], []
    by_pos = {(d.partition, d.offset): d for d in dead_letters}
    chosen = [by_pos[o] for o in dict.fromkeys(offsets) if o in by_pos]
    missing = [o for o in dict.fromkeys(offsets) if o not in by_pos]
    return chosen, missing


# --- CLI -----------------------------------------------------------------------------------------

app = typer.Typer(
    rich_markup_mode=None,
    add_completion=False,
    no_args_is_help=True,
    help="List dead letters (dlt.<consumer>), show one, replay chosen ones after a fix.",
)
# Wide enough for a whole row when piped; a terminal's own width otherwise (the error gives way).
console = Console(width=None if Console().is_terminal else 240, highlight=False)

Bootstrap = Annotated[
    str,
    typer.Option(
        "--bootstrap", envvar="CORRIDOR_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers.", show_envvar=True
    ),
]

Username = Annotated[
    str | None,
    typer.Option(
        "--username",
        envvar="CORRIDOR_KAFKA_USERNAME",
        help="Your Kafka principal (the deployment's operations principal).",
        show_envvar=True,
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        envvar="CORRIDOR_KAFKA_PASSWORD_FILE",
        help="File holding the principal's password (or set CORRIDOR_KAFKA_PASSWORD).",
        show_envvar=True,
    ),
]


local_stack: Callable[[], KafkaAccess] | None = None
"""Where to go when neither options nor CORRIDOR_KAFKA_* say: the `corridor` command sets it to
the running local stack's broker and operations principal (nothing assumes a fixed port)."""


def _access(bootstrap: str, username: str | None, password_file: Path | None) -> KafkaAccess:
    """Credentials as every other client takes them: CORRIDOR_KAFKA_* and the options above."""
    told = bootstrap != DEFAULT_BOOTSTRAP or username is not None or password_file is not None
    if local_stack is not None and not told and "CORRIDOR_KAFKA_BOOTSTRAP" not in os.environ:
        return local_stack()
    env = dict(os.environ)
    env["CORRIDOR_KAFKA_BOOTSTRAP"] = bootstrap
    if username is not None:
        env["CORRIDOR_KAFKA_USERNAME"] = username
    if password_file is not None:
        env["CORRIDOR_KAFKA_PASSWORD_FILE"] = str(password_file)
        env.pop("CORRIDOR_KAFKA_PASSWORD", None)
    return KafkaAccess.from_env(env)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _replayed_cell(dl: DeadLetter) -> str:
    if dl.replays:
        return f"yes ({len(dl.replays)}x)"
    if dl.replayed_via:
        return f"via {dl.replayed_via[0].dead_letter}"
    return ""


@app.command("list")
def list_command(
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    username: Username = None,
    password_file: PasswordFile = None,
    consumer: Annotated[
        str | None, typer.Option("--consumer", help="Only dlt.<consumer>; default every dlt.* topic.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Only this dlt_reason code.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table.")] = False,
    values: Annotated[
        bool, typer.Option("--values", help="With --json: include the values (may hold personal data).")
    ] = False,
) -> None:
    """List dead letters, oldest first per partition; replayed ones are marked."""
    letters = asyncio.run(list_dead_letters(_access(bootstrap, username, password_file), consumer))
    if reason is not None:
        letters = [d for d in letters if d.reason == reason]
    if as_json:
        typer.echo(json.dumps([d.to_json(include_value=values) for d in letters], indent=2))
        return
    table = Table(title=f"Dead letters ({len(letters)})")
    table.add_column("dead letter", overflow="fold")
    table.add_column("failed at (UTC)")
    table.add_column("reason", overflow="fold")
    table.add_column("error")
    table.add_column("source", overflow="fold")
    table.add_column("ce_type", overflow="fold")
    table.add_column("ce_id", overflow="fold")
    table.add_column("replayed")
    for d in letters:
        table.add_row(
            escape(d.position),
            _when(d.failed_at),
            escape(d.reason),
            escape(_short(d.error, 70)),
            escape(d.source + (f" (replay #{d.replay_count})" if d.replayed_from else "")),
            escape((d.ce_type or "").removeprefix("org.corridor.")),
            escape(d.ce_id or ""),
            escape(_replayed_cell(d)),
        )
    console.print(table)


@app.command()
def show(
    address: Annotated[str, typer.Argument(help="dlt.<consumer>:<partition>:<offset>, as `list` prints it")],
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    username: Username = None,
    password_file: PasswordFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Show one dead letter: why it failed, where from, its headers and its value.

    The value is printed as it is (UTF-8 text, else hex): a registration carries personal data.
    """
    dlt_topic, partition, offset = _address(address)
    dl = asyncio.run(
        get_dead_letter(_access(bootstrap, username, password_file), dlt_topic, partition, offset)
    )
    if dl is None:
        console.print(f"[red]no dead letter at {escape(address)}[/]")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(dl.to_json(include_value=True), indent=2))
        return
    table = Table(title=f"Dead letter {escape(dl.position)}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("consumer", dl.consumer),
        ("reason", dl.reason),
        ("error", dl.error),
        ("failed at", dl.failed_at.isoformat() if dl.failed_at else ""),
        ("source", dl.source),
        ("key", _text(dl.key) or ""),
        ("ce_type", dl.ce_type or ""),
        ("ce_id", dl.ce_id or ""),
        ("ce_source", dl.ce_source or ""),
    ]
    if dl.replayed_from:
        rows.append(("was a replay of", f"{dl.replayed_from} (replay #{dl.replay_count})"))
    for m in dl.replays:
        rows.append(("replayed", f"{m.replayed_at} by {m.operator} -> {m.replayed_to} (#{m.replay_count})"))
    for m in dl.replayed_via:
        rows.append(("source replayed", f"from {m.dead_letter} at {m.replayed_at} -> {m.replayed_to}"))
    for k, v in dl.headers:
        rows.append((f"header {k}", _text(v) or ""))
    encoding, text = dl.value_text()
    rows.append((f"value ({encoding})", text))
    for name, value in rows:
        table.add_row(escape(name), escape(value))
    console.print(table)


def parse_address(raw: str) -> tuple[str, int, int]:
    """``dlt.<consumer>:<partition>:<offset>``: the one way every command names a dead letter."""
    topic, _, rest = raw.partition(":")
    partition, _, offset = rest.partition(":")
    if not topic.startswith(DLT_PREFIX) or not partition.isdigit() or not offset.isdigit():
        raise ValueError(f"{raw!r} is not dlt.<consumer>:<partition>:<offset> (as `list` prints it)")
    return topic, int(partition), int(offset)


def _address(raw: str) -> tuple[str, int, int]:
    try:
        return parse_address(raw)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("replay")
def replay_command(
    addresses: Annotated[
        list[str] | None,
        typer.Argument(help="dlt.<consumer>:<partition>:<offset> of each dead letter, as `list` prints it"),
    ] = None,
    consumer: Annotated[
        str | None, typer.Option("--consumer", help="With --reason or --all: replay from dlt.<consumer>.")
    ] = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    username: Username = None,
    password_file: PasswordFile = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Every dead letter of --consumer with this reason.")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every dead letter of --consumer.")] = False,
    again: Annotated[bool, typer.Option("--again", help="Replay even if replayed before.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table.")] = False,
) -> None:
    """Re-publish chosen dead letters to their source topic, as they were, once the cause is fixed.

    Each goes back with its original key, value and headers (dlt_* removed) plus dlt_replayed_from=<dlt topic>:<partition>:<offset> and dlt_replay_count, through an idempotent producer (acks=all); every ack is awaited. A marker on dlt.replays records each replay; a dead letter already replayed, or whose source record was already replayed from another consumer's dead letter, is skipped unless --again.

    Safe to repeat: consumers deduplicate on ce_source + ce_id, so a record that was in fact applied since is not applied twice. Every consumer of the source topic sees the replay: one that applied the event already skips it, one that still cannot handle it dead-letters it again.
    """
    wanted = [_address(a) for a in addresses or []]
    if sum((bool(wanted), reason is not None, everything)) != 1:
        raise typer.BadParameter("give dead letters' addresses, or --consumer with --reason or --all")
    if (reason is not None or everything) and consumer is None:
        raise typer.BadParameter("--reason and --all choose among one consumer's: give --consumer")
    access = _access(bootstrap, username, password_file)
    chosen: list[DeadLetter] = []
    missing: list[str] = []
    if wanted:
        topics_asked = dict.fromkeys(t for t, _, _ in wanted)
        for topic in topics_asked:
            letters = asyncio.run(list_dead_letters(access, topic.removeprefix(DLT_PREFIX)))
            offsets = [(p, o) for t, p, o in wanted if t == topic]
            found, gone = choose(letters, offsets=offsets)
            chosen += found
            missing += [f"{topic}:{p}:{o}" for p, o in gone]
    else:
        assert consumer is not None
        letters = asyncio.run(list_dead_letters(access, consumer))
        chosen, _ = choose(letters, reason=reason, everything=everything)
    if missing:
        console.print(f"[red]no dead letter at {escape(', '.join(missing))}[/]")
        raise typer.Exit(1)
    if not chosen:
        if as_json:
            typer.echo("[]")
        else:
            console.print("nothing to replay")
        return
    outcomes = asyncio.run(replay(access, chosen, again=again, dry_run=dry_run))
    if as_json:
        typer.echo(json.dumps([o.to_json() for o in outcomes], indent=2))
        return
    title = "Replay (dry run)" if dry_run else "Replay"
    table = Table(title=title)
    for col in ("dead letter", "reason", "ce_id", "action", "to", "count", "detail"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        style = {"replayed": "green", "would replay": "cyan"}.get(o.action, "yellow")
        table.add_row(
            escape(o.dead_letter.position),
            escape(o.dead_letter.reason),
            escape(o.dead_letter.ce_id or ""),
            f"[{style}]{o.action}[/]",
            escape(o.replayed_to or o.dead_letter.source_topic),
            str(o.replay_count or ""),
            escape(o.detail),
        )
    console.print(table)
    skipped = sum(o.action == "skipped" for o in outcomes)
    if dry_run:
        console.print(f"{len(outcomes) - skipped} would be replayed, {skipped} skipped (dry run)")
    else:
        console.print(f"{sum(o.action == 'replayed' for o in outcomes)} replayed, {skipped} skipped")


if __name__ == "__main__":
    app()
