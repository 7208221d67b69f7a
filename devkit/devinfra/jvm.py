"""Java programs assembled from Maven Central: a POM's runtime jars fetched once into .cache/.

Shared by the Kafka broker (deploy/kafka/pom.xml) and MirrorMaker 2 (deploy/mirrormaker/pom.xml),
which run on different Kafka versions and so never share a classpath.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

from devkit.devinfra import procs

_log = logging.getLogger(__name__)

_MAVEN_TIMEOUT_S = 900.0


def pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def ensure_maven_classpath(pom: Path, cache_dir: Path, *, expect: str, what: str) -> Path:
    """Directory of ``pom``'s runtime jars (``-cp '<dir>/*'``), fetched once by Maven.

    The marker file holds the POM's digest and is written only after Maven succeeded, so an
    interrupted download (or an edited POM) is redone from scratch. Concurrent callers
    (pytest-xdist workers, the demo) are serialised by a file lock beside ``cache_dir``.
    ``expect`` is a glob of a jar the fetch must have produced.
    """
    lib = cache_dir / "lib"
    marker = cache_dir / ".complete"
    digest = pom_digest(pom)
    if marker.is_file() and marker.read_text().strip() == digest:
        return lib
    with procs.file_lock(cache_dir.parent / f"{cache_dir.name}.lock"):
        if marker.is_file() and marker.read_text().strip() == digest:
            return lib  # another process finished it while we waited
        marker.unlink(missing_ok=True)
        shutil.rmtree(lib, ignore_errors=True)
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError(f"Maven (mvn) is not on PATH; it is needed once to fetch {what}")
        log_path = cache_dir / "mvn.log"
        log_path.unlink(missing_ok=True)
        started = time.monotonic()
        procs.run_checked(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                pom,
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={lib}",
            ],
            log_path,
            timeout=_MAVEN_TIMEOUT_S,
            what=f"Maven fetch of {what}",
            cwd=pom.parent,
        )
        if not any(lib.glob(expect)):
            raise RuntimeError(f"Maven finished but {lib} holds no {expect}")
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(digest + "\n")
        tmp.replace(marker)
        _log.info("fetched %s in %.1f s", what, time.monotonic() - started)
    return lib


def java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("no java on PATH (Kafka needs Java 17+)")
    return found


def server_options(heap_mb: int) -> list[str]:
    """JVM options of a long-running Kafka server process (broker, MirrorMaker) started here."""
    return [
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        # No /tmp/hsperfdata_* files (they also outlive SIGKILLed JVMs).
        "-XX:-UsePerfData",
        "-Djava.awt.headless=true",
        # Kafka runs its own shutdown hook; log4j's would stop logging halfway through it.
        "-Dlog4j2.shutdownHookEnabled=false",
    ]
