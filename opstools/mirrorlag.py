"""How far behind a mission's mirrored topics are: MirrorMaker 2's position against the source.

A mission that receives topics from another mission's cluster holds one credential there, its
MM2 principal (Read on the mirrored topics and nothing else), and the same principal on its own
cluster, where MM2 keeps its position per source partition in Connect's offsets topic
(``mm2-offsets.<source>.internal``, written in the same transaction as the copied records). So
with exactly the credentials MM2 runs with, per mirrored partition:

* ``records_behind`` = the source's end offset minus the next offset MM2 will copy;
* ``oldest_pending_seconds`` = the age of the first record not copied yet (0 when caught up):
  how long ago the oldest thing the receiving mission has not seen was written.

Comparing end offsets of source and target would not do: MM2 does not keep offsets, and each
transaction adds a marker to the target's log.

    python -m opstools.mirrorlag --source kaz --target uzb --topic transport.manifests.KAZ-UZB-1 \\
        --source-bootstrap kaz-kafka:9093 --source-cafile kaz-ca.pem --target-bootstrap 127.0.0.1:9192 \\
        --user uzb-mm2 --password-file secrets/uzb-mm2.password
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import SecretStr

from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of, read_topic

CONNECTOR = "MirrorSourceConnector"


def offsets_topic(source: str) -> str:
    """Where MM2's herder for ``source`` keeps its source positions, on the target cluster."""
    return f"mm2-offsets.{source}.internal"


@dataclass(frozen=True)
class PartitionLag:
    source: str
    target: str
    topic: str
    partition: int
    source_end: int
    """the offset the next record written on the source gets"""
    next_to_copy: int
    """the source offset MM2 copies next (the partition's start when it has copied nothing yet)"""
    oldest_pending_seconds: float
    """age of the record at ``next_to_copy`` (0 when nothing is pending)"""

    @property
    def records_behind(self) -> int:
        return max(0, self.source_end - self.next_to_copy)


async def _mm2_positions(target: KafkaAccess, source: str) -> dict[tuple[str, int], int]:
    """(topic, partition) -> next source offset to copy, from MM2's committed positions."""
    try:
        await partitions_of(target, offsets_topic(source), timeout=2.0)
    except TimeoutError:
        return {}  # no offsets topic: MM2 has never run, nothing is copied
    records = await read_topic(target, offsets_topic(source), isolation_level="read_committed")
    positions: dict[tuple[str, int], int] = {}
    for record in records:
        try:
            name, where = json.loads(record.key or b"null")
            key = (str(where["topic"]), int(where["partition"]))
        except (TypeError, ValueError, KeyError):
            continue  # a record of another kind (none today)
        if name != CONNECTOR or where.get("cluster") != source:
            continue
        if record.value is None:
            positions.pop(key, None)
        else:
            positions[key] = int(json.loads(record.value)["offset"]) + 1
    return positions


async def mirror_lag(
    source: str,
    target: str,
    topics: Sequence[str],
    source_access: KafkaAccess,
    target_access: KafkaAccess,
    *,
    timeout: float = 10.0,
) -> list[PartitionLag]:
    """Each mirrored partition's lag (``source_access``: Read on ``topics`` on the source cluster;
    ``target_access``: Read on MM2's offsets topic on the target, as MM2's own principal has)."""
    positions = await _mm2_positions(target_access, source)
    tps = [tp for topic in topics for tp in await partitions_of(source_access, topic, timeout)]
    consumer = AIOKafkaConsumer(
        **source_access.aiokafka(), isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    found: list[PartitionLag] = []
    try:
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        now_ms = time.time() * 1000
        for tp in tps:
            nxt = max(positions.get((tp.topic, tp.partition), starts[tp]), starts[tp])
            age = 0.0
            if nxt < ends[tp]:
                consumer.assign([tp])
                consumer.seek(tp, nxt)
                batch = await consumer.getmany(tp, timeout_ms=int(timeout * 1000), max_records=1)
                records = batch.get(tp, [])
                if records:
                    age = max(0.0, (now_ms - records[0].timestamp) / 1000)
            found.append(PartitionLag(source, target, tp.topic, tp.partition, ends[tp], nxt, age))
    finally:
        await consumer.stop()
    return found


class MirrorLagCollector(Collector):
    """The last ``refresh()``'s lags as Prometheus gauges, per mirrored topic (labels: source and
    target cluster aliases and the topic, all from the deployment's flows: bounded)."""

    def __init__(self) -> None:
        self.lags: list[PartitionLag] = []
        self.refreshed_at = 0.0

    def update(self, lags: Sequence[PartitionLag]) -> None:
        self.lags = list(lags)
        self.refreshed_at = time.time()

    def collect(self) -> Iterator[Metric]:
        behind = GaugeMetricFamily(
            "corridor_mirror_records_behind",
            "Records on the source cluster that MirrorMaker 2 has not copied to the target yet",
            labels=["source", "target", "topic"],
        )
        age = GaugeMetricFamily(
            "corridor_mirror_oldest_pending_seconds",
            "Age of the oldest record MirrorMaker 2 has not copied yet (0: caught up)",
            labels=["source", "target", "topic"],
        )
        per_topic: dict[tuple[str, str, str], list[PartitionLag]] = {}
        for lag in self.lags:
            per_topic.setdefault((lag.source, lag.target, lag.topic), []).append(lag)
        for labels, lags in sorted(per_topic.items()):
            behind.add_metric(list(labels), sum(x.records_behind for x in lags))
            age.add_metric(list(labels), max(x.oldest_pending_seconds for x in lags))
        yield behind
        yield age
        if self.refreshed_at:
            yield GaugeMetricFamily(
                "corridor_mirror_lag_checked_timestamp_seconds",
                "When the mirror lag was last measured",
                value=self.refreshed_at,
            )


# --- CLI -----------------------------------------------------------------------------------------

app = typer.Typer(rich_markup_mode=None, add_completion=False, help=__doc__.split("\n\n")[0])


@app.command()
def main(
    source: Annotated[str, typer.Option("--source", help="Source cluster alias (as MM2 names it)")],
    target: Annotated[str, typer.Option("--target", help="Target cluster alias")],
    topics: Annotated[list[str], typer.Option("--topic", help="A mirrored topic (repeat)")],
    source_bootstrap: Annotated[str, typer.Option("--source-bootstrap")],
    target_bootstrap: Annotated[str, typer.Option("--target-bootstrap")],
    user: Annotated[str, typer.Option("--user", help="The MM2 principal (on both clusters)")],
    password_file: Annotated[Path, typer.Option("--password-file", exists=True, dir_okay=False)],
    source_password_file: Annotated[
        Path | None,
        typer.Option(
            "--source-password-file",
            help="Its password on the source, when not the same as on the target",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    source_cafile: Annotated[
        Path | None, typer.Option("--source-cafile", help="CA of the source's SASL_SSL listener", exists=True)
    ] = None,
    target_cafile: Annotated[
        Path | None, typer.Option("--target-cafile", help="CA of the target's SASL_SSL listener", exists=True)
    ] = None,
    max_behind: Annotated[
        int | None, typer.Option("--max-behind", help="Exit 1 if a partition is further behind")
    ] = None,
    serve: Annotated[
        int | None,
        typer.Option(
            "--serve",
            help="Instead of printing once: serve the figures as Prometheus gauges on this port "
            "(127.0.0.1), measured again every --every seconds, until stopped",
        ),
    ] = None,
    every: Annotated[float, typer.Option("--every", help="Seconds between measurements with --serve")] = 15.0,
) -> None:
    """Print each mirrored partition's lag as JSON lines (or serve it to Prometheus)."""
    source_access, target_access = (
        KafkaAccess(
            bootstrap=bootstrap,
            username=user,
            password=SecretStr(secret.read_text().strip()),
            security_protocol="SASL_SSL" if cafile else "SASL_PLAINTEXT",
            ssl_cafile=cafile,
        )
        for bootstrap, cafile, secret in (
            (source_bootstrap, source_cafile, source_password_file or password_file),
            (target_bootstrap, target_cafile, password_file),
        )
    )
    if serve is not None:
        asyncio.run(_serve(serve, every, source, target, topics, source_access, target_access))
        return
    lags = asyncio.run(mirror_lag(source, target, topics, source_access, target_access))
    for lag in lags:
        typer.echo(json.dumps({**lag.__dict__, "records_behind": lag.records_behind}))
    if max_behind is not None and any(lag.records_behind > max_behind for lag in lags):
        raise typer.Exit(1)


async def _serve(
    port: int,
    every: float,
    source: str,
    target: str,
    topics: Sequence[str],
    source_access: KafkaAccess,
    target_access: KafkaAccess,
) -> None:
    """Measure every ``every`` seconds and serve the last figures at ``/metrics``: a scrape never
    waits on either cluster, and a link that cannot be measured keeps its last figures, with
    ``corridor_mirror_lag_checked_timestamp_seconds`` saying how old they are."""
    registry = CollectorRegistry()
    collector = MirrorLagCollector()
    registry.register(collector)
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        while True:
            try:
                collector.update(await mirror_lag(source, target, topics, source_access, target_access))
            except Exception as exc:  # a cluster away: the age of the figures says so
                typer.echo(f"mirror lag not measured: {type(exc).__name__}: {exc}", err=True)
            await asyncio.sleep(every)
    finally:
        server.shutdown()
        thread.join()


def run(argv: list[str] | None = None) -> Any:
    return app(argv)


if __name__ == "__main__":
    sys.exit(app())
