"""The whole platform on one machine: real Kafka, real PostgreSQL, every service as a process.

Used by ``make demo``, ``make up`` and the integration tests, so what the tests prove is what
a newcomer runs. Border clearance runs once per checkpoint on the configured routes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from contracts.routes import RouteBook
from corridor.auth import Role
from corridor.kafkaclient import KafkaAccess
from corridor.settings import REPO_ROOT
from devkit.devidp import DevIssuer, OperationRules, RoleAuth
from devkit.devinfra import procs
from devkit.devinfra.kafka import ADMIN_USER, KafkaCluster
from devkit.devinfra.postgres import PostgresServer
from opstools.kafkaadmin import DEFAULT_DEPLOYMENT, password_file, principal_access

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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def service_specs(routes_file: Path, ports: list[int], host_mission: str = "KAZ") -> list[ServiceSpec]:
    routes = RouteBook.load(routes_file)
    checkpoints = list({cp.checkpoint_id: cp for r in routes.routes for cp in r.checkpoints}.values())
    if len(ports) < 4 + len(checkpoints):
        raise ValueError("not enough ports")
    specs = [
        ServiceSpec("intake", "services.intake", "intake", host_mission, ports[0], "intake"),
        ServiceSpec(
            "eligibility", "services.eligibility", "eligibility", host_mission, ports[1], "eligibility"
        ),
        ServiceSpec("transport", "services.transport", "transport", host_mission, ports[2], "transport"),
    ]
    for i, cp in enumerate(checkpoints):
        specs.append(
            ServiceSpec(
                f"border-{cp.checkpoint_id}",
                "services.border_clearance",
                "border_" + cp.checkpoint_id.replace("-", "_"),
                cp.country,
                ports[3 + i],
                f"border-clearance.{cp.checkpoint_id}",
                {"CORRIDOR_CHECKPOINT": cp.checkpoint_id},
            )
        )
    n = 3 + len(checkpoints)
    specs.append(
        ServiceSpec("reporting", "services.reporting", "reporting", host_mission, ports[n], "reporting")
    )
    return specs


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
    ) -> None:
        self.workdir = workdir
        self.routes_file = routes_file
        self.deployment_file = deployment_file
        self.secrets_dir = workdir / "secrets" / "kafka"
        self.admin_seconds = 0.0
        self.kafka = KafkaCluster(workdir / "kafka", nodes=kafka_nodes)
        self.postgres = PostgresServer(workdir / "postgres")
        self.log_level = log_level
        self.extra_env = extra_env or {}
        self.specs: dict[str, ServiceSpec] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.db_roles: dict[str, str] = {}
        """Each service's PostgreSQL role, by service name (its password: ``db_password_file``)."""
        # The stack's own identity provider (devkit.devidp): its key stays in the working directory,
        # where ``python -m devkit token`` finds it for a running ``make up``.
        self.issuer = DevIssuer(workdir / "idp")
        self._rules: dict[str, OperationRules] = {}

    # --- infrastructure -----------------------------------------------------------------

    def start_infra(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.kafka.start()
        self.kafka_admin()

    def kafka_admin(self) -> None:
        """The admin step, before any service starts: every principal with its own password (a file
        of mode 600 under ``secrets/kafka``), every topic with its retention, every ACL."""
        # A process of its own, as an operator runs it: deriving the plan builds every service
        # instance offline, which sets up logging and tracing this process should keep as they are.
        started = time.monotonic()
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
                "--bootstrap",
                self.bootstrap,
                "--admin-user",
                ADMIN_USER,
                "--admin-password-file",
                str(self.kafka.admin_password_file),
                "--secrets-dir",
                str(self.secrets_dir),
            ],
            self.log_path("kafka-admin"),
            timeout=180.0,
            what="Kafka admin step",
            cwd=REPO_ROOT,
        )
        self.admin_seconds = time.monotonic() - started

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def kafka_access(self, principal: str, *, tls: bool = False) -> KafkaAccess:
        """A principal's access (its credentials from the stack's secrets): for tests and tools.
        ``admin`` is the super user, for the admin step only. ``tls``: over the SASL_SSL listener,
        trusting the cluster's own CA (the shape of a deployment across a network)."""
        if principal == ADMIN_USER:
            access = self.kafka.admin_access()
        else:
            access = principal_access(self.bootstrap, self.secrets_dir, principal)
        return self.kafka.tls_access(access) if tls else access

    # --- services -----------------------------------------------------------------------

    def start_services(self, timeout: float = 120.0) -> None:
        if not self.specs:
            routes = RouteBook.load(self.routes_file)
            count = 4 + len({cp.checkpoint_id for r in routes.routes for cp in r.checkpoints})
            self.specs = {s.name: s for s in service_specs(self.routes_file, procs.free_ports(count))}
        if not self.db_roles:  # once: a running service's pool keeps the password it started with
            self.create_database_roles()
        for name in self.specs:
            self.start_service(name, wait=False)
        self.wait_ready(list(self.specs), timeout)

    def create_database_roles(self) -> None:
        """Each service's own role (a new random password every start) and its database, which
        only that role owns and may connect to: no service connects as the superuser."""
        secrets_dir = self.workdir / "secrets"
        secrets_dir.mkdir(parents=True, exist_ok=True)
        secrets_dir.chmod(0o700)
        for name, spec in self.specs.items():
            role = spec.database  # as in deploy/postgres/init.sql
            password = self.postgres.create_role(role)
            path = self.db_password_file(name)
            path.touch(mode=0o600)
            path.write_text(password + "\n")
            self.postgres.create_database(spec.database, owner=role)
            self.db_roles[name] = role

    def db_password_file(self, name: str) -> Path:
        return self.workdir / "secrets" / f"{self.specs[name].database}.db-password"

    def db_url(self, name: str) -> str:
        """The service's database URL, as its own role (no password: ``db_password_file``)."""
        return self.postgres.url(self.specs[name].database, self.db_roles[name])

    def env_for(self, spec: ServiceSpec) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRIDOR_")}
        env.update(
            {
                "CORRIDOR_KAFKA_BOOTSTRAP": self.bootstrap,
                # Its own principal; the password stays in its file (not in the environment).
                "CORRIDOR_KAFKA_USERNAME": spec.principal,
                "CORRIDOR_KAFKA_PASSWORD_FILE": str(password_file(self.secrets_dir, spec.principal)),
                "CORRIDOR_DATABASE_URL": self.db_url(spec.name),
                "CORRIDOR_DATABASE_PASSWORD_FILE": str(self.db_password_file(spec.name)),
                "CORRIDOR_CREATE_DATABASE": "false",  # created, with its role, by the stack
                "CORRIDOR_MISSION": spec.mission,
                "CORRIDOR_HTTP_HOST": "127.0.0.1",
                "CORRIDOR_HTTP_PORT": str(spec.port),
                "CORRIDOR_ROUTES_FILE": str(self.routes_file),
                "CORRIDOR_LOG_LEVEL": self.log_level,
                "CORRIDOR_TOPIC_REPLICATION": str(min(3, len(self.kafka.bootstrap_servers.split(",")))),
                "PYTHONUNBUFFERED": "1",
                **self.issuer.env(),
                **spec.extra_env,
                **self.extra_env,
            }
        )
        return env

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start_service(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        spec = self.specs[name]
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

    def kill_service(self, name: str) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        procs.kill(self.processes[name])

    def stop_service(self, name: str) -> int | None:
        return procs.terminate(self.processes[name], signal.SIGTERM, grace=30.0)

    def wait_ready(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                name = pending[0]
                proc = self.processes[name]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}:\n{procs.tail(self.log_path(name), 60)}"
                    )
                try:
                    if client.get(self.specs[name].url + "/health/ready").status_code == 200:
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
        country for a border officer, else the host mission)."""
        if mission is None:
            post = self.specs.get(f"border-{checkpoint}") if checkpoint else None
            mission = post.mission if post else self.host_mission
        if Role(role) == Role.BORDER_OFFICER and checkpoint is None:
            raise ValueError("a border officer's token names their checkpoint")
        return self.issuer.token(role, mission, checkpoint, subject)

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
        for proc in list(self.processes.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in list(self.processes.items()):
            procs.terminate(proc, signal.SIGTERM, grace=30.0)
            del self.processes[name]
        self.kafka.stop()
        self.postgres.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
