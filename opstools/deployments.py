"""One description of a deployment, from which topics, ACLs, mirroring and the local stack derive.

A deployment takes one of two shapes, chosen by its description (``deploy/deployments/*.yaml``):

- **shared cluster**: every mission's services on one Kafka cluster (and one PostgreSQL server);
- **cluster per mission**: each mission runs its own Kafka cluster and PostgreSQL with the
  services it owns (the host mission its intake, eligibility, transport and reporting; each
  country the border posts on its soil), and MirrorMaker 2 copies only the topics the description
  shares, from the cluster where they are written to the mission that reads them, under the same
  names (``IdentityReplicationPolicy``).

What each service instance reads and writes is not listed here: it comes from the code
(``opstools.kafkaadmin.needs_from_code``). The description says where each part runs and what
crosses a border; ``check_shares`` proves the two agree, and that no personal data is shared
beyond what its purpose needs (a border post's manifests go to the post's own country, nothing
else that names a person leaves the host mission).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts import topics
from contracts.routes import RouteBook

HOST_SERVICES = ("intake", "eligibility", "transport", "reporting")
HostService = Literal["intake", "eligibility", "transport", "reporting"]
Mission = str
NAME = r"^[a-z0-9][a-z0-9.-]{1,60}$"


class MissionSpec(BaseModel):
    """What one country mission runs, and where."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cluster: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$", description="The Kafka cluster its services use")
    database: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,30}$", description="The PostgreSQL server holding its services' databases"
    )
    services: list[HostService] = Field(
        default_factory=list,
        description="The host mission's services it runs (only the host mission runs any)",
    )
    checkpoints: list[str] | None = Field(
        default=None,
        description="The border posts it runs, checkpoints on its own soil (default: every checkpoint of "
        "the routes in its country)",
    )
    integration_client: str | None = Field(
        default=None,
        pattern=NAME,
        description="The Kafka principal of its own systems: reads the status stream, reports its statuses",
    )
    operators: list[str] = Field(
        default_factory=list,
        description="Operations principals on its cluster: read every topic there, replay dead letters",
    )
    operations_pages: list[str] = Field(
        default_factory=list, description="Operations page principals on its cluster (services.operations)"
    )


class Share(BaseModel):
    """Topics one mission's cluster sends to another mission's (cluster per mission only)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    source: Mission = Field(alias="from", pattern=r"^[A-Z]{3}$")
    target: Mission = Field(alias="to", pattern=r"^[A-Z]{3}$")
    topics: list[str] = Field(min_length=1)


class DeploymentDescription(BaseModel):
    """``deploy/deployments/<name>.yaml``: where each part of Corridor runs and what crosses borders."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,60}$")
    routes: Path = Field(description="Routes file, relative to the description")
    host_mission: Mission = Field(pattern=r"^[A-Z]{3}$")
    partitions: int = Field(default=3, ge=1)
    personal_data_retention_ms: int = Field(
        ge=3_600_000, description="retention.ms of topics that carry personal data (contracts.topics)"
    )
    dead_letter_retention_ms: int = Field(ge=3_600_000, description="retention.ms of every dlt.* topic")
    missions: dict[Mission, MissionSpec] = Field(description="By ISO 3166-1 alpha-3 code")
    shares: list[Share] = Field(default_factory=list)

    @field_validator("missions")
    @classmethod
    def _iso_codes(cls, missions: dict[Mission, MissionSpec]) -> dict[Mission, MissionSpec]:
        bad = [m for m in missions if not (len(m) == 3 and m.isalpha() and m.isupper())]
        if bad:
            raise ValueError(f"mission codes are ISO 3166-1 alpha-3: {bad}")
        return missions

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentDescription:
        if self.host_mission not in self.missions:
            raise ValueError(f"the host mission {self.host_mission} is not among the missions")
        for code, mission in self.missions.items():
            if mission.services and code != self.host_mission:
                raise ValueError(f"{code} runs {mission.services}: only the host mission runs those services")
        missing = set(HOST_SERVICES) - set(self.missions[self.host_mission].services)
        if missing:
            raise ValueError(f"the host mission runs no {sorted(missing)}")
        posts = [cp for m in self.missions.values() for cp in m.checkpoints or []]
        if len(posts) != len(set(posts)):
            raise ValueError("a checkpoint is run by two missions")
        principals = [p for m in self.missions.values() for p in m.operators + m.operations_pages]
        principals += [m.integration_client for m in self.missions.values() if m.integration_client]
        if len(principals) != len(set(principals)):
            raise ValueError("a principal is named twice")
        for share in self.shares:
            for end in (share.source, share.target):
                if end not in self.missions:
                    raise ValueError(f"share {share.source}->{share.target}: {end} is not a mission")
            if self.cluster_of(share.source) == self.cluster_of(share.target):
                raise ValueError(f"share {share.source}->{share.target}: both missions are on one cluster")
        return self

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> DeploymentDescription:
        loaded = cls.model_validate(yaml.safe_load(path.read_text()))
        if not loaded.routes.is_absolute():
            loaded = loaded.model_copy(update={"routes": (path.parent / loaded.routes).resolve()})
        return loaded

    @classmethod
    def json_schema_text(cls) -> str:
        """The description's JSON Schema (committed beside the descriptions, for editors)."""
        return json.dumps(cls.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n"

    # --- where things run ------------------------------------------------------------------------

    @property
    def clusters(self) -> list[str]:
        return sorted({m.cluster for m in self.missions.values()})

    @property
    def database_servers(self) -> list[str]:
        return sorted({m.database for m in self.missions.values()})

    @property
    def shape(self) -> Literal["shared", "per-mission"]:
        return "shared" if len(self.clusters) == 1 else "per-mission"

    def cluster_of(self, mission: Mission) -> str:
        return self.missions[mission].cluster

    def missions_on(self, cluster: str) -> list[Mission]:
        return [code for code, m in self.missions.items() if m.cluster == cluster]

    def posts_of(self, mission: Mission) -> list[str]:
        """The checkpoints whose posts the mission runs."""
        listed = self.missions[mission].checkpoints
        if listed is not None:
            return list(listed)
        routes = RouteBook.load(self.routes)
        on_routes = {cp.checkpoint_id: cp.country for r in routes.routes for cp in r.checkpoints}
        return [cp for cp, country in on_routes.items() if country == mission]

    def instances(self) -> list[Instance]:
        """Every service instance, with its mission (principals as the code names them)."""
        found = [
            Instance(name, f"services.{name}", name, self.host_mission, None)
            for name in self.missions[self.host_mission].services
        ]
        for code in self.missions:
            for cp in self.posts_of(code):
                found.append(
                    Instance(f"border-clearance.{cp}", "services.border_clearance", f"border-{cp}", code, cp)
                )
        return found

    def instance_cluster(self, principal: str) -> str:
        return next(self.cluster_of(i.mission) for i in self.instances() if i.principal == principal)

    def shares_into(self, cluster: str) -> list[Share]:
        return [s for s in self.shares if self.cluster_of(s.target) == cluster]

    def shares_from(self, cluster: str) -> list[Share]:
        return [s for s in self.shares if self.cluster_of(s.source) == cluster]


@dataclass(frozen=True)
class Instance:
    principal: str
    module: str
    name: str
    """The local stack's name for it (``border-<checkpoint>`` for a post)."""
    mission: Mission
    checkpoint: str | None


def mirror_principal(mission: Mission) -> str:
    """The principal a mission's MirrorMaker uses: on each source it reads only what the mission
    receives; on its own cluster it writes what it mirrors in."""
    return f"mirror-{mission.lower()}"


class DescriptionError(ValueError):
    """The description and the code disagree, or the description would send data where it may not go."""


@dataclass(frozen=True)
class Needs:
    principal: str
    reads: frozenset[str]
    writes: frozenset[str]


def check_shares(description: DeploymentDescription, needs: Sequence[Needs]) -> None:
    """Raise ``DescriptionError`` unless each instance can read, on its own cluster, every topic its
    code reads; every shared topic is written on its source's cluster and not on the target's (the
    identity policy cannot tell a mirrored record from a local one, so no topic may flow both ways);
    and no personal data is shared but a border post's manifests to the post's own country."""
    clusters = {n.principal: description.instance_cluster(n.principal) for n in needs}
    written_on: dict[str, set[str]] = {}
    for n in needs:
        for t in n.writes:
            written_on.setdefault(t, set()).add(clusters[n.principal])
    for code, mission in description.missions.items():
        if mission.integration_client:
            written_on.setdefault(topics.inbound_status(code), set()).add(mission.cluster)
    problems: list[str] = []
    for topic, where in sorted(written_on.items()):
        if len(where) > 1:
            problems.append(f"{topic} is written on {sorted(where)}: a topic has one home cluster")
    arriving: dict[str, set[str]] = {}
    for share in description.shares:
        source, target = description.cluster_of(share.source), description.cluster_of(share.target)
        for t in share.topics:
            home = written_on.get(t, set())
            if source not in home:
                problems.append(f"{share.source}->{share.target}: {t} is not written on {source}")
            if target in home:
                problems.append(f"{share.source}->{share.target}: {t} is written on {target} too")
            arriving.setdefault(target, set()).add(t)
            problems += _personal_data_leaving(description, share, t)
    for n in needs:
        here = clusters[n.principal]
        for t in sorted(n.reads):
            writers = written_on.get(t, set())
            if writers and here not in writers and t not in arriving.get(here, set()):
                problems.append(
                    f"{n.principal} on {here} reads {t}, written on {sorted(writers)} and not shared"
                )
    if problems:
        raise DescriptionError("; ".join(problems))


def _personal_data_leaving(description: DeploymentDescription, share: Share, topic: str) -> list[str]:
    contract = topics.topic(topic)
    if contract is None or not contract.personal_data:
        return []
    posts_of_target = description.posts_of(share.target)
    if any(topic == topics.manifests(cp) for cp in posts_of_target):
        return []  # the people a post is to receive, and only to that post's country
    return [f"{share.source}->{share.target}: {topic} carries personal data that must stay in {share.source}"]


def checkpoints_match_routes(description: DeploymentDescription) -> None:
    """Every checkpoint on the routes is run by the mission of its country, and no other."""
    routes = RouteBook.load(description.routes)
    problems = []
    on_routes = {cp.checkpoint_id: cp.country for r in routes.routes for cp in r.checkpoints}
    run = {cp: code for code in description.missions for cp in description.posts_of(code)}
    for cp, country in sorted(on_routes.items()):
        if cp not in run:
            problems.append(f"no mission runs the post at {cp}")
        elif run[cp] != country:
            problems.append(f"{cp} is in {country}, run by {run[cp]}")
    problems += [f"{cp} is on no route" for cp in sorted(set(run) - set(on_routes))]
    for country in sorted(set(routes.countries()) - set(description.missions)):
        problems.append(f"{country} is on the routes and not a mission")
    if problems:
        raise DescriptionError("; ".join(problems))


def topics_of(shares: Iterable[Share]) -> set[str]:
    return {t for s in shares for t in s.topics}
