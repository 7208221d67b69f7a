"""Static checks of the Docker path (docker-compose.yml, Dockerfile, init.sql).

No Docker engine is needed. docker-compose.yml is validated against the
Compose Specification's JSON Schema as vendored by check-jsonschema (builtin
``vendor.compose-spec``, pinned by the check-jsonschema version in the dev
group), then cross-checked against the repository: the modules the services
run, the checkpoints in the routes file, the databases init.sql creates and
the directories the Dockerfile copies into the image. Security: no password or
default in the compose file (each a secret file under .secrets/), the broker's
SASL/SCRAM, authoriser and no auto-creation (and deploy/kafka/start.sh, run
against a stub Kafka), the kafka-admin step before every service, every
principal of the admin plan (opstools.kafkaadmin) and every database role with
its own credential file in the right containers, the Dockerfile's tools target.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_SQL = ROOT / "deploy" / "postgres" / "init.sql"
PYPROJECT = ROOT / "pyproject.toml"

# Not resolved: .venv/bin/python is a symlink and the venv's scripts sit beside it.
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
COMPOSE_SCHEMA = "vendor.compose-spec"

APP_DIR = PurePosixPath("/app")  # WORKDIR of the image: the repository root inside it
INFRA_SERVICES = {"kafka", "postgres"}
ADMIN_SERVICE = "kafka-admin"  # one-shot: topics, credentials and ACLs before any service starts
INITDB_DIR = PurePosixPath("/docker-entrypoint-initdb.d")
REQUIRED_ENV = {
    "CORRIDOR_KAFKA_BOOTSTRAP",
    "CORRIDOR_DATABASE_URL",
    "CORRIDOR_HTTP_HOST",
    "CORRIDOR_HTTP_PORT",
    "CORRIDOR_ROUTES_FILE",
    "CORRIDOR_MISSION",
}
# Top-level paths the image must contain whatever the compose file says.
REQUIRED_IN_IMAGE = {"pyproject.toml", "uv.lock", "contracts", "corridor", "services", "deploy"}


# --- helpers -----------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    # The safe loader resolves anchors and `<<` merge keys like Compose does.
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def dump_yaml(data: Any, path: Path) -> None:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", COMPOSE_SCHEMA, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def services_of(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def corridor_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Corridor services (everything but kafka, postgres and the one-shot kafka-admin)."""
    return {
        name: svc
        for name, svc in services_of(compose).items()
        if name not in INFRA_SERVICES and name != ADMIN_SERVICE
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=VALUE", ...]
        pairs = (item.split("=", 1) for item in env)
        return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def argv(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def python_module(command: str | list[str] | None) -> str | None:
    """`python -m pkg.mod ...` -> "pkg.mod"; anything else -> None."""
    args = argv(command)
    if len(args) >= 3 and Path(args[0]).name.startswith("python") and args[1] == "-m":
        return args[2]
    return None


def missing_main_modules(compose: dict[str, Any], root: Path) -> list[str]:
    """Services whose `python -m X` has no X/__main__.py under root (kafka-admin: opstools.X.py)."""
    problems = []
    for name, svc in services_of(compose).items():
        if "command" not in svc:
            continue
        module = python_module(svc["command"])
        prefix = "opstools." if name == ADMIN_SERVICE else "services."
        if module is None or not module.startswith(prefix):
            problems.append(f"{name}: command {svc['command']!r} is not `python -m {prefix}X`")
            continue
        parts = module.split(".")
        candidates = [root.joinpath(*parts, "__main__.py"), root.joinpath(*parts).with_suffix(".py")]
        if prefix == "services.":
            candidates = candidates[:1]
        if not any(c.is_file() for c in candidates):
            problems.append(f"{name}: {candidates[0].relative_to(root)} does not exist")
    return problems


def depends_on_targets(service: dict[str, Any]) -> list[str]:
    deps = service.get("depends_on") or []
    return list(deps) if isinstance(deps, dict | list) else []


def checkpoint_ids(routes_doc: Any) -> set[str]:
    """Walk routes[*].checkpoints[*].checkpoint_id, skipping anything malformed."""
    found: set[str] = set()
    routes = routes_doc.get("routes") if isinstance(routes_doc, dict) else None
    for route in routes if isinstance(routes, list) else []:
        checkpoints = route.get("checkpoints") if isinstance(route, dict) else None
        for checkpoint in checkpoints if isinstance(checkpoints, list) else []:
            if isinstance(checkpoint, dict) and isinstance(checkpoint.get("checkpoint_id"), str):
                found.add(checkpoint["checkpoint_id"])
    return found


_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_CREATE_DATABASE = re.compile(r'\bCREATE\s+DATABASE\s+"?([A-Za-z_][A-Za-z0-9_$]*)"?', re.IGNORECASE)


def created_databases(sql: str) -> set[str]:
    return {m.group(1).lower() for m in _CREATE_DATABASE.finditer(_SQL_COMMENT.sub("", sql))}


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and `\\` continuations joined."""
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment lines inside a continuation are skipped
            continue
        if line.endswith("\\"):
            logical.append(line[:-1])
            continue
        logical.append(line)
        joined = " ".join(logical).strip()
        logical = []
        if joined:
            keyword, _, rest = joined.partition(" ")
            yield keyword.upper(), rest.strip()


def dockerfile_copy_sources(text: str) -> set[str]:
    """Top-level names of every COPY/ADD source from the build context."""
    sources: set[str] = set()
    for keyword, rest in dockerfile_instructions(text):
        if keyword not in {"COPY", "ADD"}:
            continue
        if rest.startswith("["):
            parts = json.loads(rest)
        else:
            words = shlex.split(rest)
            if any(w.startswith("--from") for w in words):
                continue  # from another stage or image, not the build context
            parts = [w for w in words if not w.startswith("--")]
        for src in parts[:-1]:
            top = PurePosixPath(src).parts[0] if src not in {".", "./"} else "."
            sources.add(top)
    return sources


def dockerfile_cmd(text: str) -> list[str]:
    cmd: list[str] = []
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "CMD":
            cmd = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
    return cmd


def host_path(container_path: str) -> Path:
    """Map a path under the image's /app onto the repository."""
    return ROOT.joinpath(*PurePosixPath(container_path).relative_to(APP_DIR).parts)


# --- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


# --- (a) schema validation ---------------------------------------------------


def test_check_jsonschema_is_available() -> None:
    assert CHECK_JSONSCHEMA.is_file(), f"{CHECK_JSONSCHEMA} not found (dev dependencies missing?)"


def test_compose_file_matches_compose_specification() -> None:
    result = check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, describe(result)


# --- (c) the schema check does fail on broken files --------------------------


def _bad_condition(c: dict[str, Any]) -> None:
    c["services"]["intake"]["depends_on"]["kafka"]["condition"] = "service_ready"


def _unknown_service_key(c: dict[str, Any]) -> None:
    c["services"]["intake"]["restart_policy"] = "always"


def _unknown_top_level_key(c: dict[str, Any]) -> None:
    c["service"] = {"intake": {"image": "corridor:local"}}


def _healthcheck_key_typo(c: dict[str, Any]) -> None:
    c["services"]["intake"]["healthcheck"]["retry"] = 5


@pytest.mark.parametrize(
    ("break_it", "valid"),
    [
        pytest.param(None, True, id="unchanged-round-trip"),
        pytest.param(_bad_condition, False, id="depends_on-invalid-condition"),
        pytest.param(_unknown_service_key, False, id="unknown-service-key"),
        pytest.param(_unknown_top_level_key, False, id="unknown-top-level-key"),
        pytest.param(_healthcheck_key_typo, False, id="healthcheck-key-typo"),
    ],
)
def test_schema_check_rejects_broken_compose(
    tmp_path: Path,
    break_it: Callable[[dict[str, Any]], None] | None,
    valid: bool,
) -> None:
    data = load_yaml(COMPOSE_FILE)
    if break_it is not None:
        break_it(data)
    broken = tmp_path / "docker-compose.yml"
    dump_yaml(data, broken)

    result = check_compose_schema(broken)

    if valid:
        assert result.returncode == 0, describe(result)
    else:
        assert result.returncode != 0, f"broken compose file was accepted\n{describe(result)}"
        # A schema failure, not a crash or a file that could not be read.
        assert "Schema validation errors" in result.stdout + result.stderr, describe(result)


# --- (b) cross-checks against the repository ---------------------------------


def test_every_command_runs_an_existing_services_package(
    compose: dict[str, Any], dockerfile_text: str
) -> None:
    problems = missing_main_modules(compose, ROOT)
    default = python_module(dockerfile_cmd(dockerfile_text))
    if default is None:
        problems.append("Dockerfile CMD is not `python -m services.X`")
    elif not ROOT.joinpath(*default.split("."), "__main__.py").is_file():
        problems.append(f"Dockerfile CMD: {default.replace('.', '/')}/__main__.py does not exist")
    assert not problems, "\n".join(problems)


def test_every_corridor_service_has_a_command(compose: dict[str, Any]) -> None:
    without = [name for name, svc in corridor_services(compose).items() if "command" not in svc]
    assert not without, f"services without a command: {without}"


def test_missing_main_module_is_reported(tmp_path: Path) -> None:
    (tmp_path / "services" / "intake").mkdir(parents=True)
    (tmp_path / "services" / "intake" / "__main__.py").write_text("")
    (tmp_path / "services" / "transport").mkdir(parents=True)  # package without __main__
    fake = {
        "services": {
            "intake": {"command": "python -m services.intake"},
            "transport": {"command": ["python", "-m", "services.transport"]},
            "ghost": {"command": "python -m services.ghost"},
            "shell": {"command": "sh -c 'sleep 1'"},
            "kafka": {"image": "apache/kafka"},
        }
    }
    problems = missing_main_modules(fake, tmp_path)
    assert [p.split(":")[0] for p in problems] == ["transport", "ghost", "shell"]


def test_depends_on_targets_are_defined(compose: dict[str, Any]) -> None:
    defined = set(services_of(compose))
    undefined = {
        f"{name} -> {target}"
        for name, svc in services_of(compose).items()
        for target in depends_on_targets(svc)
        if target not in defined
    }
    assert not undefined, f"depends_on names undefined services: {sorted(undefined)}"


def test_corridor_services_wait_for_healthy_kafka_and_postgres(compose: dict[str, Any]) -> None:
    for name, svc in corridor_services(compose).items():
        deps = svc.get("depends_on")
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions"
        for infra in sorted(INFRA_SERVICES):
            assert deps.get(infra, {}).get("condition") == "service_healthy", (name, infra)
    for infra in sorted(INFRA_SERVICES):
        assert "healthcheck" in services_of(compose)[infra], f"{infra} has no healthcheck"


def test_corridor_service_environment_and_ports(compose: dict[str, Any]) -> None:
    seen_ports: dict[str, str] = {}
    for name, svc in corridor_services(compose).items():
        env = environment(svc)
        assert REQUIRED_ENV <= env.keys(), f"{name}: missing {sorted(REQUIRED_ENV - env.keys())}"
        assert env["CORRIDOR_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert env["CORRIDOR_HTTP_HOST"] == "0.0.0.0", name
        port = env["CORRIDOR_HTTP_PORT"]
        assert port not in seen_ports, f"{name} and {seen_ports.get(port)} share port {port}"
        seen_ports[port] = name
        assert svc.get("ports") == [f"127.0.0.1:{port}:{port}"], f"{name}: {svc.get('ports')}"
        assert svc.get("restart") == "unless-stopped", name
        probe = " ".join(argv(svc.get("healthcheck", {}).get("test")))
        assert "/health/ready" in probe, f"{name}: healthcheck does not probe /health/ready"


def test_routes_file_is_in_the_image(compose: dict[str, Any]) -> None:
    files = {environment(svc)["CORRIDOR_ROUTES_FILE"] for svc in corridor_services(compose).values()}
    for container_path in files:
        assert PurePosixPath(container_path).is_relative_to(APP_DIR), container_path
        assert host_path(container_path).is_file(), f"{container_path}: no such file in the repo"


def test_checkpoints_exist_in_routes_file(compose: dict[str, Any]) -> None:
    problems = []
    for name, svc in corridor_services(compose).items():
        env = environment(svc)
        is_border = python_module(svc.get("command")) == "services.border_clearance"
        checkpoint = env.get("CORRIDOR_CHECKPOINT")
        if is_border and not checkpoint:
            problems.append(f"{name}: border_clearance without CORRIDOR_CHECKPOINT")
        if not checkpoint:
            continue
        routes_file = host_path(env["CORRIDOR_ROUTES_FILE"])
        if not routes_file.is_file():
            problems.append(f"{name}: routes file {routes_file.relative_to(ROOT)} is missing")
            continue
        known = checkpoint_ids(json.loads(routes_file.read_text(encoding="utf-8")))
        if checkpoint not in known:
            problems.append(f"{name}: checkpoint {checkpoint!r} not in {sorted(known)}")
    assert not problems, "\n".join(problems)


def test_checkpoint_ids_tolerate_malformed_routes() -> None:
    doc = {
        "routes": [
            {"route_id": "r1", "checkpoints": [{"checkpoint_id": "a"}, {"checkpoint_id": 3}]},
            {"route_id": "r2", "checkpoints": "oops"},
            "not-a-route",
            {"route_id": "r3", "checkpoints": [None, {"name": "no id"}, {"checkpoint_id": "b"}]},
        ]
    }
    assert checkpoint_ids(doc) == {"a", "b"}
    assert checkpoint_ids({"routes": None}) == set()
    assert checkpoint_ids([]) == set()


def test_databases_are_created_by_init_sql(compose: dict[str, Any]) -> None:
    created = created_databases(INIT_SQL.read_text(encoding="utf-8"))
    wanted = {}
    for name, svc in corridor_services(compose).items():
        url = environment(svc)["CORRIDOR_DATABASE_URL"]
        assert urlsplit(url).hostname == "postgres", f"{name}: {url}"
        wanted[name] = database_name(url)
    missing = {name: db for name, db in wanted.items() if db.lower() not in created}
    assert not missing, f"databases not created by {INIT_SQL.name}: {missing}"
    assert len(set(wanted.values())) == len(wanted), f"services share a database: {wanted}"


def test_created_databases_parser() -> None:
    sql = (
        'CREATE DATABASE a;\n-- CREATE DATABASE commented;\ncreate database "B" ;\n/* CREATE DATABASE c; */\n'
    )
    assert created_databases(sql) == {"a", "b"}


def test_init_sql_is_mounted_into_postgres(compose: dict[str, Any]) -> None:
    mounts = [str(v) for v in services_of(compose)["postgres"].get("volumes", [])]
    targets = {}
    for mount in mounts:
        source, _, rest = mount.partition(":")
        targets[PurePosixPath(rest.split(":")[0])] = source
    init = [src for dst, src in targets.items() if dst.parent == INITDB_DIR or dst == INITDB_DIR]
    assert init, f"nothing mounted into {INITDB_DIR}: {mounts}"
    assert any((ROOT / src).resolve() == INIT_SQL for src in init), (init, INIT_SQL)
    # postgres:18+ keeps PGDATA in /var/lib/postgresql/<major>/docker: a volume on
    # the pre-18 /var/lib/postgresql/data would not hold the data.
    assert PurePosixPath("/var/lib/postgresql") in targets, f"data volume: {mounts}"


def test_dockerfile_copies_what_the_services_need(compose: dict[str, Any], dockerfile_text: str) -> None:
    copied = dockerfile_copy_sources(dockerfile_text)
    wheel_packages = set(
        tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["hatch"]["build"]["targets"]["wheel"][
            "packages"
        ]
    )
    modules = {
        module.split(".")[0]
        for svc in corridor_services(compose).values()
        if (module := python_module(svc.get("command")))
    }
    routes = {
        host_path(environment(svc)["CORRIDOR_ROUTES_FILE"]).relative_to(ROOT).parts[0]
        for svc in corridor_services(compose).values()
    }
    needed = REQUIRED_IN_IMAGE | wheel_packages | modules | routes
    assert needed <= copied, f"Dockerfile does not COPY {sorted(needed - copied)}"

    ignored = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert not needed & ignored, f".dockerignore excludes {sorted(needed & ignored)}"


def test_dockerfile_copy_parser() -> None:
    text = (
        "FROM python:3.11-slim\n"
        "# COPY commented ./nope\n"
        "COPY pyproject.toml uv.lock ./\n"
        "COPY --chown=1:1 contracts/ ./contracts\n"
        'COPY ["corridor", "/app/corridor"]\n'
        "COPY --from=builder /opt/venv /opt/venv\n"
        "ADD services \\\n"
        "    ./services\n"
        'CMD ["python", "-m", "services.intake"]\n'
    )
    assert dockerfile_copy_sources(text) == {
        "pyproject.toml",
        "uv.lock",
        "contracts",
        "corridor",
        "services",
    }
    assert dockerfile_cmd(text) == ["python", "-m", "services.intake"]


def test_image_runs_as_non_root(dockerfile_text: str) -> None:
    users = [rest for keyword, rest in dockerfile_instructions(dockerfile_text) if keyword == "USER"]
    assert users, "Dockerfile never switches away from root"
    assert users[-1].split(":")[0] not in {"root", "0"}, users[-1]


# --- secrets: no password in the compose file, a principal and a role per service -------------

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?([^}]*)\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|JAAS", re.IGNORECASE)
SECRETS_DIR = PurePosixPath(".secrets")  # on the host, beside docker-compose.yml (gitignored)
RUN_SECRETS = PurePosixPath("/run/secrets")  # where compose mounts a service's secrets
KAFKA_PROPERTIES = ROOT / "deploy" / "kafka" / "server.properties"
KAFKA_START = ROOT / "deploy" / "kafka" / "start.sh"
MAKE_SECRETS = ROOT / "deploy" / "docker" / "make-secrets.sh"
GITIGNORE = ROOT / ".gitignore"
ADMIN_USER = "admin"
AUTH_ENV = {"CORRIDOR_AUTH_ISSUER", "CORRIDOR_AUTH_AUDIENCE", "CORRIDOR_AUTH_JWKS_URL"}


def interpolations(text: str) -> list[tuple[str, str, str]]:
    """Every ``${VAR...}`` in a compose file: (variable, operator, argument)."""
    return [(m.group(1), m.group(2) or "", m.group(3)) for m in _INTERPOLATION.finditer(text)]


def secret_mounts(service: dict[str, Any]) -> dict[str, str]:
    """target path under /run/secrets -> top-level secret name, for one service."""
    mounts = {}
    for item in service.get("secrets") or []:
        source, target = (item, item) if isinstance(item, str) else (item["source"], item.get("target"))
        target = target or source
        path = PurePosixPath(target) if PurePosixPath(target).is_absolute() else RUN_SECRETS / target
        mounts[str(path)] = source
    return mounts


def secret_file(compose: dict[str, Any], secret: str) -> str | None:
    """The host file (relative to the compose file) a top-level secret reads, or None."""
    spec = (compose.get("secrets") or {}).get(secret) or {}
    file = spec.get("file")
    return str(PurePosixPath(file)) if isinstance(file, str) else None


def mounted_file(compose: dict[str, Any], service: dict[str, Any], container_path: str) -> str | None:
    """The host file behind a path under /run/secrets in one service, or None."""
    source = secret_mounts(service).get(container_path)
    return None if source is None else secret_file(compose, source)


def kafka_secret(principal: str) -> str:
    return str(SECRETS_DIR / "kafka" / f"{principal}.password")


def db_secret(role: str) -> str:
    return str(SECRETS_DIR / "postgres" / f"{role}.password")


def read_properties(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def option(args: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in an argv."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def plan_principals() -> tuple[list[str], set[str]]:
    """(every principal of the admin plan for deploy/deployments/shared.yaml, the service instances')."""
    from opstools import kafkaadmin

    deployment, the_plan = kafkaadmin.deployment_plan(kafkaadmin.DEFAULT_DEPLOYMENT)
    instances = {n.principal for n in kafkaadmin.needs_from_code(deployment.routes)}
    return the_plan.principals, instances


def credential_problems(compose: dict[str, Any], principals: list[str], instances: set[str]) -> list[str]:
    """Whatever keeps a service, the admin step or init.sql from its own credential, from its file."""
    problems: list[str] = []
    services = services_of(compose)
    admin = services.get(ADMIN_SERVICE) or {}
    admin_args = argv(admin.get("command"))
    secrets_dir = option(admin_args, "--secrets-dir")
    admin_password = option(admin_args, "--admin-password-file")
    if secrets_dir is None or admin_password is None:
        return [f"{ADMIN_SERVICE}: no --secrets-dir or --admin-password-file"]
    # The admin's password: the broker formats with it, the admin step logs in with it.
    admin_file = mounted_file(compose, admin, admin_password)
    kafka_file = mounted_file(compose, services.get("kafka") or {}, str(RUN_SECRETS / "kafka-admin.password"))
    if admin_file is None or admin_file != kafka_file or admin_file != kafka_secret(ADMIN_USER):
        problems.append(f"admin password: {ADMIN_SERVICE} reads {admin_file}, kafka {kafka_file}")
    # Every principal of the plan: its password file in the admin step's --secrets-dir.
    for principal in principals:
        path = str(PurePosixPath(secrets_dir) / f"{principal}.password")
        if mounted_file(compose, admin, path) != kafka_secret(principal):
            problems.append(f"{ADMIN_SERVICE}: no {path} from {kafka_secret(principal)}")
    postgres = services.get("postgres") or {}
    seen: dict[str, str] = {}
    users: set[str] = set()
    for name, svc in corridor_services(compose).items():
        env = environment(svc)
        user = env.get("CORRIDOR_KAFKA_USERNAME", "")
        users.add(user)
        if user not in instances:
            problems.append(f"{name}: Kafka principal {user!r} is not a service instance of the plan")
        if (
            user.startswith("border-clearance.")
            and user != f"border-clearance.{env.get('CORRIDOR_CHECKPOINT')}"
        ):
            problems.append(f"{name}: principal {user} is not its checkpoint's")
        kafka_file = mounted_file(compose, svc, env.get("CORRIDOR_KAFKA_PASSWORD_FILE", ""))
        if kafka_file != kafka_secret(user):
            problems.append(f"{name}: Kafka password from {kafka_file}, not {kafka_secret(user)}")
        role = urlsplit(env.get("CORRIDOR_DATABASE_URL", "")).username or ""
        db_file = mounted_file(compose, svc, env.get("CORRIDOR_DATABASE_PASSWORD_FILE", ""))
        if db_file != db_secret(role):
            problems.append(f"{name}: database password from {db_file}, not {db_secret(role)}")
        # init.sql reads /run/secrets/<role>.password in the postgres container.
        if mounted_file(compose, postgres, str(RUN_SECRETS / f"{role}.password")) != db_secret(role):
            problems.append(f"postgres: no {RUN_SECRETS}/{role}.password from {db_secret(role)}")
        for file in (kafka_file, db_file):
            if file is not None and seen.setdefault(file, name) != name:
                problems.append(f"{name} and {seen[file]} share {file}")
        for key, value in env.items():
            if _SECRET_NAME.search(key) and not (
                key.endswith("_FILE") and value.startswith(f"{RUN_SECRETS}/")
            ):
                problems.append(f"{name}: {key} is not a file under {RUN_SECRETS}")
    if users != instances:
        problems.append(f"service instances without a service: {sorted(instances - users)}")
    return problems


@pytest.fixture(scope="module")
def principals() -> tuple[list[str], set[str]]:
    return plan_principals()


def test_no_interpolation_has_a_default_and_each_must_be_set() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    # ${VAR:?message}: compose refuses to start without it; ${VAR:-default} or ${VAR} would not.
    wrong = [f"${{{v}{op}{arg}}}" for v, op, arg in interpolations(text) if op not in (":?", "?")]
    assert not wrong, f"variables with a default or none required: {wrong}"
    # No password comes from the environment at all: each is a secret file.
    assert not [v for v, _, _ in interpolations(text) if _SECRET_NAME.search(v)]


def test_no_password_literal_anywhere_in_compose(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    literal = re.compile(r"(?i)(password|passwd|secret)\s*[=:]\s*['\"]?[^\s/'\"$][^\s'\"]*")
    hits = [
        m.group(0)
        for m in literal.finditer(text)
        if not re.search(r"(?i)_FILE\s*:|password_file|password-file", text[max(0, m.start() - 40) : m.end()])
    ]
    assert not hits, f"password literals: {hits}"
    for name, svc in services_of(compose).items():
        for key, value in environment(svc).items():
            if _SECRET_NAME.search(key):
                assert key.endswith("_FILE") and value.startswith(f"{RUN_SECRETS}/"), f"{name}: {key}={value}"
    top = compose.get("secrets") or {}
    assert top, "no compose secrets"
    for secret, spec in top.items():
        file = secret_file(compose, secret)
        assert set(spec) == {"file"} and file is not None, f"secret {secret}: {spec} (a file only)"
        assert PurePosixPath(file).parts[0] == SECRETS_DIR.name, f"secret {secret}: {file}"


def test_secrets_dir_is_never_committed_nor_in_the_image() -> None:
    def entries(path: Path) -> set[str]:
        return {line.strip().strip("/") for line in path.read_text(encoding="utf-8").splitlines()}

    assert SECRETS_DIR.name in entries(GITIGNORE)
    assert SECRETS_DIR.name in entries(DOCKERIGNORE)
    listed = subprocess.run(
        ["git", "ls-files", SECRETS_DIR.name], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert listed.stdout.strip() == "", f"committed secrets: {listed.stdout}"


def test_no_url_carries_a_password_nor_the_superuser(compose: dict[str, Any]) -> None:
    for name, svc in services_of(compose).items():
        url = environment(svc).get("CORRIDOR_DATABASE_URL")
        if url is not None:
            parts = urlsplit(url)
            # The password travels apart from the URL, which is printed and logged.
            assert parts.password is None, f"{name}: a password in {url}"
            assert parts.username not in (None, "postgres"), f"{name}: connects as {parts.username!r}"
    env = environment(services_of(compose)["postgres"])
    assert "POSTGRES_PASSWORD" not in env
    postgres_file = env.get("POSTGRES_PASSWORD_FILE", "")
    assert mounted_file(compose, services_of(compose)["postgres"], postgres_file) == db_secret("postgres")


def test_every_principal_and_role_has_its_own_credential_file(
    compose: dict[str, Any], principals: tuple[list[str], set[str]]
) -> None:
    problems = credential_problems(compose, *principals)
    assert not problems, "\n".join(problems)


def _share_a_kafka_password(c: dict[str, Any]) -> None:
    c["services"]["eligibility"]["secrets"] = c["services"]["intake"]["secrets"]


def _wrong_principal(c: dict[str, Any]) -> None:
    c["services"]["border-uzb-oybek-exit"]["environment"]["CORRIDOR_KAFKA_USERNAME"] = (
        "border-clearance.tjk-oybek-entry"
    )


def _admin_misses_a_mission(c: dict[str, Any]) -> None:
    c["services"][ADMIN_SERVICE]["secrets"] = [
        s for s in c["services"][ADMIN_SERVICE]["secrets"] if s["target"] != "mission-tjk.password"
    ]


def _password_in_environment(c: dict[str, Any]) -> None:
    c["services"]["transport"]["environment"]["CORRIDOR_DATABASE_PASSWORD"] = "${TRANSPORT_DB_PASSWORD:?x}"


def _no_database_secret(c: dict[str, Any]) -> None:
    c["services"]["intake"]["secrets"] = [
        s for s in c["services"]["intake"]["secrets"] if "db" not in s["source"]
    ]


def _postgres_misses_a_role(c: dict[str, Any]) -> None:
    c["services"]["postgres"]["secrets"] = c["services"]["postgres"]["secrets"][:-1]


def _a_service_too_few(c: dict[str, Any]) -> None:
    del c["services"]["border-tjk-oybek-entry"]


@pytest.mark.parametrize(
    "break_it",
    [
        _share_a_kafka_password,
        _wrong_principal,
        _admin_misses_a_mission,
        _password_in_environment,
        _no_database_secret,
        _postgres_misses_a_role,
        _a_service_too_few,
    ],
)
def test_credential_check_fails_on_broken_compose(
    principals: tuple[list[str], set[str]], break_it: Callable[[dict[str, Any]], None]
) -> None:
    data = load_yaml(COMPOSE_FILE)
    break_it(data)
    assert credential_problems(data, *principals)


def test_every_corridor_service_requires_the_identity_provider(compose: dict[str, Any]) -> None:
    raw = load_yaml(COMPOSE_FILE)
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = {v for v, op, _ in interpolations(text) if op == ":?"}
    assert AUTH_ENV <= required, f"not required: {sorted(AUTH_ENV - required)}"
    for name, svc in corridor_services(raw).items():
        env = environment(svc)
        for key in sorted(AUTH_ENV):
            assert env.get(key) == f"${{{key}:?" + env[key].split(":?", 1)[1], f"{name}: {key}={env.get(key)}"


def test_each_service_s_role_owns_its_database_in_init_sql(compose: dict[str, Any]) -> None:
    sql = _SQL_COMMENT.sub("", INIT_SQL.read_text(encoding="utf-8"))
    owners = {
        m.group(1).lower(): m.group(2).lower()
        for m in re.finditer(r"CREATE\s+DATABASE\s+(\w+)\s+OWNER\s+(\w+)", sql, re.IGNORECASE)
    }
    # Each role is created with LOGIN and the password read from /run/secrets/<role>.password.
    assert "pg_read_file('/run/secrets/' || role_name || '.password')" in sql
    assert "format('CREATE ROLE %I LOGIN PASSWORD %L', role_name, secret)" in sql
    roles = {m.group(1).lower() for m in re.finditer(r"pg_temp\.create_login_role\('(\w+)'\)", sql)}
    revoked = {
        m.group(1).lower()
        for m in re.finditer(r"REVOKE\s+ALL\s+ON\s+DATABASE\s+(\w+)\s+FROM\s+PUBLIC", sql, re.IGNORECASE)
    }
    assert "PASSWORD '" not in sql.upper(), "a literal password in init.sql"
    assert "ON_ERROR_STOP ON" in sql.upper()
    for name, svc in corridor_services(compose).items():
        url = urlsplit(environment(svc)["CORRIDOR_DATABASE_URL"])
        database, role = database_name(url.geturl()), (url.username or "").lower()
        assert owners.get(database) == role, f"{name}: {database} is not owned by {role}"
        assert role in roles and database in revoked, name


def test_the_interpolation_parser() -> None:
    assert interpolations("a ${X:?set X} b ${Y:-d} ${Z}") == [
        ("X", ":?", "set X"),
        ("Y", ":-", "d"),
        ("Z", "", ""),
    ]


# --- Kafka: SASL/SCRAM, the authoriser, no auto-creation, the admin step first -------------------


def test_kafka_broker_is_secure_by_default(compose: dict[str, Any]) -> None:
    props = read_properties(KAFKA_PROPERTIES.read_text(encoding="utf-8"))
    protocols = dict(item.split(":", 1) for item in props["listener.security.protocol.map"].split(","))
    listeners = {item.split("://")[0] for item in props["listeners"].split(",")}
    assert listeners <= protocols.keys()
    assert all(p.startswith("SASL_") for p in protocols.values()), f"unauthenticated listener: {protocols}"
    broker = props["inter.broker.listener.name"]
    assert props[f"listener.name.{broker.lower()}.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    controller = props["controller.listener.names"]
    assert props[f"listener.name.{controller.lower()}.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["super.users"] == f"User:{ADMIN_USER}"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert not [k for k in props if "jaas" in k or "password" in k], "a secret in server.properties"
    # Clients reach the broker listener, with the protocol they are told.
    advertised = dict(item.split("://", 1) for item in props["advertised.listeners"].split(","))
    for name, svc in corridor_services(compose).items():
        env = environment(svc)
        assert advertised[broker] == env["CORRIDOR_KAFKA_BOOTSTRAP"], name
        assert env.get("CORRIDOR_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT") == protocols[broker], name
        assert env.get("CORRIDOR_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512") == "SCRAM-SHA-512", name


def test_kafka_runs_the_start_script_with_the_properties_and_no_image_config(compose: dict[str, Any]) -> None:
    kafka = services_of(compose)["kafka"]
    mounts = {}
    for volume in kafka.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        mounts[rest.split(":")[0]] = source
    entrypoint = argv(kafka.get("entrypoint"))
    assert entrypoint[:1] == ["bash"] and len(entrypoint) == 2, entrypoint  # no reliance on the x bit
    assert (ROOT / mounts[entrypoint[1]]).resolve() == KAFKA_START, entrypoint
    assert (ROOT / mounts["/etc/corridor/kafka/server.properties"]).resolve() == KAFKA_PROPERTIES
    # The image's entrypoint is not run: KAFKA_* variables would configure nothing (and mislead).
    assert [k for k in environment(kafka) if k.startswith("KAFKA_")] == []
    assert "CLUSTER_ID" in environment(kafka)
    probe = argv(kafka["healthcheck"]["test"])
    assert option(probe, "--command-config") == "/opt/kafka/config/corridor/admin-client.properties"


def test_kafka_admin_runs_before_every_service(compose: dict[str, Any]) -> None:
    admin = services_of(compose)[ADMIN_SERVICE]
    args = argv(admin["command"])
    assert python_module(admin["command"]) == "opstools.kafkaadmin" and args[3] == "apply", args
    assert admin["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert admin.get("restart") == "no"
    assert admin["build"]["target"] == "tools"
    assert option(args, "--bootstrap") == "kafka:9092"
    assert option(args, "--admin-user") == ADMIN_USER
    deployment = option(args, "--deployment")
    assert deployment is not None and host_path(deployment).resolve() == (
        ROOT / "deploy" / "deployments" / "shared.yaml"
    )
    # Every option given is one the CLI has.
    import typer.main

    from opstools.kafkaadmin import app

    apply_cli = typer.main.get_command(app).commands["apply"]  # type: ignore[attr-defined]
    known = {opt for param in apply_cli.params for opt in param.opts}
    given = {a.split("=")[0] for a in args[4:] if a.startswith("--")}
    assert given <= known, f"unknown options: {sorted(given - known)}"
    for name, svc in corridor_services(compose).items():
        assert svc["depends_on"][ADMIN_SERVICE]["condition"] == "service_completed_successfully", name
        assert svc["build"]["target"] == "service", name


def _fake_kafka_home(tmp_path: Path) -> Path:
    home = tmp_path / "kafka"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for tool in ("kafka-storage.sh", "kafka-server-start.sh"):
        script = home / "bin" / tool
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/{tool}.args"\necho "salted keys"\n')
        script.chmod(0o755)
    return home


def _run_start(tmp_path: Path, secret: str | None) -> subprocess.CompletedProcess[str]:
    home = _fake_kafka_home(tmp_path)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    template = tmp_path / "server.properties"
    template.write_text(KAFKA_PROPERTIES.read_text().replace("/var/lib/kafka/data", str(data)))
    secret_path = tmp_path / "admin.password"
    if secret is not None:
        secret_path.write_text(secret + "\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_HOME": str(home),
        "CLUSTER_ID": "0Jl7If96TcaUrHa3-DWW6w",
        "CORRIDOR_KAFKA_TEMPLATE": str(template),
        "CORRIDOR_KAFKA_ADMIN_PASSWORD_FILE": str(secret_path),
    }
    return subprocess.run(["bash", str(KAFKA_START)], env=env, capture_output=True, text=True, timeout=30)


def test_kafka_start_script_formats_with_the_admin_scram_credential(tmp_path: Path) -> None:
    password = "0123456789abcdef0123456789abcdef"
    result = _run_start(tmp_path, password)
    assert result.returncode == 0, describe(result)
    assert password not in result.stdout + result.stderr
    storage = (tmp_path / "kafka-storage.sh.args").read_text().splitlines()
    assert storage[0] == "format"
    assert option(storage, "--add-scram") == f"SCRAM-SHA-512=[name={ADMIN_USER},password={password}]"
    config = Path(option(storage, "--config") or "")
    assert (tmp_path / "kafka-server-start.sh.args").read_text().split() == [str(config)]
    props = read_properties(config.read_text())
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert (
        f'username="{ADMIN_USER}" password="{password}"'
        in props["listener.name.broker.scram-sha-512.sasl.jaas.config"]
    )
    assert f'user_{ADMIN_USER}="{password}"' in props["listener.name.controller.plain.sasl.jaas.config"]
    for written in config.parent.iterdir():
        assert written.stat().st_mode & 0o077 == 0, f"{written} is readable by others"
    # Formatted storage is not formatted again.
    (tmp_path / "data" / "meta.properties").write_text("formatted")
    (tmp_path / "kafka-storage.sh.args").unlink()
    assert _run_start(tmp_path, password).returncode == 0
    assert not (tmp_path / "kafka-storage.sh.args").exists()


@pytest.mark.parametrize("secret", [None, "", "short", 'with"quote-0123456789', "comma,0123456789abcdef"])
def test_kafka_start_script_refuses_a_missing_or_unsafe_admin_password(
    tmp_path: Path, secret: str | None
) -> None:
    result = _run_start(tmp_path, secret)
    assert result.returncode != 0
    assert not (tmp_path / "kafka-server-start.sh.args").exists()


# --- the images: a service target and a tools target -------------------------------------------


def dockerfile_stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (FROM ... AS name)."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"#{len(stages)}"
            current = stages.setdefault(name, [])
        current.append((keyword, rest))
    return stages


def test_dockerfile_has_a_tools_target_with_the_tools_group(dockerfile_text: str) -> None:
    stages = dockerfile_stages(dockerfile_text)
    assert list(stages)[-1] == "service", "the default target (the last stage) is not the service image"
    groups = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["dependency-groups"]
    assert "tools" in groups

    def syncs(stage: str) -> list[list[str]]:
        return [shlex.split(rest) for kw, rest in stages[stage] if kw == "RUN" and "uv sync" in rest]

    assert syncs("tools") and all("--group" in s and "tools" in s for s in syncs("tools"))
    assert all("--no-dev" in s for s in syncs("tools") + syncs("service"))
    assert all("--group" not in s and "--all-groups" not in s for s in syncs("service"))
    copied = dockerfile_copy_sources("\n".join(f"{kw} {rest}" for kw, rest in stages["tools"]))
    assert {"opstools", "deploy", "corridor", "services", "contracts"} <= copied, copied
    for stage in ("tools", "service"):
        users = [rest for kw, rest in stages[stage] if kw == "USER"]
        assert users and users[-1].split(":")[0] not in {"root", "0"}, stage
    ignored = {line.strip().strip("/") for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert "opstools" not in ignored


# --- the helper that writes the secret files ---------------------------------------------------


def test_make_secrets_writes_every_file_the_compose_file_reads(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    target = tmp_path / "docker-compose.yml"
    target.write_text(COMPOSE_FILE.read_text(encoding="utf-8"))
    result = subprocess.run(
        ["sh", str(MAKE_SECRETS), str(target)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, describe(result)
    values = {}
    for secret in compose["secrets"]:
        path = tmp_path / (secret_file(compose, secret) or "")
        assert path.is_file(), path
        values[secret] = path.read_text().strip()
        assert re.fullmatch(r"[0-9a-f]{32}", values[secret]), secret
        assert values[secret] not in result.stdout + result.stderr
    assert len(set(values.values())) == len(values), "two secrets have the same value"
    assert (tmp_path / ".secrets").stat().st_mode & 0o777 == 0o700
    # A second run keeps every value (volumes were initialised with them).
    again = subprocess.run(["sh", str(MAKE_SECRETS), str(target)], capture_output=True, text=True, timeout=30)
    assert again.returncode == 0, describe(again)
    assert {s: (tmp_path / (secret_file(compose, s) or "")).read_text().strip() for s in values} == values


def test_docker_broker_has_the_local_cluster_s_security(tmp_path: Path) -> None:
    """The broker start.sh configures has the security settings of devkit's (the tests' and demo's)."""
    from devkit.devinfra.kafka import KafkaCluster

    password = "0123456789abcdef0123456789abcdef"
    assert _run_start(tmp_path, password).returncode == 0
    storage = (tmp_path / "kafka-storage.sh.args").read_text().splitlines()
    docker = read_properties(Path(option(storage, "--config") or "").read_text())
    local_cluster = KafkaCluster(tmp_path / "local")
    local_cluster.broker_ports, local_cluster.controller_ports, local_cluster.tls_ports = [1], [2], [3]
    local_cluster.admin_password = password
    local = local_cluster._properties(0)
    keys = {
        k
        for k in local
        if k.startswith(("listener.name.broker.", "listener.name.controller.", "sasl.mechanism."))
        or k
        in {
            "authorizer.class.name",
            "super.users",
            "allow.everyone.if.no.acl.found",
            "auto.create.topics.enable",
            "inter.broker.listener.name",
            "controller.listener.names",
        }
    }
    assert len(keys) >= 12
    differ = {k: (docker.get(k), local[k]) for k in sorted(keys) if docker.get(k) != local[k]}
    assert not differ, differ

    def protocols(props: dict[str, str]) -> dict[str, str]:
        pairs = (item.split(":", 1) for item in props["listener.security.protocol.map"].split(","))
        return {name: protocol for name, protocol in pairs if name in {"BROKER", "CONTROLLER"}}

    assert protocols(docker) == protocols(local)
