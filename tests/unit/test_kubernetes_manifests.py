"""The Kubernetes manifests of both deployment shapes (deploy/helm/corridor, values from
opstools.k8s): rendered with the pinned Helm, every core object checked against Kubernetes' own
schemas and every Strimzi object against the committed schema, and cross-checked against what the
code needs: every topic and principal a service uses exists with the ACLs it needs, and nothing
more; MirrorMaker carries no personal data but a post's manifests to its own country."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from contracts import topics
from corridor.settings import REPO_ROOT
from devkit.devinfra import gotools
from opstools import k8s, kafkaadmin
from opstools.deployments import DeploymentDescription, mirror_principal

pytestmark = pytest.mark.go_tool("helm")

CHART = REPO_ROOT / "deploy" / "helm" / "corridor"
DESCRIPTIONS = REPO_ROOT / "deploy" / "deployments"
STRIMZI_SCHEMA = REPO_ROOT / "deploy" / "k8s" / "strimzi-schema" / "strimzi-0.49-v1beta2.json"
KUBERNETES = "1.34.0"  # the Kubernetes version both Helm and the schemas check against
STRIMZI_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "KafkaMirrorMaker2"}
CORE_KINDS = {"Namespace", "Deployment", "Service"}
SHAPES = ["shared", "per-mission"]

# What an operator must give (values.yaml has no defaults for them).
OPERATOR_VALUES = [
    "auth.issuer=https://idp.example.org/realms/corridor",
    "auth.audience=corridor",
    "auth.jwksUrl=https://idp.example.org/realms/corridor/certs",
    "databases.corridor.host=postgres.corridor.svc",
    "databases.kaz.host=postgres.corridor-kaz.svc",
    "databases.uzb.host=postgres.corridor-uzb.svc",
    "databases.tjk.host=postgres.corridor-tjk.svc",
]

Obj = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    binary = gotools.ensure(gotools.HELM)  # built beside the suite (or now, if that build is not running)
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120, check=False)


def values_args(shape: str, *extra: str) -> list[str]:
    args = ["-f", str(CHART / f"values-{shape}.yaml")]
    for value in [*OPERATOR_VALUES, *extra]:
        args += ["--set", value]
    return args


def render(shape: str, *extra: str) -> list[Obj]:
    done = helm("template", "corridor", str(CHART), "--kube-version", KUBERNETES, *values_args(shape, *extra))
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def descriptions() -> dict[str, DeploymentDescription]:
    return {shape: DeploymentDescription.load(DESCRIPTIONS / f"{shape}.yaml") for shape in SHAPES}


@pytest.fixture(scope="module")
def needs(descriptions: dict[str, DeploymentDescription]) -> list[kafkaadmin.InstanceNeeds]:
    return kafkaadmin.needs_from_code(descriptions["shared"].routes)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {shape: render(shape) for shape in SHAPES}


def of_kind(objects: list[Obj], kind: str, namespace: str | None = None) -> Iterator[Obj]:
    for obj in objects:
        if obj["kind"] == kind and (namespace is None or obj["metadata"].get("namespace") == namespace):
            yield obj


def granted(user: Obj) -> set[tuple[str, str, str, str]]:
    """A KafkaUser's ACLs as (resource type, name, pattern, operation)."""
    found = set()
    for rule in user["spec"]["authorization"]["acls"]:
        assert rule.get("type", "allow") == "allow" and rule["host"] == "*"
        res = rule["resource"]
        for op in rule["operations"]:
            found.add((res["type"], res["name"], res["patternType"], op))
    return found


def allows(user: Obj, operation: str, kind: str, name: str) -> bool:
    """Whether the rendered rules let the user do it, as Kafka's StandardAuthorizer decides (a
    Read or Write implies Describe)."""
    for rtype, rname, pattern, op in granted(user):
        if rtype != kind:
            continue
        if not (name.startswith(rname) if pattern == "prefix" else name == rname):
            continue
        if op == operation or (operation == "Describe" and op in {"Read", "Write"}):
            return True
    return False


@pytest.fixture(scope="module")
def known(descriptions: dict[str, DeploymentDescription], needs: list[kafkaadmin.InstanceNeeds]) -> set[str]:
    """Every topic planned on any cluster of the cluster-per-mission shape."""
    description = descriptions["per-mission"]
    return {
        t.name
        for cluster in description.clusters
        for t in kafkaadmin.plan(kafkaadmin.cluster_view(description, cluster), needs).topics
    }


def env_of(deployment: Obj) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


# --- rendering and schemas --------------------------------------------------------------------------


def test_the_committed_values_are_what_each_description_gives() -> None:
    for path in sorted(DESCRIPTIONS.glob("*.yaml")):
        assert k8s.values_file(path).read_text() == k8s.values_text(path), (
            f"{k8s.values_file(path).name} is stale: python -m opstools.k8s export"
        )


@pytest.mark.parametrize("shape", SHAPES)
def test_helm_lint_passes(shape: str) -> None:
    done = helm("lint", str(CHART), "--strict", "--kube-version", KUBERNETES, *values_args(shape))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_chart_refuses_to_render_without_the_identity_provider() -> None:
    done = helm(
        "template", "corridor", str(CHART), "--kube-version", KUBERNETES,
        "-f", str(CHART / "values-shared.yaml"), "--set", "databases.corridor.host=pg",
    )  # fmt: skip
    assert done.returncode != 0 and "auth.issuer" in done.stderr


def test_both_shapes_render_what_they_should(rendered: dict[str, list[Obj]]) -> None:
    kinds = {shape: Counter(obj["kind"] for obj in objects) for shape, objects in rendered.items()}
    shared, per_mission = kinds["shared"], kinds["per-mission"]
    assert (shared["Namespace"], shared["Kafka"], shared["KafkaMirrorMaker2"]) == (1, 1, 0)
    assert (per_mission["Namespace"], per_mission["Kafka"], per_mission["KafkaMirrorMaker2"]) == (3, 3, 3)
    for counts in (shared, per_mission):
        # 4 host services, 4 border posts, the operations page
        assert counts["Deployment"] == counts["Service"] == 9
        present = set(counts)
        assert (
            present == (STRIMZI_KINDS - ({"KafkaMirrorMaker2"} if counts is shared else set())) | CORE_KINDS
        )
    assert {o["metadata"]["name"] for o in of_kind(rendered["per-mission"], "Namespace")} == {
        "corridor-kaz",
        "corridor-uzb",
        "corridor-tjk",
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_every_core_object_is_valid_for_the_pinned_kubernetes(
    rendered: dict[str, list[Obj]], shape: str
) -> None:
    checked = 0
    for obj in rendered[shape]:
        if obj["kind"] in STRIMZI_KINDS:
            continue
        assert obj["kind"] in CORE_KINDS
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)  # raises on any unknown or wrong field
        checked += 1
    assert checked == 19 if shape == "shared" else checked == 21


def strimzi_validator(kind: str) -> Draft202012Validator:
    schema = json.loads(STRIMZI_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator({**schema, "$ref": f"#/$defs/{kind}"})


@pytest.mark.parametrize("shape", SHAPES)
def test_every_strimzi_object_matches_the_strimzi_schema(rendered: dict[str, list[Obj]], shape: str) -> None:
    validators = {kind: strimzi_validator(kind) for kind in STRIMZI_KINDS}
    for obj in rendered[shape]:
        if obj["kind"] in STRIMZI_KINDS:
            errors = [e.message for e in validators[obj["kind"]].iter_errors(obj)]
            assert not errors, f"{obj['kind']} {obj['metadata']['name']}: {errors}"


def test_the_strimzi_schema_refuses_deprecated_and_misspelt_fields(rendered: dict[str, list[Obj]]) -> None:
    user = next(of_kind(rendered["per-mission"], "KafkaUser"))
    rule = user["spec"]["authorization"]["acls"][0]
    old_rule = {**rule, "operation": "Read"}
    bad_user = {**user, "spec": {**user["spec"], "authorization": {"type": "simple", "acls": [old_rule]}}}
    with pytest.raises(ValidationError):
        strimzi_validator("KafkaUser").validate(bad_user)
    mm2 = next(of_kind(rendered["per-mission"], "KafkaMirrorMaker2"))
    with pytest.raises(ValidationError):
        strimzi_validator("KafkaMirrorMaker2").validate(
            {**mm2, "spec": {**mm2["spec"], "connectCluster": "kaz"}}
        )
    kafka = next(of_kind(rendered["per-mission"], "Kafka"))
    plaintext = {**kafka["spec"]["kafka"]["listeners"][0], "authentication": {"type": "plain"}}
    with pytest.raises(ValidationError):
        strimzi_validator("Kafka").validate(
            {
                **kafka,
                "spec": {**kafka["spec"], "kafka": {**kafka["spec"]["kafka"], "listeners": [plaintext]}},
            }
        )


# --- Kafka: what the code needs, and nothing more ------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_each_cluster_is_kraft_with_scram_over_tls_acls_and_no_auto_created_topics(
    rendered: dict[str, list[Obj]], shape: str
) -> None:
    for kafka in of_kind(rendered[shape], "Kafka"):
        spec = kafka["spec"]["kafka"]
        assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
        assert all(
            lst["tls"] and lst["authentication"]["type"] == "scram-sha-512" for lst in spec["listeners"]
        )
        assert spec["authorization"]["type"] == "simple"
        assert spec["config"]["auto.create.topics.enable"] is False
        (pool,) = [
            p
            for p in of_kind(rendered[shape], "KafkaNodePool", kafka["metadata"]["namespace"])
            if p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        ]
        assert set(pool["spec"]["roles"]) == {"controller", "broker"}


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


@pytest.mark.parametrize("shape", SHAPES)
def test_only_its_own_pods_and_the_receiving_missions_mirrormakers_reach_a_cluster(
    rendered: dict[str, list[Obj]], descriptions: dict[str, DeploymentDescription], shape: str
) -> None:
    description = descriptions[shape]
    for kafka in of_kind(rendered[shape], "Kafka"):
        cluster, ns = kafka["metadata"]["name"], kafka["metadata"]["namespace"]
        (listener,) = [lst for lst in kafka["spec"]["kafka"]["listeners"] if lst["name"] == "tls"]
        peers = listener["networkPolicyPeers"]
        local = [p for p in peers if "namespaceSelector" not in p]
        remote = {
            (
                p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                p["podSelector"]["matchLabels"]["strimzi.io/cluster"],
            )
            for p in peers
            if "namespaceSelector" in p
        }
        receivers = {s.target for s in description.shares_from(cluster)}
        assert remote == {(k8s.namespace(description.cluster_of(m)), mirror_principal(m)) for m in receivers}
        for deployment in of_kind(rendered[shape], "Deployment", ns):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert any(selects(p["podSelector"], labels) for p in local), deployment["metadata"]["name"]
        assert not any(selects(p["podSelector"], {"app.kubernetes.io/name": "other"}) for p in local)


STRIMZI_OPERATION = {
    "read": "Read",
    "write": "Write",
    "describe": "Describe",
    "create": "Create",
    "describe_configs": "DescribeConfigs",
    "alter_configs": "AlterConfigs",
    "idempotent_write": "IdempotentWrite",
}
"""Kafka's operations as Strimzi's KafkaUser spells them (its CRD's enum)."""


@pytest.mark.parametrize("shape", SHAPES)
def test_topics_and_users_are_exactly_the_plans(
    rendered: dict[str, list[Obj]],
    descriptions: dict[str, DeploymentDescription],
    needs: list[kafkaadmin.InstanceNeeds],
    shape: str,
) -> None:
    description = descriptions[shape]
    for cluster in description.clusters:
        ns = k8s.namespace(cluster)
        the_plan = kafkaadmin.plan(kafkaadmin.cluster_view(description, cluster), needs, connect=False)
        receivers = {mirror_principal(s.target) for s in description.shares_into(cluster)}
        connect_topics = {t for p in receivers for t in k8s.connect_topics(p).values()}
        assert bool(receivers) == (shape == "per-mission")

        kafka_topics = {t["spec"]["topicName"]: t for t in of_kind(rendered[shape], "KafkaTopic", ns)}
        assert set(kafka_topics) == {t.name for t in the_plan.topics} | connect_topics
        for spec in the_plan.topics:
            rendered_topic = kafka_topics[spec.name]["spec"]
            assert rendered_topic["partitions"] == spec.partitions
            assert rendered_topic.get("config", {}) == spec.config

        users = {u["metadata"]["name"]: u for u in of_kind(rendered[shape], "KafkaUser", ns)}
        assert set(users) == set(the_plan.principals)
        expected: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
        for acl in the_plan.acls:
            pattern = "prefix" if acl.pattern == "prefixed" else "literal"
            expected[acl.principal].add((acl.resource, acl.name, pattern, STRIMZI_OPERATION[acl.operation]))
        for principal in receivers:
            expected[principal] |= {
                (r.resource, r.name, r.pattern, r.operation) for r in k8s.connect_rules(principal)
            }
        for name, user in users.items():
            assert user["spec"]["authentication"]["type"] == "scram-sha-512"
            assert granted(user) == expected[name], name


@pytest.mark.parametrize("shape", SHAPES)
def test_every_service_can_do_what_its_code_does_on_its_own_cluster(
    rendered: dict[str, list[Obj]], needs: list[kafkaadmin.InstanceNeeds], shape: str
) -> None:
    by_principal = {n.principal: n for n in needs}
    checked = set()
    for deployment in of_kind(rendered[shape], "Deployment"):
        ns = deployment["metadata"]["namespace"]
        env = env_of(deployment)
        principal = env["CORRIDOR_KAFKA_USERNAME"]["value"]
        (user,) = [u for u in of_kind(rendered[shape], "KafkaUser", ns) if u["metadata"]["name"] == principal]
        existing = {t["spec"]["topicName"] for t in of_kind(rendered[shape], "KafkaTopic", ns)}
        cluster = env["CORRIDOR_KAFKA_BOOTSTRAP"]["value"].removesuffix("-kafka-bootstrap:9093")
        assert any(k["metadata"]["name"] == cluster for k in of_kind(rendered[shape], "Kafka", ns))
        if principal not in by_principal:  # the operations page: no consumer of its own in the code
            assert (
                deployment["spec"]["template"]["spec"]["containers"][0]["command"][-1]
                == "services.operations"
            )
            for topic in (topics.STATUS, topics.MOVEMENTS):
                assert topic in existing and allows(user, "Read", "topic", topic)
            continue
        n = by_principal[principal]
        for topic in n.reads:
            assert topic in existing and allows(user, "Read", "topic", topic), (principal, topic)
        for topic in n.writes | set(n.dead_letters):
            assert topic in existing and allows(user, "Write", "topic", topic), (principal, topic)
        for group in n.groups:
            assert allows(user, "Read", "group", group), (principal, group)
        # ... and not another instance's: nothing it does not write.
        for other in set(existing) - n.writes - set(n.dead_letters):
            assert not allows(user, "Write", "topic", other), (principal, other)
        checked.add(principal)
    assert checked == set(by_principal)


# --- MirrorMaker 2 ------------------------------------------------------------------------------------


def test_mirrormaker_copies_exactly_the_shares_under_the_same_names(
    rendered: dict[str, list[Obj]], descriptions: dict[str, DeploymentDescription], known: set[str]
) -> None:
    description = descriptions["per-mission"]
    for mm2 in of_kind(rendered["per-mission"], "KafkaMirrorMaker2"):
        target = mm2["spec"]["target"]["alias"]
        principal = mm2["metadata"]["name"]
        assert mm2["metadata"]["namespace"] == k8s.namespace(target)
        for mirror in mm2["spec"]["mirrors"]:
            source = mirror["source"]["alias"]
            shared = {
                t
                for s in description.shares
                if description.cluster_of(s.source) == source and description.cluster_of(s.target) == target
                for t in s.topics
            }
            pattern = re.compile(mirror["topicsPattern"])
            assert {t for t in known if pattern.fullmatch(t)} == shared
            config = mirror["sourceConnector"]["config"]
            assert config["replication.policy.class"] == k8s.IDENTITY_POLICY
            assert config["emit.offset-syncs.enabled"] == "false"
            assert mm2["spec"]["target"]["config"]["exactly.once.source.support"] == "enabled"
            assert mirror["source"]["authentication"]["username"] == principal
            # On the sender it may only read what is shared with its mission.
            (on_source,) = [
                u for u in of_kind(rendered["per-mission"], "KafkaUser", k8s.namespace(source))
                if u["metadata"]["name"] == principal
            ]  # fmt: skip
            reads = {name for kind, name, _, op in granted(on_source) if kind == "topic" and op == "Read"}
            assert {op for *_, op in granted(on_source)} <= {"Read", "Describe"}
            assert shared <= reads


def test_personal_data_is_mirrored_only_as_a_posts_manifests_to_its_own_country(
    rendered: dict[str, list[Obj]], descriptions: dict[str, DeploymentDescription], known: set[str]
) -> None:
    description = descriptions["per-mission"]
    personal = {t for t in known if (contract := topics.topic(t)) is not None and contract.personal_data}
    assert topics.CASES in personal and topics.manifests("uzb-oybek-exit") in personal
    crossing = 0
    for mm2 in of_kind(rendered["per-mission"], "KafkaMirrorMaker2"):
        missions = description.missions_on(mm2["spec"]["target"]["alias"])
        allowed = {topics.manifests(cp) for m in missions for cp in description.posts_of(m)}
        for mirror in mm2["spec"]["mirrors"]:
            pattern = re.compile(mirror["topicsPattern"])
            for topic in personal:
                if pattern.fullmatch(topic):
                    assert topic in allowed, (mm2["metadata"]["name"], topic)
                    crossing += 1
    assert crossing == 3  # the manifests of UZB's two posts and TJK's one


# --- Deployments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_every_deployment_has_probes_resources_and_no_secret_in_its_spec(
    rendered: dict[str, list[Obj]], shape: str
) -> None:
    for deployment in of_kind(rendered[shape], "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        name = deployment["metadata"]["name"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert "memory" in container["resources"]["limits"], name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        secret_volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        env = env_of(deployment)
        for var, entry in env.items():
            assert "valueFrom" not in entry or "secretKeyRef" not in entry["valueFrom"], var
            if re.search(r"PASSWORD|SECRET|TOKEN", var):
                # only the path of a file mounted from a Secret
                assert var.endswith(("_FILE", "_DIR")), var
                directory = str(Path(entry["value"]).parent) if var.endswith("_FILE") else entry["value"]
                assert mounts[directory] in secret_volumes, var
        assert (
            secret_volumes[mounts["/var/run/secrets/corridor/kafka"]]
            == env["CORRIDOR_KAFKA_USERNAME"]["value"]
        )
        assert env["CORRIDOR_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        if "CORRIDOR_DATABASE_URL" in env:
            assert "@" in env["CORRIDOR_DATABASE_URL"]["value"]
            user = env["CORRIDOR_DATABASE_URL"]["value"].split("//")[1].split("@")[0]
            assert ":" not in user, "a password in the database URL"
            assert "CORRIDOR_DATABASE_PASSWORD_FILE" in env
    assert not list(of_kind(rendered[shape], "Secret")), (
        "the chart writes no Secret: operators and Strimzi do"
    )


def test_each_mission_applies_only_its_own_namespace() -> None:
    for cluster in ("kaz", "uzb", "tjk"):
        objects = render("per-mission", f"only={cluster}")
        assert objects and {o["metadata"].get("namespace", o["metadata"]["name"]) for o in objects} == {
            k8s.namespace(cluster)
        }


def test_operator_choices_reach_the_objects() -> None:
    objects = render(
        "shared",
        "image.repository=registry.mission.example/corridor",
        "image.tag=2026.11.30",
        "resources.intake.limits.memory=1Gi",
    )
    (intake,) = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] == "intake"]
    (container,) = intake["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.mission.example/corridor:2026.11.30"
    assert container["resources"]["limits"]["memory"] == "1Gi"


def test_missions_on_separate_kubernetes_clusters_reach_each_other_through_an_external_listener() -> None:
    objects = render(
        "per-mission",
        "kafka.externalListener.enabled=true",
        "kafka.bootstrap.kaz=kafka.kaz.mission.example:9094",
    )
    for kafka in of_kind(objects, "Kafka"):
        strimzi_validator("Kafka").validate(kafka)
        external = [lst for lst in kafka["spec"]["kafka"]["listeners"] if lst["name"] == "external"]
        assert external and external[0]["tls"] and external[0]["authentication"]["type"] == "scram-sha-512"
    for mm2 in of_kind(objects, "KafkaMirrorMaker2"):
        for mirror in mm2["spec"]["mirrors"]:
            if mirror["source"]["alias"] == "kaz":
                assert mirror["source"]["bootstrapServers"] == "kafka.kaz.mission.example:9094"
            else:
                assert mirror["source"]["bootstrapServers"].endswith(".svc:9093")
