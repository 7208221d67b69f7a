"""Real Apache Kafka brokers (KRaft) for tests and the local demo, without Docker.

The broker comes from Maven Central (deploy/kafka/pom.xml) and runs on the system JVM.
One node is a combined broker+controller formatted ``--standalone``; several nodes form
a static controller quorum with replication factor min(nodes, 3).

Security is on, as in production: clients authenticate with SASL/SCRAM-SHA-512, the
``StandardAuthorizer`` refuses whatever no ACL allows, and no topic is created on first use.
The super user ``admin`` gets its SCRAM credential when the storage is formatted; its password
is random per cluster workdir and kept in ``admin.password`` (mode 600), never printed. Every
other principal, its topics and its ACLs are the admin step's job (``opstools.kafkaadmin``).
The controller listener uses SASL/PLAIN: SCRAM credentials live in the metadata log the
controllers serve, so they cannot authenticate the controllers' own connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from corridor.kafkaclient import KafkaAccess, read_or_create_secret, write_secret
from devkit.devinfra import jvm, procs
from devkit.devinfra.tls import DevCertificates

KAFKA_VERSION = "4.4.0"

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_PATH = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J2_CONFIG = REPO_ROOT / "deploy" / "kafka" / "log4j2.yaml"
CACHE_DIR = REPO_ROOT / ".cache" / f"kafka-{KAFKA_VERSION}"

_log = logging.getLogger(__name__)

_FORMAT_TIMEOUT_S = 60.0
_STOP_GRACE_S = 20.0

ADMIN_USER = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"


def _pom_digest() -> str:
    return jvm.pom_digest(POM_PATH)


def ensure_kafka_classpath() -> Path:
    """Directory of the broker's runtime jars (``-cp '<dir>/*'``), fetched once by Maven."""
    return jvm.ensure_maven_classpath(
        POM_PATH, CACHE_DIR, expect="kafka_2.13-*.jar", what=f"the Kafka {KAFKA_VERSION} broker"
    )


_java = jvm.java


def _cds_archive() -> Path:
    """Where the AppCDS archive for this JVM and classpath lives.

    An archive only maps into the JVM build that wrote it (the JVM falls back to no
    archive otherwise), so its name carries the java binary's identity and the POM.
    """
    java = Path(_java()).resolve()
    st = java.stat()
    key = hashlib.sha256(f"{java}|{st.st_size}|{st.st_mtime_ns}|{_pom_digest()}".encode())
    path = CACHE_DIR / "cds" / f"broker-{key.hexdigest()[:16]}.jsa"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _new_cluster_id() -> str:
    # 16 random bytes, URL-safe base64 without padding: what `kafka-storage random-uuid`
    # prints. Kafka rejects ids that start with '-' (they look like CLI flags).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaCluster:
    """One or more local KRaft nodes, each a combined broker+controller JVM."""

    def __init__(
        self,
        workdir: Path,
        nodes: int = 1,
        heap_mb: int = 384,
        *,
        extra_config: Mapping[str, str] | None = None,
        quick_start: bool = True,
    ) -> None:
        """``extra_config`` overrides/adds server.properties keys on every node.

        ``quick_start`` runs the JVMs with the C1 JIT only and an AppCDS archive
        (recorded on the first clean stop, cached under .cache/): about half the start
        time, at some cost in peak throughput; turn it off for benchmarks.
        """
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.workdir = Path(workdir).resolve()
        self.nodes = nodes
        self.heap_mb = heap_mb
        self.extra_config: dict[str, str] = dict(extra_config or {})
        self.bootstrap_servers: str = ""
        self.cluster_id: str = ""
        self.broker_ports: list[int] = []
        self.tls_ports: list[int] = []
        """SASL_SSL listener of each node: the production shape, with a CA of this cluster's own"""
        self.tls_bootstrap_servers: str = ""
        self.controller_ports: list[int] = []
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self.quick_start = quick_start
        self._classpath: Path | None = None
        self._cds_recording: Path | None = None  # archive node 0 writes when it exits
        self.admin_password = ""
        self.format_seconds = 0.0
        self._tls = DevCertificates(self.workdir / "tls")

    # ------------------------------------------------------------------ layout

    def node_dir(self, index: int) -> Path:
        return self.workdir / f"node-{index + 1}"

    def _data_dir(self, index: int) -> Path:
        return self.node_dir(index) / "data"

    def _logs_dir(self, index: int) -> Path:
        return self.node_dir(index) / "logs"

    def _props_path(self, index: int) -> Path:
        return self.node_dir(index) / "server.properties"

    def _stdout_path(self, index: int) -> Path:
        return self.node_dir(index) / "stdout.log"

    def _server_log(self, index: int) -> Path:
        return self._logs_dir(index) / "server.log"

    @property
    def ca_file(self) -> Path:
        """The CA certificate a client of the SASL_SSL listener verifies the brokers with."""
        return self._tls.ca_pem

    def tls_access(self, access: KafkaAccess) -> KafkaAccess:
        """The same principal over the SASL_SSL listener, verifying the brokers' certificates."""
        return access.model_copy(
            update={
                "bootstrap": self.tls_bootstrap_servers,
                "security_protocol": "SASL_SSL",
                "ssl_cafile": self.ca_file,
            }
        )

    @property
    def admin_password_file(self) -> Path:
        return self.workdir / "admin.password"

    def admin_access(self) -> KafkaAccess:
        """The super user's access: for the admin step (topics, ACLs, credentials) only."""
        from pydantic import SecretStr

        return KafkaAccess(
            bootstrap=self.bootstrap_servers,
            username=ADMIN_USER,
            password=SecretStr(self.admin_password),
        )

    @property
    def pids(self) -> list[int | None]:
        """PID of each node's JVM while it runs, else None."""
        return [p.pid if p is not None and p.poll() is None else None for p in self._procs]

    # ------------------------------------------------------------------ config

    def _properties(self, index: int) -> dict[str, str]:
        node_id = index + 1
        bport, cport, tport = self.broker_ports[index], self.controller_ports[index], self.tls_ports[index]
        rf = min(self.nodes, 3)
        min_isr = 2 if rf >= 3 else 1
        props: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "listeners": (
                f"BROKER://127.0.0.1:{bport},CONTROLLER://127.0.0.1:{cport},SECURE://127.0.0.1:{tport}"
            ),
            "advertised.listeners": (
                f"BROKER://127.0.0.1:{bport},CONTROLLER://127.0.0.1:{cport},SECURE://127.0.0.1:{tport}"
            ),
            "inter.broker.listener.name": "BROKER",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": (
                "BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT,SECURE:SASL_SSL"
            ),
            # SASL_SSL, as a deployment across a network runs: SCRAM over TLS, with a key and a
            # certificate (PEM, PKCS#8) signed by the cluster's own CA (tls.py).
            "listener.name.secure.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "listener.name.secure.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.secure.ssl.keystore.type": "PEM",
            "listener.name.secure.ssl.keystore.location": str(self._tls.broker_pem),
            "listener.name.broker.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            "listener.name.broker.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN_USER}" password="{self.admin_password}";'
            ),
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{ADMIN_USER}" password="{self.admin_password}" '
                f'user_{ADMIN_USER}="{self.admin_password}";'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN_USER}",
            "allow.everyone.if.no.acl.found": "false",
            "log.dirs": str(self._data_dir(index)),
            # Topics come from the admin step, with their ACLs and retention; a typo is an error.
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(rf),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            # The defaults (50 partitions each) make the first consumer group or
            # transaction wait for 50-150 replicas to be created; 10 is plenty here.
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.num.partitions": "10",
            "group.initial.rebalance.delay.ms": "0",
        }
        if self.nodes == 1:
            props["controller.quorum.bootstrap.servers"] = f"127.0.0.1:{cport}"
        else:
            props["controller.quorum.voters"] = ",".join(
                f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(self.controller_ports)
            )
        props.update(self.extra_config)
        return props

    def _write_properties(self, index: int) -> None:
        self.node_dir(index).mkdir(parents=True, exist_ok=True)
        self._logs_dir(index).mkdir(parents=True, exist_ok=True)
        text = "".join(f"{k}={v}\n" for k, v in self._properties(index).items())
        write_secret(self._props_path(index), text)  # it holds the admin password

    def _jvm_cmd(self, index: int, main: str, record_cds: bool = False) -> list[str]:
        assert self._classpath is not None
        fast: list[str] = []
        if self.quick_start:
            # Measured on 2 cores: C1 alone plus the class archive halve broker start.
            fast.append("-XX:TieredStopAtLevel=1")
            archive = _cds_archive()
            if archive.is_file():
                fast.append(f"-XX:SharedArchiveFile={archive}")
            elif record_cds:
                self._cds_recording = archive.with_name(f"{archive.name}.tmp-{uuid.uuid4().hex[:8]}")
                fast.append(f"-XX:ArchiveClassesAtExit={self._cds_recording}")
        return [
            _java(),
            *fast,
            *jvm.server_options(self.heap_mb),
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            f"-Dkafka.logs.dir={self._logs_dir(index)}",
            "-cp",
            f"{self._classpath}/*",
            main,
        ]

    # ------------------------------------------------------------------ state

    def _state_path(self) -> Path:
        return self.workdir / "cluster.json"

    def _saved_state(self) -> tuple[str, list[int]] | None:
        """The cluster id and the ports (brokers', controllers', then TLS listeners) of an earlier
        run on this workdir."""
        state: dict[str, object] = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(self._state_path().read_text())
        bports = state.get("broker_ports")
        cports = state.get("controller_ports")
        tports = state.get("tls_ports")
        cid = state.get("cluster_id")
        if (
            isinstance(cid, str)
            and isinstance(bports, list)
            and isinstance(cports, list)
            and isinstance(tports, list)
            and len(bports) == len(cports) == len(tports) == self.nodes
        ):
            return cid, [int(p) for p in [*bports, *cports, *tports]]
        return None

    def _saved_ports(self) -> list[int] | None:
        """The ports of an earlier run on this workdir, if all are free now."""
        saved = self._saved_state()
        if saved is not None and all(procs.port_is_free(p) for p in saved[1]):
            return saved[1]
        return None

    def _ports(self) -> list[int]:
        return [*self.broker_ports, *self.controller_ports, *self.tls_ports]

    def _use_ports(self, ports: list[int]) -> None:
        """Lay the nodes out on ``ports`` (brokers', controllers', then TLS listeners); on ports
        other than the saved ones, as a new cluster with empty data: a standalone controller
        records its own endpoint in the metadata log, so data formatted for other ports cannot
        be reused."""
        n = self.nodes
        self.broker_ports, self.controller_ports, self.tls_ports = ports[:n], ports[n : 2 * n], ports[2 * n :]
        saved = self._saved_state()
        if saved is not None and saved[1] == ports:
            self.cluster_id = saved[0]
            return
        self.cluster_id = _new_cluster_id()
        for i in range(n):
            shutil.rmtree(self._data_dir(i), ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._state_path().write_text(
            json.dumps(
                {
                    "cluster_id": self.cluster_id,
                    "broker_ports": self.broker_ports,
                    "controller_ports": self.controller_ports,
                    "tls_ports": self.tls_ports,
                }
            )
        )

    # ------------------------------------------------------------------ lifecycle

    def _format(self, indices: list[int]) -> None:
        started = time.monotonic()
        pending: list[tuple[int, subprocess.Popen[bytes]]] = []
        for i in indices:
            if (self._data_dir(i) / "meta.properties").is_file():
                continue
            cmd = self._jvm_cmd(i, "kafka.tools.StorageTool")
            cmd += ["format", "-t", self.cluster_id, "-c", str(self._props_path(i))]
            if self.nodes == 1:
                cmd.append("--standalone")
            cmd += ["--add-scram", f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={self.admin_password}]"]
            cmd.append("--ignore-formatted")
            log = self.node_dir(i) / "format.log"
            write_secret(log, "")  # created 600 before the tool writes salted keys into it
            pending.append((i, procs.spawn(cmd, log, cwd=self.node_dir(i))))
        # All nodes format in parallel: each is a JVM start of about a second. The tool prints
        # the salted SCRAM keys to stdout: its output goes to format.log (600) only.
        errors: list[str] = []
        for i, proc in pending:
            log = self.node_dir(i) / "format.log"
            try:
                code = proc.wait(timeout=_FORMAT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                procs.terminate(proc, signal.SIGTERM, grace=2.0)
                code = None
            procs.terminate(proc)  # unregister (it has exited, or is killed now)
            if code != 0:
                errors.append(f"node {i + 1}: exit {code}\n{procs.tail(log)}")
        if pending:
            self.format_seconds = time.monotonic() - started
        if errors:
            raise RuntimeError("Kafka storage format failed:\n" + "\n".join(errors))

    def _spawn_node(self, index: int) -> None:
        record = index == 0 and self._cds_recording is None
        cmd = [*self._jvm_cmd(index, "kafka.Kafka", record), str(self._props_path(index))]
        self._procs[index] = procs.spawn(
            cmd, self._stdout_path(index), cwd=self.node_dir(index), stop_signal=signal.SIGTERM
        )

    def start(self, timeout: float = 90.0) -> None:
        """Format (first time) and start every node; return once all brokers are registered.

        A second start of this object keeps its ports and data. A first start takes the ports of
        an earlier run on the workdir while they are free, else new ones; if a port is taken
        before a node binds it, the cluster starts again, new, on ports chosen anew."""
        if any(p is not None and p.poll() is None for p in self._procs):
            raise RuntimeError("KafkaCluster is already running")
        # The one-time Maven fetch does not count against the start timeout.
        self._classpath = ensure_kafka_classpath()
        deadline = time.monotonic() + timeout
        if self.broker_ports:  # this object ran before: same ports, same data
            self._start_on(self._ports(), deadline)
            return
        logs = [path for i in range(self.nodes) for path in (self._stdout_path(i), self._server_log(i))]
        procs.start_on_free_ports(
            3 * self.nodes,
            lambda ports: self._start_on(ports, deadline),
            logs,
            what="Kafka",
            first=self._saved_ports(),
        )

    def _start_on(self, ports: list[int], deadline: float) -> None:
        self._use_ports(ports)
        if not self.admin_password_file.is_file():
            # Data formatted without this password (or before security) would refuse the admin.
            for i in range(self.nodes):
                shutil.rmtree(self._data_dir(i), ignore_errors=True)
        self.admin_password = read_or_create_secret(self.admin_password_file)
        self._tls.ensure()
        for i in range(self.nodes):
            self._write_properties(i)
        self._format(list(range(self.nodes)))
        self.bootstrap_servers = ",".join(f"127.0.0.1:{p}" for p in self.broker_ports)
        self.tls_bootstrap_servers = ",".join(f"127.0.0.1:{p}" for p in self.tls_ports)
        try:
            for i in range(self.nodes):
                self._spawn_node(i)
            self._wait_ready(
                list(range(self.nodes)),
                expect_ids=set(range(1, self.nodes + 1)),
                deadline=deadline,
            )
        except BaseException:
            self.stop()
            raise

    def start_node(self, index: int, timeout: float = 60.0) -> None:
        """Restart a node stopped by :meth:`kill_node`, on the same ports and data."""
        proc = self._procs[index]
        if proc is not None and proc.poll() is None:
            raise RuntimeError(f"node {index + 1} is already running")
        if self._classpath is None:
            raise RuntimeError("start() the cluster first")
        deadline = time.monotonic() + timeout
        self._spawn_node(index)
        self._wait_ready([index], expect_ids={index + 1}, deadline=deadline)

    def kill_node(self, index: int) -> None:
        """SIGKILL one node, as a crash or power loss would."""
        proc = self._procs[index]
        if proc is not None:
            procs.kill(proc)
            if index == 0:
                self._finish_cds_recording(None)
        self._procs[index] = None

    def stop(self) -> None:
        """SIGTERM every node at once (controlled shutdown), SIGKILL after 20 s."""
        running = [p for p in self._procs if p is not None]
        # All at once: a node stopped alone waits for the others to confirm its shutdown.
        codes = procs.stop_many([(p, signal.SIGTERM) for p in running], _STOP_GRACE_S)
        if self._procs[0] is not None:
            self._finish_cds_recording(codes[0])
        self._procs = [None] * self.nodes

    def _finish_cds_recording(self, exit_code: int | None) -> None:
        """Install the archive node 0 dumped at exit, if it exited cleanly."""
        tmp, self._cds_recording = self._cds_recording, None
        if tmp is None:
            return
        # 143 = exit after SIGTERM; a SIGKILLed JVM may have left half an archive.
        if exit_code in (0, 143) and tmp.is_file() and tmp.stat().st_size > 0:
            with contextlib.suppress(OSError):
                tmp.replace(_cds_archive())
                _log.info("recorded AppCDS archive %s", _cds_archive())
        tmp.unlink(missing_ok=True)
        # Recordings whose JVM was never stopped through here (e.g. left to the atexit hook).
        for stale in tmp.parent.glob("*.tmp-*"):
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > 3600:
                    stale.unlink()

    # ------------------------------------------------------------------ readiness

    def _failure(self, message: str, indices: list[int]) -> RuntimeError:
        parts = [message]
        for i in indices:
            proc = self._procs[i]
            code = None if proc is None else proc.poll()
            state = "not started" if proc is None else "running" if code is None else f"exit {code}"
            parts.append(
                f"--- node {i + 1} ({state}) {self._server_log(i)}:\n"
                f"{procs.tail(self._server_log(i))}\n"
                f"--- node {i + 1} stdout {self._stdout_path(i)}:\n"
                f"{procs.tail(self._stdout_path(i), 15)}"
            )
        return RuntimeError("\n".join(parts))

    def _wait_ready(self, indices: list[int], expect_ids: set[int], deadline: float) -> None:
        """Until each node in ``indices`` accepts TCP and metadata lists ``expect_ids``."""

        def dead() -> list[int]:
            return [i for i in indices if (p := self._procs[i]) is None or p.poll() is not None]

        for i in indices:
            proc = self._procs[i]
            # Its own listeners, not another server's that took a port first (this one then exits).
            mine = [self.broker_ports[i], self.controller_ports[i], self.tls_ports[i]]
            while not (
                procs.tcp_open("127.0.0.1", self.broker_ports[i])
                and proc is not None
                and procs.holds_ports(proc.pid, mine)
            ):
                if dead():
                    raise self._failure(f"Kafka node(s) {dead()} exited during start", indices)
                if time.monotonic() > deadline:
                    raise self._failure("Kafka did not open its port in time", indices)
                time.sleep(0.1)

        bootstrap = ",".join(f"127.0.0.1:{self.broker_ports[i]}" for i in indices)
        # The poll authenticates as the admin: a broker that refuses it is not ready for anyone.
        access = self.admin_access().model_copy(update={"bootstrap": bootstrap})

        async def poll() -> str | None:
            from aiokafka.admin import AIOKafkaAdminClient

            last = "no answer"
            while time.monotonic() < deadline:
                if dead():
                    return f"Kafka node(s) exited during start ({last})"
                admin = AIOKafkaAdminClient(**access.aiokafka(), request_timeout_ms=5000)
                try:
                    await admin.start()
                    info = await admin.describe_cluster()
                    seen = {int(b["node_id"]) for b in info["brokers"]}
                    if expect_ids <= seen:
                        return None
                    last = f"brokers registered: {sorted(seen)}, want {sorted(expect_ids)}"
                except Exception as exc:  # not up yet: any client error means retry
                    last = f"{type(exc).__name__}: {exc}"
                finally:
                    with contextlib.suppress(Exception):
                        await admin.close()
                await asyncio.sleep(0.2)
            return f"Kafka not ready after timeout ({last})"

        problem = procs.run_coroutine_sync(poll)
        if problem is not None:
            raise self._failure(problem, indices)

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
