"""Static checks of the Docker path (docker-compose.yml, Dockerfile, init.sql).

No Docker engine is needed. docker-compose.yml is validated against the
Compose Specification's JSON Schema as vendored by check-jsonschema (builtin
``vendor.compose-spec``, pinned by the check-jsonschema version in the dev
group), then cross-checked against the repository: the modules the services
run, the checkpoints in the routes file, the databases init.sql creates and
the directories the Dockerfile copies into the image.
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
    """The services built from the Dockerfile (everything but kafka/postgres)."""
    return {name: svc for name, svc in services_of(compose).items() if name not in INFRA_SERVICES}


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
    """Services whose `python -m X` has no X/__main__.py under root."""
    problems = []
    for name, svc in services_of(compose).items():
        if "command" not in svc:
            continue
        module = python_module(svc["command"])
        if module is None or not module.startswith("services."):
            problems.append(f"{name}: command {svc['command']!r} is not `python -m services.X`")
            continue
        main = root.joinpath(*module.split("."), "__main__.py")
        if not main.is_file():
            problems.append(f"{name}: {main.relative_to(root)} does not exist")
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


# --- secrets: no default passwords, a role per service ----------------------------------------

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?([^}]*)\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


def interpolations(text: str) -> list[tuple[str, str, str]]:
    """Every ``${VAR...}`` in a compose file: (variable, operator, argument)."""
    return [(m.group(1), m.group(2) or "", m.group(3)) for m in _INTERPOLATION.finditer(text)]


def test_no_secret_has_a_default_and_each_must_be_set() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    secret_vars = [(v, op, arg) for v, op, arg in interpolations(text) if _SECRET_NAME.search(v)]
    assert secret_vars, "the compose file takes its passwords from the environment"
    # ${VAR:?message}: compose refuses to start without it; ${VAR:-default} or ${VAR} would not.
    wrong = [f"${{{v}{op}{arg}}}" for v, op, arg in secret_vars if op not in (":?", "?")]
    assert not wrong, f"secrets with a default or none required: {wrong}"


def test_no_literal_password_in_any_service_environment(compose: dict[str, Any]) -> None:
    for name, svc in services_of(compose).items():
        for key, value in environment(svc).items():
            if _SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert value.startswith("${") and ":?" in value, f"{name}: {key} is a literal: {value!r}"
        url = environment(svc).get("CORRIDOR_DATABASE_URL")
        if url is not None:
            parts = urlsplit(url)
            # The password travels apart from the URL, which is printed and logged.
            assert parts.password is None, f"{name}: a password in {url}"
            assert parts.username not in (None, "postgres"), f"{name}: connects as {parts.username!r}"
            assert "CORRIDOR_DATABASE_PASSWORD" in environment(svc), name


def test_each_service_s_role_owns_its_database_in_init_sql(compose: dict[str, Any]) -> None:
    sql = _SQL_COMMENT.sub("", INIT_SQL.read_text(encoding="utf-8"))
    owners = {
        m.group(1).lower(): m.group(2).lower()
        for m in re.finditer(r"CREATE\s+DATABASE\s+(\w+)\s+OWNER\s+(\w+)", sql, re.IGNORECASE)
    }
    roles = {m.group(1).lower() for m in re.finditer(r"CREATE\s+ROLE\s+(\w+)\s+LOGIN", sql, re.IGNORECASE)}
    revoked = {
        m.group(1).lower()
        for m in re.finditer(r"REVOKE\s+ALL\s+ON\s+DATABASE\s+(\w+)\s+FROM\s+PUBLIC", sql, re.IGNORECASE)
    }
    assert "PASSWORD '" not in sql.upper(), "a literal password in init.sql"
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
