"""The Kafka admin step: principals, topics and ACLs, derived from one description of the deployment.

A deployment description (``deploy/deployments/*.yaml``, ``opstools.deployments``) says where each
mission's services run, on which Kafka cluster, and which topics cross from one mission's cluster
to another's. What each service instance reads, writes and which consumer groups it uses is not
listed anywhere by hand: it comes from the code (``services.deployment.service_runtimes`` builds
every instance offline, as the AsyncAPI documents do). ``plan()`` turns both into one cluster's
topics (with retention for personal data and dead letters) and ACLs, as a pure function; ``apply``
makes the cluster so, as its super user, before any service starts:

    python -m opstools.kafkaadmin apply --deployment deploy/deployments/per-mission.yaml --cluster uzb \
        --bootstrap 127.0.0.1:9092 --admin-user admin --admin-password-file admin.password \
        --secrets-dir secrets/kafka/uzb

Each principal's password is read from ``<secrets-dir>/<principal>.password`` (mode 600), and
generated there when missing; the SCRAM credentials are (re)set from those files. ``plan`` prints
what ``apply`` would do. Every ACL is literal, except the consumer-group prefixes of mission
clients and operators (``<principal>.``), which name only their own groups: no principal gets ``*``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from contracts import topics
from corridor.kafkaclient import KafkaAccess, read_or_create_secret
from corridor.settings import REPO_ROOT
from opstools.deployments import (
    DeploymentDescription,
    Needs,
    check_shares,
    checkpoints_match_routes,
    connect_group,
    connect_topics,
    mirror_principal,
    transactional_ids,
)

DEFAULT_DEPLOYMENT = REPO_ROOT / "deploy" / "deployments" / "shared.yaml"
REPLAYS_TOPIC = "dlt.replays"  # opstools.deadletters' replay markers

ResourceKind = Literal["topic", "group", "cluster", "transactional_id"]
PatternKind = Literal["literal", "prefixed"]
Operation = Literal[
    "read", "write", "describe", "create", "describe_configs", "alter_configs", "idempotent_write"
]
CLUSTER = "kafka-cluster"
"""The one name of the cluster resource (ACLs on the cluster itself: ``Acl(p, "cluster", CLUSTER, ...)``)"""


# --- the description ---------------------------------------------------------------------------


class IntegrationClient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mission: str = Field(pattern=r"^[A-Z]{3}$")
    principal: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,60}$")


class MirrorAccess(BaseModel):
    """What one mission's MirrorMaker does on this cluster: reads what is shared from here to its
    mission (as a source), writes what its mission receives here (as the target)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    principal: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,60}$")
    reads: list[str] = []
    writes: list[str] = []
    sources: list[str] = []
    """The clusters it pulls ``writes`` from (each has its own Connect group here)"""


class Deployment(BaseModel):
    """One Kafka cluster's part of a deployment description (``opstools.deployments``): what is
    deployed there, not what each part needs (the code says that)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cluster: str = "corridor"
    host_mission: str = Field(pattern=r"^[A-Z]{3}$")
    routes: Path = Field(description="Routes file, relative to the deployment file")
    partitions: int = Field(default=3, ge=1)
    personal_data_retention_ms: int = Field(
        ge=3_600_000, description="retention.ms of topics that carry personal data (contracts.topics)"
    )
    dead_letter_retention_ms: int = Field(ge=3_600_000, description="retention.ms of every dlt.* topic")
    integration_clients: list[IntegrationClient] = []
    operators: list[str] = Field(
        default_factory=list,
        description="Operations principals: read every topic, replay dead letters, watch consumer lag",
    )
    operations_pages: list[str] = Field(
        default_factory=list,
        description="Operations page principals (services.operations): read the public status stream, "
        "vehicle movements and dead letters; describe the services' consumer groups and topics (lag)",
    )
    instances: list[str] | None = Field(
        default=None, description="The service instances on this cluster (None: every instance of the code)"
    )
    mirrors: list[MirrorAccess] = []

    @classmethod
    def load(cls, path: Path, cluster: str | None = None) -> Deployment:
        """The part of the description at ``path`` on ``cluster`` (a shared-cluster description
        has only one)."""
        return cluster_view(DeploymentDescription.load(path), cluster)

    @property
    def shared_out(self) -> set[str]:
        return {t for m in self.mirrors for t in m.reads}

    @property
    def mirrored_in(self) -> set[str]:
        return {t for m in self.mirrors for t in m.writes}


def cluster_view(description: DeploymentDescription, cluster: str | None = None) -> Deployment:
    """What the admin step of one cluster needs to know of the whole description."""
    if cluster is None:
        if len(description.clusters) != 1:
            raise PlanError(f"{description.name} has clusters {description.clusters}: name one")
        cluster = description.clusters[0]
    if cluster not in description.clusters:
        raise PlanError(f"{description.name} has no cluster {cluster!r} (it has {description.clusters})")
    here = [description.missions[m] for m in description.missions_on(cluster)]
    mirrors: dict[str, MirrorAccess] = {}
    for share in description.shares_from(cluster):
        principal = mirror_principal(share.target)
        found = mirrors.get(principal, MirrorAccess(principal=principal))
        mirrors[principal] = found.model_copy(update={"reads": sorted({*found.reads, *share.topics})})
    for share in description.shares_into(cluster):
        principal = mirror_principal(share.target)
        found = mirrors.get(principal, MirrorAccess(principal=principal))
        mirrors[principal] = found.model_copy(
            update={
                "writes": sorted({*found.writes, *share.topics}),
                "sources": sorted({*found.sources, description.cluster_of(share.source)}),
            }
        )
    single = description.shape == "shared"
    return Deployment(
        cluster=cluster,
        host_mission=description.host_mission,
        routes=description.routes,
        partitions=description.partitions,
        personal_data_retention_ms=description.personal_data_retention_ms,
        dead_letter_retention_ms=description.dead_letter_retention_ms,
        integration_clients=[
            IntegrationClient(mission=code, principal=m.integration_client)
            for code in description.missions_on(cluster)
            if (m := description.missions[code]).integration_client
        ],
        operators=[p for m in here for p in m.operators],
        operations_pages=[p for m in here for p in m.operations_pages],
        instances=None
        if single
        else [i.principal for i in description.instances() if description.cluster_of(i.mission) == cluster],
        mirrors=sorted(mirrors.values(), key=lambda m: m.principal),
    )


@dataclass(frozen=True)
class InstanceNeeds:
    """What one service instance does with Kafka, as its code declares it."""

    principal: str
    reads: frozenset[str]
    groups: frozenset[str]
    writes: frozenset[str]
    dead_letters: dict[str, frozenset[str]] = field(default_factory=dict, hash=False, compare=False)
    """dead-letter topic -> the topics its consumer reads"""


def needs_from_code(routes_file: Path) -> list[InstanceNeeds]:
    """Every instance of the deployment, built offline from the service code."""
    from services.deployment import service_runtimes

    found = []
    for rt in service_runtimes(routes_file):
        found.append(
            InstanceNeeds(
                principal=rt.instance,
                reads=frozenset(t for c in rt.consumers for t in c.topics),
                groups=frozenset(c.name for c in rt.consumers),
                writes=frozenset(rt.produced_topics),
                dead_letters={c.dead_letter_topic: frozenset(c.topics) for c in rt.consumers},
            )
        )
    return found


# --- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Acl:
    principal: str
    resource: ResourceKind
    name: str
    operation: Operation
    pattern: PatternKind = "literal"

    def __str__(self) -> str:
        pattern = "*" if self.pattern == "prefixed" else ""
        return f"User:{self.principal} {self.operation.upper()} {self.resource}:{self.name}{pattern}"


_IMPLIED: dict[Operation, tuple[Operation, ...]] = {
    "read": ("describe",),
    "write": ("describe",),
    "alter_configs": ("describe_configs",),
}
"""What the authoriser allows along with an operation (Kafka's AclAuthorizer rules)."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(hash=False, compare=False)


@dataclass
class Plan:
    principals: list[str]
    topics: list[TopicSpec]
    acls: list[Acl]

    def allowed(self, principal: str, operation: Operation, resource: ResourceKind, name: str) -> bool:
        """Whether the plan's ACLs allow it (as the authoriser would, for READ/WRITE/DESCRIBE)."""
        for acl in self.acls:
            if acl.principal != principal or acl.resource != resource:
                continue
            matches = name.startswith(acl.name) if acl.pattern == "prefixed" else name == acl.name
            if matches and (acl.operation == operation or operation in _IMPLIED.get(acl.operation, ())):
                return True
        return False

    def describe(self) -> str:
        lines = [f"principals ({len(self.principals)}): {', '.join(self.principals)}", "topics:"]
        lines += [
            f"  {t.name} ({t.partitions} partitions{''.join(f', {k}={v}' for k, v in t.config.items())})"
            for t in self.topics
        ]
        lines.append(f"acls ({len(self.acls)}):")
        lines += [f"  {a}" for a in self.acls]
        return "\n".join(lines)


class PlanError(ValueError):
    """The deployment description and the code disagree."""


def _topic_acls(principal: str, names: Iterable[str], operation: Operation) -> set[Acl]:
    acls = set()
    for name in names:
        acls.add(Acl(principal, "topic", name, operation))
        acls.add(Acl(principal, "topic", name, "describe"))
    return acls


def mirror_target_acls(principal: str, sources: Iterable[str], mirrored: Iterable[str]) -> set[Acl]:
    """What a mission's MirrorMaker needs on its own cluster, found with the authoriser on
    (docs/mirrormaker.md): write the topics it mirrors in (created by the admin step), and per
    source cluster its Connect worker's group, internal topics and transactional ids (it copies
    exactly once)."""
    acls = {Acl(principal, "topic", t, "write") for t in mirrored}  # Write implies Describe
    for source in sources:
        for topic in connect_topics(source):
            acls |= {Acl(principal, "topic", topic, op) for op in ("create", "read", "write")}
        acls.add(Acl(principal, "group", connect_group(source), "read"))
        for txn, pattern in transactional_ids(source):
            acls.add(Acl(principal, "transactional_id", txn, "write", pattern))
    return acls


def plan(deployment: Deployment, instances: Sequence[InstanceNeeds], *, connect: bool = True) -> Plan:
    """The topics and ACLs the deployment needs; nothing more.

    - a service instance reads the topics its consumers read (with their consumer groups) and their
      settings (how long they keep records), and writes what it produces and its consumers'
      dead-letter topics;
    - a mission's integration client reads the public status stream, with consumer groups named
      ``<principal>.*``, and writes only its own mission's inbound topic;
    - a dead-letter topic is written by its consumer and read by operators only: it copies records
      of its sources (personal data among them), so it is never readable by more than they are;
    - operators read every topic, write the topics consumers read (to replay dead letters) and the
      replay markers, and describe the services' consumer groups (lag);
    - an operations page reads the public status stream, the vehicle movements and the dead-letter
      topics (it keeps only their dlt_* headers), writes nothing, joins no group, and may describe
      the services' groups and the topics they read, to compute lag without reading them.
    """
    acls: set[Acl] = set()
    principals: list[str] = []
    consumed: set[str] = set()
    all_topics: set[str] = {topics.STATUS, REPLAYS_TOPIC} | deployment.mirrored_in
    if deployment.instances is not None:
        unknown = set(deployment.instances) - {i.principal for i in instances}
        if unknown:
            raise PlanError(f"the code has no instance {sorted(unknown)}")
        instances = [i for i in instances if i.principal in deployment.instances]
    for inst in instances:
        if inst.principal in principals:
            raise PlanError(f"two instances share principal {inst.principal}")
        principals.append(inst.principal)
        acls |= _topic_acls(inst.principal, inst.reads, "read")
        # How long a read topic keeps records bounds how long the inbox keeps their ids
        # (corridor.inbox.InboxPruner): read from the topic's effective settings, not assumed.
        acls |= {Acl(inst.principal, "topic", t, "describe_configs") for t in inst.reads}
        acls |= {Acl(inst.principal, "group", g, "read") for g in inst.groups}
        acls |= _topic_acls(inst.principal, inst.writes | set(inst.dead_letters), "write")
        consumed |= inst.reads
        all_topics |= inst.reads | inst.writes | set(inst.dead_letters)

    for client in deployment.integration_clients:
        inbound = topics.inbound_status(client.mission)
        if inbound not in consumed | deployment.shared_out:
            raise PlanError(
                f"integration client {client.principal}: no service reads {inbound} "
                f"(is {client.mission} on the routes?)"
            )
        if client.principal in principals:
            raise PlanError(f"principal {client.principal} is used twice")
        principals.append(client.principal)
        acls |= _topic_acls(client.principal, [topics.STATUS], "read")
        acls.add(Acl(client.principal, "group", f"{client.principal}.", "read", "prefixed"))
        acls |= _topic_acls(client.principal, [inbound], "write")
        all_topics.add(inbound)

    # A mission's MirrorMaker: on a source cluster it reads only what is shared with its mission
    # (no group: it keeps its positions on its own cluster); on its own cluster it writes what it
    # mirrors in, into topics the admin step created (it may create none).
    for mirror in deployment.mirrors:
        if mirror.principal in principals:
            raise PlanError(f"principal {mirror.principal} is used twice")
        principals.append(mirror.principal)
        acls |= _topic_acls(mirror.principal, mirror.reads, "read")
        if connect:
            acls |= mirror_target_acls(mirror.principal, mirror.sources, mirror.writes)
        else:  # Strimzi runs MirrorMaker's Connect under names of its own (opstools.k8s grants them)
            acls |= _topic_acls(mirror.principal, mirror.writes, "write")
        all_topics |= set(mirror.reads) | set(mirror.writes)

    groups = sorted({g for inst in instances for g in inst.groups})
    for operator in deployment.operators:
        if operator in principals:
            raise PlanError(f"principal {operator} is used twice")
        principals.append(operator)
        acls |= _topic_acls(operator, all_topics, "read")
        acls |= _topic_acls(operator, consumed | {REPLAYS_TOPIC}, "write")
        acls.add(Acl(operator, "group", f"{operator}.", "read", "prefixed"))
        acls |= {Acl(operator, "group", g, "describe") for g in groups}

    dead_letter_topics = {t for inst in instances for t in inst.dead_letters}
    for page in deployment.operations_pages:
        if page in principals:
            raise PlanError(f"principal {page} is used twice")
        principals.append(page)
        acls |= _topic_acls(page, {topics.STATUS, topics.MOVEMENTS} | dead_letter_topics, "read")
        acls |= {Acl(page, "topic", t, "describe") for t in consumed}
        acls |= {Acl(page, "group", g, "describe") for g in groups}

    specs = []
    for name in sorted(all_topics):
        config: dict[str, str] = {}
        contract = topics.topic(name)
        if name == REPLAYS_TOPIC:
            config["cleanup.policy"] = "compact"
        elif name.startswith(topics.dead_letters("")):
            config["retention.ms"] = str(deployment.dead_letter_retention_ms)
        elif contract is not None and contract.personal_data:
            config["retention.ms"] = str(deployment.personal_data_retention_ms)
        partitions = 1 if name == REPLAYS_TOPIC else deployment.partitions
        specs.append(TopicSpec(name, partitions, config))
    return Plan(principals=principals, topics=specs, acls=sorted(acls))


def deployment_plan(
    path: Path = DEFAULT_DEPLOYMENT, routes: Path | None = None, cluster: str | None = None
) -> tuple[Deployment, Plan]:
    """The plan of the description's ``cluster`` (``routes`` overrides its routes file, as a test
    stack does)."""
    description = DeploymentDescription.load(path)
    if routes is not None:
        description = description.model_copy(update={"routes": routes.resolve()})
    check_description(description)
    deployment = cluster_view(description, cluster)
    if routes is not None:
        deployment = deployment.model_copy(update={"routes": routes.resolve()})
    return deployment, plan(deployment, needs_from_code(deployment.routes))


def check_description(description: DeploymentDescription) -> None:
    """The description agrees with the routes and the code, and shares no personal data it may not."""
    checkpoints_match_routes(description)
    check_shares(
        description,
        [
            Needs(n.principal, n.reads, n.writes | set(n.dead_letters))
            for n in needs_from_code(description.routes)
        ],
    )


# --- credentials ---------------------------------------------------------------------------------


def password_file(secrets_dir: Path, principal: str) -> Path:
    return secrets_dir / f"{principal}.password"


def principal_password(secrets_dir: Path, principal: str) -> str:
    """The principal's password from its file (mode 600), generated there the first time."""
    return read_or_create_secret(password_file(secrets_dir, principal))


def principal_access(bootstrap: str, secrets_dir: Path, principal: str) -> KafkaAccess:
    return KafkaAccess(
        bootstrap=bootstrap,
        username=principal,
        password=SecretStr(password_file(secrets_dir, principal).read_text().strip()),
    )


# --- apply ---------------------------------------------------------------------------------------


@dataclass
class Applied:
    created_topics: list[str]
    configured_topics: list[str]
    acls: int
    credentials: int
    seconds: float
    removed_acls: list[str] = field(default_factory=list)


def apply(
    the_plan: Plan,
    admin: KafkaAccess,
    secrets_dir: Path,
    *,
    replication: int | None = None,
    timeout: float = 60.0,
) -> Applied:
    """Make the cluster hold the plan's topics, credentials and ACLs (idempotent).

    Topics that exist keep their partitions and get the plan's configuration. An ACL the plan does
    not hold is removed, whoever added it (a principal keeps only what its purpose needs, also after
    the deployment shrinks); the super user has none to remove. Topics and credentials the plan no
    longer names are left: deleting data or locking out a client is an operator's decision."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewTopic,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    started = time.monotonic()
    client = AdminClient(admin.librdkafka())
    brokers = len(client.list_topics(timeout=timeout).brokers)
    rf = replication or min(3, max(1, brokers))

    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            principal,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
            principal_password(secrets_dir, principal).encode(),
        )
        for principal in the_plan.principals
    ]
    for future in client.alter_user_scram_credentials(upserts, request_timeout=timeout).values():
        future.result()

    existing = set(client.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=rf, config=t.config)
        for t in the_plan.topics
        if t.name not in existing
    ]
    created: list[str] = []
    if new:
        for name, future in client.create_topics(new, request_timeout=timeout).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    configured: list[str] = []
    changes = [
        ConfigResource(
            ResourceType.TOPIC,
            t.name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in t.config.items()
            ],
        )
        for t in the_plan.topics
        if t.name in existing and t.config
    ]
    if changes:
        for resource, future in client.incremental_alter_configs(changes, request_timeout=timeout).items():
            future.result()
            configured.append(resource.name)

    operations = {
        "read": AclOperation.READ,
        "write": AclOperation.WRITE,
        "describe": AclOperation.DESCRIBE,
        "create": AclOperation.CREATE,
        "describe_configs": AclOperation.DESCRIBE_CONFIGS,
        "alter_configs": AclOperation.ALTER_CONFIGS,
        "idempotent_write": AclOperation.IDEMPOTENT_WRITE,
    }
    resources = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "cluster": ResourceType.BROKER,  # librdkafka's name for Kafka's CLUSTER resource
        "transactional_id": ResourceType.TRANSACTIONAL_ID,
    }
    bindings = [
        AclBinding(
            resources[a.resource],
            a.name,
            ResourcePatternType.PREFIXED if a.pattern == "prefixed" else ResourcePatternType.LITERAL,
            f"User:{a.principal}",
            "*",
            operations[a.operation],
            AclPermissionType.ALLOW,
        )
        for a in the_plan.acls
    ]
    # librdkafka refuses an empty list (a cluster whose principals need nothing, yet)
    for future in (client.create_acls(bindings, request_timeout=timeout) if bindings else {}).values():
        future.result()

    wanted = {(b.restype, b.name, b.resource_pattern_type, b.principal, b.operation) for b in bindings}
    # None matches any name, principal and host (librdkafka's filter; the type stubs say str).
    everything = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    stale = [
        b
        for b in client.describe_acls(everything, request_timeout=timeout).result()
        if (b.restype, b.name, b.resource_pattern_type, b.principal, b.operation) not in wanted
        or b.permission_type != AclPermissionType.ALLOW
        or b.host != "*"
    ]
    removed: list[str] = []
    if stale:
        filters = [
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            for b in stale
        ]
        for future in client.delete_acls(filters, request_timeout=timeout).values():
            removed += [
                f"{b.principal} {b.operation.name} {b.restype.name}:{b.name}" for b in future.result()
            ]
    return Applied(created, configured, len(bindings), len(upserts), time.monotonic() - started, removed)


# --- CLI -----------------------------------------------------------------------------------------

app = typer.Typer(
    rich_markup_mode=None, add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0]
)

DeploymentOption = Annotated[
    Path, typer.Option("--deployment", help="The deployment description.", exists=True, dir_okay=False)
]

RoutesOption = Annotated[
    Path | None, typer.Option("--routes", help="Instead of the description's routes file.", dir_okay=False)
]

ClusterOption = Annotated[
    str | None,
    typer.Option("--cluster", help="The description's cluster to plan (needed when it has several)."),
]


@app.command("plan")
def plan_command(
    deployment: DeploymentOption = DEFAULT_DEPLOYMENT,
    routes: RoutesOption = None,
    cluster: ClusterOption = None,
) -> None:
    """Print the principals, topics and ACLs the deployment needs on a cluster."""
    _, the_plan = deployment_plan(deployment, routes, cluster)
    typer.echo(the_plan.describe())


@app.command("apply")
def apply_command(
    bootstrap: Annotated[str, typer.Option("--bootstrap", envvar="CORRIDOR_KAFKA_BOOTSTRAP")],
    secrets_dir: Annotated[
        Path, typer.Option("--secrets-dir", help="<principal>.password files (mode 600), created if missing")
    ],
    admin_password_file: Annotated[Path, typer.Option("--admin-password-file", exists=True, dir_okay=False)],
    deployment: DeploymentOption = DEFAULT_DEPLOYMENT,
    routes: RoutesOption = None,
    cluster: ClusterOption = None,
    admin_user: Annotated[str, typer.Option("--admin-user")] = "admin",
    replication: Annotated[int | None, typer.Option("--replication", help="Default: min(3, brokers)")] = None,
) -> None:
    """Create the topics, credentials and ACLs the deployment needs on a cluster, as its super user."""
    _, the_plan = deployment_plan(deployment, routes, cluster)
    admin = KafkaAccess(
        bootstrap=bootstrap, username=admin_user, password=SecretStr(admin_password_file.read_text().strip())
    )
    done = apply(the_plan, admin, secrets_dir, replication=replication)
    typer.echo(
        f"{len(done.created_topics)} topic(s) created, {len(done.configured_topics)} reconfigured, "
        f"{done.acls} ACLs ({len(done.removed_acls)} stale removed), {done.credentials} credentials "
        f"in {done.seconds:.1f} s"
    )
    for line in done.removed_acls:
        typer.echo(f"  removed: {line}")


def main(argv: list[str] | None = None) -> Any:
    return app(argv)


if __name__ == "__main__":
    sys.exit(app())
