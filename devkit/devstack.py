"""The whole platform on one machine: real Kafka, real PostgreSQL, every service as a process.

Used by ``make demo``, ``make up`` and the integration tests, so what the tests prove is what
a newcomer runs. Border clearance runs once per checkpoint on the configured routes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from contracts.routes import RouteBook
from corridor.auth import Role
from corridor.kafkaclient import KafkaAccess
from corridor.settings import REPO_ROOT
from devkit.devidp import DevIssuer, OperationRules, RoleAuth
from devkit.devinfra import procs
from devkit.devinfra.jaeger import JaegerServer
from devkit.devinfra.kafka import ADMIN_USER, KafkaCluster
from devkit.devinfra.postgres import PostgresServer
from devkit.devinfra.prometheus import PrometheusServer, Target, rule_files
from opstools.deployments import DeploymentDescription, MissionSpec, mirror_principal
from opstools.kafkaadmin import DEFAULT_DEPLOYMENT, password_file, principal_access

if TYPE_CHECKING:
    from devkit.devinfra.mirrormaker import MirrorMaker

DEFAULT_ROUTES = REPO_ROOT / "deploy" / "routes" / "central-asia.json"


@dataclass
class ServiceSpec:
    name: str
    module: str
    database: str
    mission: str
    port: int
    principal: str
    """Its own Kafka principal (the instance name, as opstools.kafkaadmin derives it)"""
    extra_env: dict[str, str] = field(default_factory=dict)
    cluster: str = "corridor"
    """The Kafka cluster of its mission (the deployment description's)"""
    db_server: str = "corridor"
    """The PostgreSQL server of its mission"""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def service_specs(
    routes_file: Path,
    ports: list[int],
    host_mission: str = "KAZ",
    description: DeploymentDescription | None = None,
) -> list[ServiceSpec]:
    """Every service instance of the description (default: the shared shape on ``routes_file``),
    each on a port of ``ports``."""
    if description is None:
        description = DeploymentDescription.load(DEFAULT_DEPLOYMENT).model_copy(
            update={"routes": routes_file, "host_mission": host_mission}
        )
        description = description.model_copy(
            update={"missions": {**description.missions, **_missing_missions(description)}}
        )
    instances = description.instances()
    # The host mission's services first, reporting last: the order ports were always given in.
    instances.sort(key=lambda i: (i.name == "reporting", i.checkpoint is not None))
    if len(ports) < len(instances):
        raise ValueError("not enough ports")
    specs = []
    for port, inst in zip(ports, instances, strict=False):
        mission = description.missions[inst.mission]
        cp = inst.checkpoint
        specs.append(
            ServiceSpec(
                inst.name,
                inst.module,
                inst.name if cp is None else "border_" + cp.replace("-", "_"),
                inst.mission,
                port,
                inst.principal,
                {"CORRIDOR_CHECKPOINT": cp} if cp else {},
                cluster=mission.cluster,
                db_server=mission.database,
            )
        )
    return specs


def _missing_missions(description: DeploymentDescription) -> dict[str, MissionSpec]:
    """Routes of a test or a bench may cross countries the shared description does not name: their
    posts run on the shared cluster too."""
    host = description.missions[description.host_mission]
    countries = RouteBook.load(description.routes).countries()
    return {
        c: MissionSpec(cluster=host.cluster, database=host.database)
        for c in countries
        if c not in description.missions
    }


class Stack:
    def __init__(
        self,
        workdir: Path,
        *,
        routes_file: Path = DEFAULT_ROUTES,
        deployment_file: Path = DEFAULT_DEPLOYMENT,
        kafka_nodes: int = 1,
        log_level: str = "INFO",
        extra_env: dict[str, str] | None = None,
        prometheus: bool = False,
        scrape_seconds: float = 5.0,
        tracing: bool = False,
    ) -> None:
        """``prometheus``: also run Prometheus scraping every service (``start_services`` starts
        it), every ``scrape_seconds``. ``tracing``: also run Jaeger, and have every service send
        its spans there."""
        self.workdir = workdir
        self.routes_file = routes_file
        self.deployment_file = deployment_file
        self.description = DeploymentDescription.load(deployment_file)
        if routes_file != DEFAULT_ROUTES or self.description.shape == "shared":
            self.description = self.description.model_copy(update={"routes": routes_file.resolve()})
        else:
            self.routes_file = self.description.routes
        self.admin_seconds = 0.0
        # One Kafka cluster and one PostgreSQL server per name the description gives (the shared
        # shape: one of each, where they always were).
        shared = self.description.shape == "shared"
        self.clusters: dict[str, KafkaCluster] = {
            name: KafkaCluster(
                workdir / "kafka" if shared else workdir / "kafka" / name,
                nodes=kafka_nodes,
                # Three clusters and three MirrorMakers share 2 cores and 24 GiB with the tests.
                heap_mb=384 if shared else 320,
            )
            for name in self.description.clusters
        }
        self.databases: dict[str, PostgresServer] = {
            name: PostgresServer(workdir / "postgres" if shared else workdir / "postgres" / name)
            for name in self.description.database_servers
        }
        host = self.description.missions[self.description.host_mission]
        self.kafka = self.clusters[host.cluster]
        """The host mission's cluster (the only one in the shared shape)"""
        self.postgres = self.databases[host.database]
        self.secrets_dir = self.secrets_of(host.cluster)
        self.mirrors: dict[str, MirrorMaker] = {}
        """Each receiving mission's MirrorMaker (cluster per mission), by mission"""
        self.log_level = log_level
        self.extra_env = extra_env or {}
        self.specs: dict[str, ServiceSpec] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Where each service's log stood when it was last started: the bind error is looked for after it.
        self._log_marks: dict[str, int] = {}
        self.db_roles: dict[str, str] = {}
        """Each service's PostgreSQL role, by service name (its password: ``db_password_file``)."""
        # The stack's own identity provider (devkit.devidp): its key stays in the working directory,
        # where ``python -m devkit token`` finds it for a running ``make up``.
        self.issuer = DevIssuer(workdir / "idp")
        self._rules: dict[str, OperationRules] = {}
        self.operations_page: subprocess.Popen[bytes] | None = None
        self.operations_page_url = ""
        self.operations_page_stuck_after = 0.0
        self.prometheus = (
            PrometheusServer(workdir / "prometheus", interval=scrape_seconds) if prometheus else None
        )
        self.jaeger = JaegerServer(workdir / "jaeger") if tracing else None

    # --- infrastructure -----------------------------------------------------------------

    def start_infra(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for db in self.databases.values():
            db.start()
        if self.jaeger is not None:
            self.jaeger.start()
        # Brokers start side by side (a JVM's start is mostly waiting), then each cluster's admin step.
        with ThreadPoolExecutor(len(self.clusters)) as pool:
            list(pool.map(lambda c: c.start(), self.clusters.values()))
        started = time.monotonic()
        with ThreadPoolExecutor(len(self.clusters)) as pool:
            list(pool.map(self.kafka_admin, self.clusters))
        self.admin_seconds = time.monotonic() - started
        self.start_mirrors()

    def secrets_of(self, cluster: str) -> Path:
        """Where the principals' passwords of a cluster are (mode 600 files)."""
        base = self.workdir / "secrets" / "kafka"
        return base if self.description.shape == "shared" else base / cluster

    def kafka_admin(self, cluster: str | None = None) -> None:
        """The admin step of a cluster, before any service starts: every principal with its own
        password (a file of mode 600 under ``secrets/kafka``), every topic with its retention,
        every ACL."""
        cluster = cluster or self.description.missions[self.description.host_mission].cluster
        kafka = self.clusters[cluster]
        # A process of its own, as an operator runs it: deriving the plan builds every service
        # instance offline, which sets up logging and tracing this process should keep as they are.
        procs.run_checked(
            [
                sys.executable,
                "-m",
                "opstools.kafkaadmin",
                "apply",
                "--deployment",
                str(self.deployment_file),
                "--routes",
                str(self.routes_file),
                "--cluster",
                cluster,
                "--bootstrap",
                kafka.bootstrap_servers,
                "--admin-user",
                ADMIN_USER,
                "--admin-password-file",
                str(kafka.admin_password_file),
                "--secrets-dir",
                str(self.secrets_of(cluster)),
            ],
            self.log_path(f"kafka-admin-{cluster}"),
            timeout=180.0,
            what=f"Kafka admin step of {cluster}",
            cwd=REPO_ROOT,
        )

    def start_mirrors(self, timeout: float = 240.0) -> None:
        """Each mission that receives shared topics pulls them with a MirrorMaker of its own, as its
        own principal: on each source cluster it may read only what is shared with its mission."""
        if not self.description.shares:
            return
        from devkit.devinfra.mirrormaker import MirrorFlow, MirrorMaker

        receiving = sorted({s.target for s in self.description.shares})
        for mission in receiving:
            if mission in self.mirrors:
                continue
            target = self.description.cluster_of(mission)
            shares = [s for s in self.description.shares if s.target == mission]
            principal = mirror_principal(mission)
            aliases = {target} | {self.description.cluster_of(s.source) for s in shares}
            self.mirrors[mission] = MirrorMaker(
                self.workdir / "mirror" / mission.lower(),
                target,
                {a: self.kafka_access(principal, cluster=a) for a in sorted(aliases)},
                [MirrorFlow(self.description.cluster_of(s.source), target, tuple(s.topics)) for s in shares],
            )
        with ThreadPoolExecutor(len(self.mirrors)) as pool:
            list(pool.map(lambda m: m.start(timeout), self.mirrors.values()))

    def stop_mirrors(self) -> None:
        for mirror in self.mirrors.values():
            mirror.stop()
        self.mirrors.clear()

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def kafka_access(self, principal: str, *, tls: bool = False, cluster: str | None = None) -> KafkaAccess:
        """A principal's access (its credentials from the stack's secrets): for tests and tools.
        ``admin`` is the super user, for the admin step only. ``tls``: over the SASL_SSL listener,
        trusting the cluster's own CA (the shape of a deployment across a network). ``cluster``:
        default, the principal's own (its mission's), else the host mission's."""
        cluster = cluster or self.cluster_of_principal(principal)
        kafka = self.clusters[cluster]
        if principal == ADMIN_USER:
            access = kafka.admin_access()
        else:
            access = principal_access(kafka.bootstrap_servers, self.secrets_of(cluster), principal)
        return kafka.tls_access(access) if tls else access

    def cluster_of_principal(self, principal: str) -> str:
        d = self.description
        for code, mission in d.missions.items():
            named = [*mission.operators, *mission.operations_pages, mission.integration_client]
            if principal in named or principal == mirror_principal(code):
                return mission.cluster
        found = [i for i in d.instances() if i.principal == principal]
        return d.cluster_of(found[0].mission) if found else d.missions[d.host_mission].cluster

    def postgres_of(self, name: str) -> PostgresServer:
        """The PostgreSQL server holding service ``name``'s database (its mission's)."""
        return self.databases[self.specs[name].db_server]

    # --- services -----------------------------------------------------------------------

    def start_services(self, timeout: float = 120.0) -> None:
        if not self.specs:
            count = len(self.description.instances())
            self.specs = {
                s.name: s
                for s in service_specs(
                    self.routes_file, procs.free_ports(count), description=self.description
                )
            }
        if not self.db_roles:  # once: a running service's pool keeps the password it started with
            self.create_database_roles()
        for name in self.specs:
            self.start_service(name, wait=False)
        self.wait_ready(list(self.specs), timeout)
        if self.prometheus is not None and self.prometheus.process is None:
            self.start_prometheus()

    def start_prometheus(self, scrape_seconds: float | None = None) -> PrometheusServer:
        """Prometheus scraping every service with an operations viewer's token of its mission
        (valid as long as a local stack may run), and the deployment's alert rules; also on a
        stack made without it (a test module of its own brings it to the session's platform)."""
        if self.prometheus is None:
            self.prometheus = PrometheusServer(self.workdir / "prometheus", interval=scrape_seconds or 5.0)
        specs = list(self.specs.values())
        self.prometheus.write_config(
            [
                Target(s.module.removeprefix("services."), s.principal, s.mission, f"127.0.0.1:{s.port}")
                for s in specs
            ],
            {
                m: self.issuer.token(Role.OPERATIONS_VIEWER, m, subject="prometheus", lifetime=30 * 86400)
                for m in {s.mission for s in specs}
            },
            rule_files(),
        )
        self.prometheus.start()
        return self.prometheus

    def stop_prometheus(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None

    def create_database_roles(self) -> None:
        """Each service's own role (a new random password every start) and its database, which
        only that role owns and may connect to: no service connects as the superuser."""
        secrets_dir = self.workdir / "secrets"
        secrets_dir.mkdir(parents=True, exist_ok=True)
        secrets_dir.chmod(0o700)
        for name, spec in self.specs.items():
            role = spec.database  # as in deploy/postgres/init.sql
            server = self.postgres_of(name)
            password = server.create_role(role)
            path = self.db_password_file(name)
            path.touch(mode=0o600)
            path.write_text(password + "\n")
            server.create_database(spec.database, owner=role)
            self.db_roles[name] = role

    def db_password_file(self, name: str) -> Path:
        return self.workdir / "secrets" / f"{self.specs[name].database}.db-password"

    def db_url(self, name: str) -> str:
        """The service's database URL, as its own role (no password: ``db_password_file``)."""
        return self.postgres_of(name).url(self.specs[name].database, self.db_roles[name])

    def env_for(self, spec: ServiceSpec) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRIDOR_")}
        kafka = self.clusters[spec.cluster]
        env.update(
            {
                "CORRIDOR_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
                # Its own principal; the password stays in its file (not in the environment).
                "CORRIDOR_KAFKA_USERNAME": spec.principal,
                "CORRIDOR_KAFKA_PASSWORD_FILE": str(
                    password_file(self.secrets_of(spec.cluster), spec.principal)
                ),
                "CORRIDOR_DATABASE_URL": self.db_url(spec.name),
                "CORRIDOR_DATABASE_PASSWORD_FILE": str(self.db_password_file(spec.name)),
                "CORRIDOR_CREATE_DATABASE": "false",  # created, with its role, by the stack
                "CORRIDOR_MISSION": spec.mission,
                "CORRIDOR_HTTP_HOST": "127.0.0.1",
                "CORRIDOR_HTTP_PORT": str(spec.port),
                "CORRIDOR_ROUTES_FILE": str(self.routes_file),
                "CORRIDOR_LOG_LEVEL": self.log_level,
                "CORRIDOR_TOPIC_REPLICATION": str(min(3, len(kafka.bootstrap_servers.split(",")))),
                "PYTHONUNBUFFERED": "1",
                **self.issuer.env(),
                **self._tracing_env(),
                **spec.extra_env,
                **self.extra_env,
            }
        )
        return env

    def _tracing_env(self) -> dict[str, str]:
        if self.jaeger is None:
            return {}
        # Spans leave every half second rather than every five: a test asks for them right after.
        return {"CORRIDOR_OTLP_ENDPOINT": self.jaeger.otlp_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "500"}

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start_service(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        spec = self.specs[name]
        self._log_marks[name] = procs.log_size(self.log_path(name))
        proc = procs.spawn(
            [sys.executable, "-m", spec.module],
            self.log_path(name),
            cwd=REPO_ROOT,
            env=self.env_for(spec),
            stop_signal=signal.SIGTERM,
        )
        self.processes[name] = proc
        if wait:
            self.wait_ready([name], timeout)

    def start_replica(
        self,
        name: str,
        replica: str,
        *,
        extra_env: dict[str, str] | None = None,
        wait: bool = True,
        timeout: float = 300.0,
    ) -> str:
        """Another process of service ``name``, called ``replica``: the same database, principal
        and consumer groups (a group shares its partitions among them), on a port of its own, with
        ``extra_env`` on top of the service's. Stop it with ``stop_replica``; without ``wait``,
        ``wait_ready([replica], ...)`` waits for it."""
        spec = self.specs[name]
        twin = replace(
            spec, name=replica, port=procs.free_ports(1)[0], extra_env={**spec.extra_env, **(extra_env or {})}
        )
        self.specs[replica] = twin
        self.db_roles[replica] = self.db_roles[name]
        self.start_service(replica, wait=wait, timeout=timeout)
        return twin.url

    def stop_replica(self, replica: str) -> int | None:
        """Stop a process ``start_replica`` started, and forget it (Prometheus, the next restart)."""
        code = self.stop_service(replica)
        del self.specs[replica], self.db_roles[replica], self.processes[replica]
        return code

    def kill_service(self, name: str) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        procs.kill(self.processes[name])

    def stop_service(self, name: str) -> int | None:
        return procs.terminate(self.processes[name], signal.SIGTERM, grace=30.0)

    def wait_ready(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        rebinds = 0
        with httpx.Client(timeout=2.0) as client:
            while pending:
                name = pending[0]
                proc = self.processes[name]
                if proc.poll() is not None:
                    if rebinds < 3 and procs.bind_failed(self.log_path(name), self._log_marks[name]):
                        # Its port was free when chosen and taken before it bound it (another
                        # process on a shared machine): it starts again on a port chosen now.
                        rebinds += 1
                        self.specs[name].port = procs.free_port()
                        self.start_service(name, wait=False)
                        continue
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}:\n{procs.tail(self.log_path(name), 60)}"
                    )
                try:
                    if client.get(
                        self.specs[name].url + "/health/ready"
                    ).status_code == 200 and procs.holds_ports(proc.pid, [self.specs[name].port]):
                        pending.pop(0)
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} not ready after {timeout:.0f}s:\n{procs.tail(self.log_path(name), 60)}"
                    )
                time.sleep(0.2)

    def url(self, name: str) -> str:
        return self.specs[name].url

    def start_operations_page(self, *, stuck_after_seconds: float = 1800.0, timeout: float = 60.0) -> str:
        """The live operations page (services.operations) watching every service, as its own
        process and Kafka principal; its URL. Once: a second call answers the running one's, if it
        runs with the same threshold (another is a page of its own: the running one is stopped)."""
        if self.operations_page is not None and self.operations_page.poll() is None:
            if self.operations_page_stuck_after == stuck_after_seconds:
                return self.operations_page_url
            self.stop_operations_page()
        self.operations_page_stuck_after = stuck_after_seconds
        # The host mission's page, on its cluster: it reads the status stream's home there (and each
        # service's health and metrics, wherever the service runs, over HTTP).
        principal = self.description.missions[self.description.host_mission].operations_pages[0]
        # It reads each service's /metrics with an operations-viewer token of that service's mission.
        tokens = self.workdir / "secrets" / "operations-page"
        tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
        for mission in sorted({s.mission for s in self.specs.values()}):
            path = tokens / f"{mission}.token"
            path.touch(mode=0o600)
            token = self.issuer.token(Role.OPERATIONS_VIEWER, mission, None, principal, lifetime=30 * 86400)
            path.write_text(token + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRIDOR_")}
        env.update(
            {
                "CORRIDOR_KAFKA_BOOTSTRAP": self.bootstrap,
                "CORRIDOR_KAFKA_USERNAME": principal,
                "CORRIDOR_KAFKA_PASSWORD_FILE": str(password_file(self.secrets_dir, principal)),
                "CORRIDOR_MISSION": self.host_mission,
                "CORRIDOR_HTTP_HOST": "127.0.0.1",
                "CORRIDOR_ROUTES_FILE": str(self.routes_file),
                "CORRIDOR_LOG_LEVEL": self.log_level,
                "CORRIDOR_OPERATIONS_SERVICES": json.dumps(
                    {n: {"url": s.url, "mission": s.mission} for n, s in self.specs.items()}
                ),
                "CORRIDOR_OPERATIONS_TOKENS_DIR": str(tokens),
                "CORRIDOR_OPERATIONS_STUCK_AFTER_SECONDS": str(stuck_after_seconds),
                "CORRIDOR_OPERATIONS_POLL_SECONDS": "2",
                "PYTHONUNBUFFERED": "1",
                **self.issuer.env(),
                **self.extra_env,
            }
        )
        log = self.log_path("operations-page")

        def start_on(ports: list[int]) -> subprocess.Popen[bytes]:
            self.operations_page_url = f"http://127.0.0.1:{ports[0]}"
            return procs.spawn_ready(
                [sys.executable, "-m", "services.operations"],
                log,
                ready_url=self.operations_page_url + "/health/ready",
                ports=ports,
                what="the operations page",
                timeout=timeout,
                tail_lines=60,
                cwd=REPO_ROOT,
                env={**env, "CORRIDOR_HTTP_PORT": str(ports[0])},
                stop_signal=signal.SIGTERM,
            )

        self.operations_page = procs.start_on_free_ports(1, start_on, [log], what="the operations page")
        return self.operations_page_url

    def stop_operations_page(self) -> None:
        if self.operations_page is not None:
            procs.terminate(self.operations_page, signal.SIGTERM, grace=10.0)
            self.operations_page = None

    # --- identities ----------------------------------------------------------------------

    @property
    def host_mission(self) -> str:
        return self.specs["intake"].mission if "intake" in self.specs else "KAZ"

    def token(
        self,
        role: Role | str,
        mission: str | None = None,
        checkpoint: str | None = None,
        subject: str | None = None,
    ) -> str:
        """A token of the stack's issuer for ``role`` in ``mission`` (default: the checkpoint's
        country for a border officer, else the host mission), reused while it has half its hour
        left, as a client would (``DevIssuer.reused_token``)."""
        if mission is None:
            post = self.specs.get(f"border-{checkpoint}") if checkpoint else None
            mission = post.mission if post else self.host_mission
        if Role(role) == Role.BORDER_OFFICER and checkpoint is None:
            raise ValueError("a border officer's token names their checkpoint")
        return self.issuer.reused_token(role, mission, checkpoint, subject)

    def headers(
        self,
        role: Role | str,
        mission: str | None = None,
        checkpoint: str | None = None,
        subject: str | None = None,
    ) -> dict[str, str]:
        """``Authorization: Bearer ...`` for ``token(...)``."""
        return {"Authorization": f"Bearer {self.token(role, mission, checkpoint, subject)}"}

    def rules_for(self, url: httpx.URL) -> OperationRules | None:
        """The rules of the service at ``url``, read once from its OpenAPI document."""
        spec = next((s for s in self.specs.values() if s.port == url.port), None)
        if spec is None:
            return None
        if spec.name not in self._rules:
            document = httpx.get(spec.url + "/openapi.json", timeout=10.0).raise_for_status().json()
            self._rules[spec.name] = OperationRules(document)
        return self._rules[spec.name]

    def role_auth(self) -> RoleAuth:
        """Acts, per request, in a role the target route admits (see ``RoleAuth``)."""
        return RoleAuth(self.issuer, self.rules_for)

    def border_url(self, checkpoint_id: str) -> str:
        return self.specs[f"border-{checkpoint_id}"].url

    # --- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_operations_page()
        self.stop_mirrors()  # before the clusters: MirrorMaker is slow to stop without them
        for proc in list(self.processes.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in list(self.processes.items()):
            procs.terminate(proc, signal.SIGTERM, grace=30.0)
            del self.processes[name]
        self.stop_prometheus()
        for kafka in self.clusters.values():
            kafka.stop()
        for db in self.databases.values():
            db.stop()
        if self.jaeger is not None:
            self.jaeger.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
