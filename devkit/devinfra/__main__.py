"""``python -m devkit.devinfra``: a local Kafka + PostgreSQL for humans, until Ctrl-C."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from devkit.devinfra.kafka import REPO_ROOT, KafkaCluster
from devkit.devinfra.postgres import PostgresServer

DEFAULT_WORKDIR = REPO_ROOT / ".run" / "devinfra"

app = typer.Typer(rich_markup_mode=None, add_completion=False, help=__doc__)


@app.command()
def main(
    workdir: Annotated[
        Path, typer.Option(help="Where data and logs live (kept between runs).")
    ] = DEFAULT_WORKDIR,
    nodes: Annotated[int, typer.Option(min=1, help="Kafka nodes (3: replicated).")] = 1,
    heap_mb: Annotated[int, typer.Option(help="Heap of each Kafka JVM, in MiB.")] = 384,
) -> None:
    """Start Kafka and PostgreSQL, print how to reach them, stop both on Ctrl-C."""
    kafka = KafkaCluster(workdir / "kafka", nodes=nodes, heap_mb=heap_mb)
    postgres = PostgresServer(workdir / "postgres")
    try:
        started = time.monotonic()
        postgres.start()
        kafka.start()
        typer.echo(f"Kafka {nodes} node(s) and PostgreSQL up in {time.monotonic() - started:.1f} s")
        typer.echo(f"  bootstrap servers: {kafka.bootstrap_servers} (SASL_PLAINTEXT, SCRAM-SHA-512)")
        typer.echo(f"  TLS listener:      {kafka.tls_bootstrap_servers} (SASL_SSL, CA {kafka.ca_file})")
        typer.echo(f"  super user:        admin, password in {kafka.admin_password_file}")
        typer.echo(f"  postgres DSN:      {postgres.dsn()}  (the superuser: administration only)")
        typer.echo(f"  data and logs:     {workdir}")
        typer.echo("For the services:")
        typer.echo(f"  export CORRIDOR_KAFKA_BOOTSTRAP={kafka.bootstrap_servers}")
        typer.echo(
            "  then create topics, principals and ACLs: python -m opstools.kafkaadmin apply "
            f"--bootstrap {kafka.bootstrap_servers} --admin-password-file {kafka.admin_password_file} "
            f"--secrets-dir {workdir / 'secrets' / 'kafka'}"
        )
        typer.echo("  and give each service CORRIDOR_KAFKA_USERNAME and CORRIDOR_KAFKA_PASSWORD_FILE")
        # A service connects as a role of its own, owning only its database (python -m devkit
        # up creates them); the URL carries no password.
        typer.echo(f"  export CORRIDOR_DATABASE_URL={postgres.url('<database>', '<role>')}")
        typer.echo("  export CORRIDOR_DATABASE_PASSWORD_FILE=<a file holding the role's password>")
        typer.echo("Ctrl-C stops both.")
        threading.Event().wait()
    except KeyboardInterrupt:
        typer.echo("\nstopping...")
    finally:
        kafka.stop()
        postgres.stop()


if __name__ == "__main__":
    app()
