"""Process helpers shared by the launchers of the local infrastructure (Kafka, PostgreSQL, Prometheus,
Jaeger) and of the services.

Guarantee: no server started through :func:`spawn` outlives this Python process.

* normal exit, uncaught exception, Ctrl-C: an ``atexit`` hook stops every registered
  process gracefully (its own stop signal, then SIGKILL to its process group);
* SIGTERM / SIGHUP: if the application left those signals at their default, a handler
  runs the same clean-up first and then dies of the signal as it would have;
* SIGKILL or any other hard death: each child is spawned with
  ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so the kernel kills it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

_libc: ctypes.CDLL | None
try:
    # Resolved before any fork: the pre-exec hook must not load libraries.
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _prctl: Callable[..., int] | None = _libc.prctl
except (OSError, AttributeError):  # not Linux: fall back to the atexit hook alone
    _libc = None
    _prctl = None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (all sockets held open together, so no duplicates)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Servers bind with SO_REUSEADDR, so a port left in TIME_WAIT is still usable.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


# How every server started here says that a port it was to listen on is taken: PostgreSQL, uvicorn,
# Go's net package (Jaeger, Prometheus) and the JVM's BindException (Kafka) all use the C library's text.
BIND_FAILURE = "address already in use"


def log_size(path: Path) -> int:
    """Where the next line of the log ``path`` will start: logs are appended to across starts."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def bind_failed(path: Path, since: int = 0) -> bool:
    """Whether the log ``path``, from byte ``since`` on, says the server could not bind a port.

    The whole new part is read, not its tail: Kafka logs its shutdown for thousands of lines after
    the one bind error."""
    try:
        with path.open("rb") as f:
            f.seek(since)
            return BIND_FAILURE in f.read().decode("utf-8", errors="replace").lower()
    except OSError:
        return False


def start_on_free_ports(
    count: int,
    start: Callable[[list[int]], T],
    logs: Sequence[Path],
    *,
    what: str,
    first: Sequence[int] | None = None,
    attempts: int = 4,
) -> T:
    """``start(ports)`` with ``count`` ports free right now; again with ports chosen anew when it
    raises and one of ``logs`` says a port was taken, at most ``attempts`` times in all.

    A port found free is released before the server binds it, and on a shared machine another
    process may take it in between; the server then fails, and only then is it worth another try.
    ``first`` are the ports of the first attempt (kept from an earlier run) instead of new ones.
    ``start`` must leave nothing running when it raises.
    """
    for attempt in range(1, attempts + 1):
        ports = list(first) if attempt == 1 and first is not None else free_ports(count)
        marks = [(path, log_size(path)) for path in logs]
        try:
            return start(ports)
        except RuntimeError:
            if attempt == attempts or not any(bind_failed(path, mark) for path, mark in marks):
                raise
            _log.warning("%s: a port of %s was taken before it bound it; new ports", what, ports)
    raise AssertionError("unreachable")  # the last attempt returned or raised


def _listening_sockets(ports: set[int]) -> dict[int, set[str]]:
    """The socket inodes listening on each of ``ports`` (this network namespace, IPv4 and IPv6)."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "0100007F:1F90", state 0A = LISTEN, inode in the tenth field
            if len(fields) > 9 and fields[3] == "0A":
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port in ports:
                    found.setdefault(port, set()).add(fields[9])
    return found


def holds_ports(pid: int, ports: Sequence[int]) -> bool:
    """Whether process ``pid`` itself listens on every one of ``ports``.

    A readiness check that connects to a port cannot tell our server from another one that took
    the port first (ours then dies of the bind error, maybe after the check). True where this
    cannot be told (no /proc, another user's process without the right to look)."""
    wanted = set(ports)
    if not wanted or not Path("/proc/net/tcp").exists():
        return True
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False  # gone
    except OSError:
        return True
    inodes: set[str] = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    listening = _listening_sockets(wanted)
    return all(listening.get(port, set()) & inodes for port in wanted)


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


# --------------------------------------------------------------------------- registry

_registry_lock = threading.RLock()
# Popen -> signal that asks it to shut down cleanly
_registry: dict[subprocess.Popen[bytes], signal.Signals] = {}
_handlers_installed = False


def _register(proc: subprocess.Popen[bytes], stop_signal: signal.Signals) -> None:
    with _registry_lock:
        _registry[proc] = stop_signal


def _unregister(proc: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _registry.pop(proc, None)


def running() -> list[subprocess.Popen[bytes]]:
    """Registered processes that are still alive."""
    with _registry_lock:
        return [p for p in _registry if p.poll() is None]


def _exited(proc: subprocess.Popen[bytes], timeout: float = 0.0) -> bool:
    """Wait up to ``timeout`` for ``proc`` to exit, *without* reaping it.

    An unreaped child keeps its pid, so its process group can still be killed safely
    afterwards; once reaped, the number may be handed to an unrelated process.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.returncode is not None:
            return True
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True  # reaped elsewhere
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is not None:
        # Already reaped: its pid, and so the group id, may belong to a stranger now.
        return
    # The child leads its own session, so its pgid is its pid; killing the group also
    # takes out helpers it forked that outlived it (or that it would leave behind).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def terminate(
    proc: subprocess.Popen[bytes],
    sig: signal.Signals = signal.SIGTERM,
    grace: float = 20.0,
) -> int | None:
    """Send ``sig``, wait up to ``grace`` seconds, then SIGKILL the process group.

    Returns the exit code (negative for a signal), ``None`` only if even SIGKILL
    did not reap it within 5 s. Safe to call on an already finished process.
    """
    return stop_many([(proc, sig)], grace)[0]


def kill(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGKILL the process (and its group) at once, as a crash would."""
    _kill_group(proc)
    try:
        code = proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        return None
    _unregister(proc)
    return code


def stop_many(
    items: Sequence[tuple[subprocess.Popen[bytes], signal.Signals]], grace: float
) -> list[int | None]:
    """Signal all processes at once, share one ``grace`` period, SIGKILL the laggards.

    Returns the exit codes in order (``None`` only if even SIGKILL did not reap one).
    """
    for proc, sig in items:
        if not _exited(proc):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
    deadline = time.monotonic() + grace
    for proc, _sig in items:
        _exited(proc, max(0.0, deadline - time.monotonic()))
    codes: list[int | None] = []
    for proc, _sig in items:
        _kill_group(proc)
        try:
            codes.append(proc.wait(timeout=5.0))
        except subprocess.TimeoutExpired:
            codes.append(None)
            continue
        _unregister(proc)
    return codes


def stop_all(grace: float = 15.0) -> None:
    """Stop every registered process (the atexit / SIGTERM clean-up)."""
    with _registry_lock:
        items = list(_registry.items())
    stop_many(items, grace)


def _on_fatal_signal(signum: int, _frame: object) -> None:
    stop_all()
    # Then die of the signal exactly as the default disposition would have.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal only works there; atexit + PDEATHSIG still hold
    for sig in (signal.SIGTERM, signal.SIGHUP):
        # Never replace a handler the application chose (uvicorn, asyncio runners...).
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _on_fatal_signal)


# ---------------------------------------------------------------------------- spawning

# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process.
# Callers may run in short-lived worker threads (asyncio.to_thread, executors), so every
# fork happens on one daemon thread that lives exactly as long as the process.
_spawn_queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _spawner_loop() -> None:
    while True:
        fn, fut = _spawn_queue.get()
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            fut.set_result(fn())
        except BaseException as exc:
            fut.set_exception(exc)


def _on_spawner_thread(fn: Callable[[], T]) -> T:
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_spawner_loop, name="corridor-devinfra-spawner", daemon=True)
            _spawner.start()
    fut: Future[T] = Future()
    _spawn_queue.put((fn, fut))
    return fut.result()


def _make_preexec(parent_pid: int) -> Callable[[], None]:
    prctl = _prctl

    def preexec() -> None:
        # A launcher started from a non-interactive shell inherits SIGINT/SIGQUIT ignored;
        # the servers must see their stop signals.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        # Runs in the child after fork and after any setuid (which would clear it).
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def spawn(
    cmd: Sequence[str | os.PathLike[str]],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: int | str | None = None,
    group: int | str | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session with stdout+stderr appended to ``log_path``.

    The process is registered so that :func:`stop_all` (run at exit) stops it with
    ``stop_signal``, and it is killed by the kernel if this Python process dies.
    """
    _install_handlers()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [os.fspath(c) for c in cmd]
    parent_pid = os.getpid()

    def _start() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            extra: dict[str, Any] = {}
            if user is not None:
                extra["user"] = user
                extra["extra_groups"] = []  # drop root's supplementary groups
            if group is not None:
                extra["group"] = group
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal must not hit it directly
                preexec_fn=_make_preexec(parent_pid),
                **extra,
            )

    with _registry_lock:
        proc = _on_spawner_thread(_start)
        _register(proc, stop_signal)
    return proc


def spawn_ready(
    cmd: Sequence[str | os.PathLike[str]],
    log_path: Path,
    *,
    ready_url: str,
    what: str,
    timeout: float,
    listening: Callable[[], bool] = lambda: True,
    ports: Sequence[int] = (),
    tail_lines: int = 40,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """:func:`spawn` a server and wait until ``GET ready_url`` answers 200 (and ``listening()``
    holds, for a port the URL does not show) and it listens on ``ports`` itself, not another
    server that took one first. If it exits first or is not ready in ``timeout`` seconds, it is
    stopped and the error says so with the tail of its log (``what`` names it)."""
    import httpx  # the servers' own launchers need none of it

    proc = spawn(cmd, log_path, cwd=cwd, env=env, stop_signal=stop_signal)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            _unregister(proc)
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log_path, tail_lines)}")
        if listening():
            try:
                if httpx.get(ready_url, timeout=2.0).status_code == 200 and holds_ports(proc.pid, ports):
                    return proc
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            terminate(proc, stop_signal, grace=10.0)
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s:\n{tail(log_path, tail_lines)}")
        time.sleep(0.2)


def run_checked(
    cmd: Sequence[str | os.PathLike[str]],
    log_path: Path,
    *,
    timeout: float,
    what: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: int | str | None = None,
    group: int | str | None = None,
) -> None:
    """Run a short-lived tool through :func:`spawn`; raise with its output on failure."""
    proc = spawn(cmd, log_path, cwd=cwd, env=env, user=user, group=group)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        terminate(proc, signal.SIGTERM, grace=2.0)
        raise RuntimeError(
            f"{what} did not finish within {timeout:.0f} s; log {log_path}:\n{tail(log_path)}"
        ) from None
    _unregister(proc)
    if code != 0:
        raise RuntimeError(f"{what} failed with exit code {code}; log {log_path}:\n{tail(log_path)}")


# ------------------------------------------------------------------ async from sync code


def run_coroutine_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    ``start()`` may be called while an event loop is already running in this thread
    (pytest-asyncio session fixtures), where ``asyncio.run`` is forbidden; so the
    coroutine always runs on a fresh loop in a helper thread.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def _runner() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:
            error.append(exc)

    t = threading.Thread(target=_runner, name="corridor-devinfra-async", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (created if missing), across processes."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
