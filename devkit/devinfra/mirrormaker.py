"""MirrorMaker 2 as a local process: shared topics copied from other missions' clusters into one.

One ``MirrorMaker`` runs the dedicated MM2 driver (``org.apache.kafka.connect.mirror.MirrorMaker
--clusters <target>``) for one TARGET cluster, as the mission that owns it would: it pulls every
flow ``source -> target`` into that cluster and writes nothing anywhere else. Topic names are kept
(``IdentityReplicationPolicy``); with no cycle detection then, ``check_flows`` refuses a topic
mirrored around a loop of clusters. Records are copied exactly once into the target (transactions
that carry MM2's source position), for consumers that read committed records.

On each source cluster MM2 only reads (its principal there holds Read on the mirrored topics,
nothing else). On the target it keeps Connect's three internal topics per source
(``mm2-{configs,offsets,status}.<source>.internal``), joins its Connect group (``<source>-mm2``),
uses its transactional ids and writes the mirrored topics, which the admin step creates
beforehand. ``mirror_acls`` lists exactly that; docs/mirrormaker.md says what each is for.

MM2's jars come from Maven Central (deploy/mirrormaker/pom.xml). ``connect-mirror`` 4.4.0, the
brokers' version, is not published: MM2 runs 4.3.1 on a classpath of its own.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from corridor.kafkaclient import KafkaAccess, write_secret
from devkit.devinfra import jvm, procs
from devkit.kafkatool import client_properties
from opstools.mirroring import (  # re-exported: what a stack that runs MM2 names flows with
    MirrorFlow,
    check_flows,
    connect_group,
    connect_topics,
    mirror_acls,
    transactional_ids,
)

__all__ = [
    "MirrorFlow",
    "MirrorMaker",
    "check_flows",
    "connect_group",
    "connect_topics",
    "ensure_mirrormaker_classpath",
    "mirror_acls",
    "mm2_properties",
    "transactional_ids",
]

MIRRORMAKER_VERSION = "4.3.1"

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_PATH = REPO_ROOT / "deploy" / "mirrormaker" / "pom.xml"
LOG4J2_CONFIG = REPO_ROOT / "deploy" / "mirrormaker" / "log4j2.yaml"
CACHE_DIR = REPO_ROOT / ".cache" / f"mirrormaker-{MIRRORMAKER_VERSION}"

MAIN_CLASS = "org.apache.kafka.connect.mirror.MirrorMaker"
_REPLICATING = re.compile(
    r"replicating \d+ topic-partitions (?P<source>[a-z0-9]+)->(?P<target>[a-z0-9]+): \[(?P<partitions>[^\]]*)\]"
)
"""MirrorSourceTask's line once its consumer is assigned and positioned"""
_STOP_GRACE_S = 30.0


def ensure_mirrormaker_classpath() -> Path:
    """Directory of MirrorMaker 2's runtime jars (``-cp '<dir>/*'``), fetched once by Maven."""
    return jvm.ensure_maven_classpath(
        POM_PATH, CACHE_DIR, expect="connect-mirror-*.jar", what=f"MirrorMaker {MIRRORMAKER_VERSION}"
    )


# --------------------------------------------------------------------------- configuration


def _regex_list(names: Iterable[str]) -> str:
    """MM2's ``topics`` is a list of Java regexes: each name quoted to match itself only."""
    return ",".join(re.sub(r"([^A-Za-z0-9_-])", r"\\\\\1", name) for name in sorted(names))


def _cluster_lines(alias: str, access: KafkaAccess, secrets_file: Path) -> tuple[list[str], list[str]]:
    """(public lines, secret lines) of one cluster's client settings, each key under ``alias.``."""
    public: list[str] = []
    secret: list[str] = []
    for line in client_properties(access).splitlines():
        key, _, _value = line.partition("=")
        if key == "sasl.jaas.config":
            secret.append(f"{alias}.{line}")
            public.append(f"{alias}.{key}=${{file:{secrets_file}:{alias}.{key}}}")
        else:
            public.append(f"{alias}.{line}")
    return [f"{alias}.bootstrap.servers={access.bootstrap}", *public], secret


def mm2_properties(
    target: str, clusters: Mapping[str, KafkaAccess], flows: Sequence[MirrorFlow], secrets_file: Path
) -> tuple[str, str]:
    """(mm2.properties, the secrets file) for one MM2 that pulls ``flows`` into ``target``."""
    check_flows(flows)
    mine = [f for f in flows if f.target == target]
    if not mine:
        raise ValueError(f"no flow into {target}")
    if any(f.target != target for f in flows):
        raise ValueError(
            f"this MirrorMaker writes only into {target}; flows into other clusters need their own"
        )
    sources = sorted({f.source for f in mine})
    missing = [a for a in [target, *sources] if a not in clusters]
    if missing:
        raise ValueError(f"no access given for cluster(s) {missing}")
    lines = [
        "# Written by devkit/devinfra/mirrormaker.py; credentials are in the secrets file (mode 600).",
        f"clusters={','.join([target, *sources])}",
        "config.providers=file",
        "config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider",
        # Names kept: services on the target subscribe to the same topics as on the source.
        "replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        # The broker's default replication factor (1 on a single-node cluster, 3 on three nodes)
        # for the topics MM2 creates, as for the admin step's.
        "replication.factor=-1",
        "config.storage.replication.factor=-1",
        "offset.storage.replication.factor=-1",
        "status.storage.replication.factor=-1",
        "heartbeats.topic.replication.factor=-1",
        "checkpoints.topic.replication.factor=-1",
        # Nothing but the records: a mission's MM2 only reads on the source and writes nothing there.
        # Topics, their configuration and ACLs are the admin step's on each cluster; heartbeats and
        # checkpoints (consumer offset translation) serve failing a consumer group over between
        # clusters, which never happens here: each cluster's services have their own groups.
        # Without offset syncs (which only checkpoints read) MM2 needs no topic of its own.
        "sync.topic.configs.enabled=false",
        "sync.topic.acls.enabled=false",
        "emit.heartbeats.enabled=false",
        "emit.checkpoints.enabled=false",
        "sync.group.offsets.enabled=false",
        "emit.offset-syncs.enabled=false",
        # A handful of topics on loopback: one task per flow is plenty, and two cores are shared.
        "tasks.max=1",
        # Topics are exact names made by the admin step: a new one is picked up within seconds.
        "refresh.topics.interval.seconds=5",
        "refresh.groups.interval.seconds=600",
        # Exactly once into the target (KIP-618): each batch MM2 reads is written in a transaction
        # together with its source position, so a crash or kill copies nothing twice for a
        # read_committed consumer (an aborted batch stays in the log, invisible to it). Needs
        # Write on the herder's transactional ids (``transactional_ids``).
        f"{target}.exactly.once.source.support=enabled",
        # A killed MM2 leaves its last transaction open, and its restart reads its positions
        # read_committed: it waits until the broker aborts that transaction, after this timeout
        # (default 60 s; the broker looks every 10 s). Batches commit in milliseconds here.
        f"{target}.producer.transaction.timeout.ms=10000",
        # One partition for positions and statuses: a few flows, on clusters of one to three nodes.
        f"{target}.offset.storage.partitions=1",
        f"{target}.status.storage.partitions=1",
        # Scanning the classpath for plugins costs 3-4 s at every start; the jars declare theirs.
        # Read by MM2's driver at the top level and by each herder's worker from its target's keys.
        "plugin.discovery=service_load",
        f"{target}.plugin.discovery=service_load",
        # Sent as soon as read: records are few and small, latency is what matters.
        f"{target}.producer.linger.ms=0",
        f"{target}.producer.acks=all",
        f"{target}.producer.enable.idempotence=true",
    ]
    secret_lines: list[str] = []
    for alias in [target, *sources]:
        public, secret = _cluster_lines(alias, clusters[alias], secrets_file)
        lines += public
        secret_lines += secret
    for source in sources:
        names = {t for f in mine if f.source == source for t in f.topics}
        pair = f"{source}->{target}"
        lines += [f"{pair}.enabled=true", f"{pair}.topics={_regex_list(names)}"]
    return "\n".join(lines) + "\n", "\n".join(secret_lines) + "\n"


# --------------------------------------------------------------------------- process


class MirrorMaker:
    """One MM2 process that pulls every flow into ONE target cluster (a mission runs its own)."""

    def __init__(
        self,
        workdir: Path,
        target: str,
        clusters: Mapping[str, KafkaAccess],
        flows: Sequence[MirrorFlow],
        *,
        heap_mb: int = 256,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.target = target
        self.clusters = dict(clusters)
        self.flows = list(flows)
        self.heap_mb = heap_mb
        self.start_seconds = 0.0
        """How long the last start() took (JVM launch to replicating every flow)"""
        self._proc: subprocess.Popen[bytes] | None = None
        mm2_properties(target, self.clusters, self.flows, self.secrets_path)  # refuse bad flows now

    @property
    def properties_path(self) -> Path:
        return self.workdir / "mm2.properties"

    @property
    def secrets_path(self) -> Path:
        return self.workdir / "mm2-secrets.properties"

    @property
    def log_path(self) -> Path:
        return self.workdir / "logs" / "mirrormaker.log"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "stdout.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _command(self, lib: Path) -> list[str]:
        return [
            jvm.java(),
            # C1 alone: MM2 copies a few records a second here; a quicker start matters more.
            "-XX:TieredStopAtLevel=1",
            *jvm.server_options(self.heap_mb),
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            f"-Dmirrormaker.logs.dir={self.log_path.parent}",
            "-cp",
            f"{lib}/*",
            MAIN_CLASS,
            str(self.properties_path),
            "--clusters",
            self.target,
        ]

    def start(self, timeout: float = 180.0) -> None:
        """Start MM2 and return once it replicates every flow.

        Waits for MM2's own log to say "Kafka MirrorMaker started" (it has launched its herders:
        not yet enough) and, for each source, that its MirrorSourceTask is "replicating N
        topic-partitions <source>-><target>: [...]" listing exactly that flow's topics: the task
        has joined, assigned and positioned its consumer, so a record written from then on is
        copied. Most of the 7-30 s goes to each herder reading Connect's three internal topics
        and joining its group, one after the other.
        """
        if self.pid is not None:
            raise RuntimeError("MirrorMaker is already running")
        lib = ensure_mirrormaker_classpath()  # the one-time fetch does not count against timeout
        started = time.monotonic()
        public, secret = mm2_properties(self.target, self.clusters, self.flows, self.secrets_path)
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_secret(self.secrets_path, secret)
        self.properties_path.write_text(public)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        offset = self.log_path.stat().st_size
        self._proc = procs.spawn(
            self._command(lib), self.stdout_path, cwd=self.workdir, stop_signal=signal.SIGTERM
        )
        # What each source's task must say it replicates: every partition of exactly that flow's
        # topics (a task of an earlier configuration, still in the config topic, may speak first).
        wanted = {
            source: {t for f in self.flows if f.source == source for t in f.topics}
            for source in {f.source for f in self.flows}
        }
        started_line = False
        deadline = started + timeout
        while not started_line or wanted:
            if self._proc.poll() is not None:
                raise self._failure(f"MirrorMaker exited during start (exit {self._proc.returncode})")
            if time.monotonic() > deadline:
                waiting = [f"{s}->{self.target} {sorted(t)}" for s, t in wanted.items()]
                if not started_line:
                    waiting.insert(0, "'Kafka MirrorMaker started'")
                raise self._failure(
                    f"MirrorMaker not replicating after {timeout:.0f} s: waiting for {waiting}"
                )
            for line in self._new_lines(offset):
                started_line = started_line or "Kafka MirrorMaker started" in line
                found = _REPLICATING.search(line)
                if found and found["target"] == self.target:
                    partitions = [p.strip() for p in found["partitions"].split(",") if p.strip()]
                    if {p.rsplit("-", 1)[0] for p in partitions} == wanted.get(found["source"]):
                        del wanted[found["source"]]
            time.sleep(0.25)
        self.start_seconds = time.monotonic() - started

    def _new_lines(self, offset: int) -> list[str]:
        with contextlib.suppress(OSError), self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace").splitlines()
        return []

    def problems(self, last: int = 30) -> str:
        """The last warnings and errors of MM2's log, and the tail of its stdout: what a test quotes
        when records did not come (a task that failed stays failed; only its log says why)."""
        lines = [
            line
            for line in procs.tail(self.log_path, 2000).splitlines()
            if " ERROR " in line or " WARN " in line
        ]
        return (
            f"--- warnings and errors in {self.log_path}:\n"
            + "\n".join(lines[-last:])
            + f"\n--- stdout {self.stdout_path}:\n{procs.tail(self.stdout_path, 15)}"
        )

    def _failure(self, message: str) -> RuntimeError:
        problems = self.problems()
        self.kill()
        return RuntimeError(f"{message}\n{problems}")

    def stop(self) -> None:
        """SIGTERM (MM2 stops its herders and commits its position), SIGKILL after 30 s.

        Stop it before the clusters it talks to: without them it waits on every client's timeout."""
        if self._proc is not None:
            procs.terminate(self._proc, signal.SIGTERM, grace=_STOP_GRACE_S)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would (for outage tests)."""
        if self._proc is not None:
            procs.kill(self._proc)
        self._proc = None

    def rss_bytes(self) -> int:
        """Resident memory of the running JVM (0 when it does not run)."""
        pid = self.pid
        if pid is None:
            return 0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0
