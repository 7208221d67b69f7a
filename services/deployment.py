"""The deployment: every service instance it runs, and the AsyncAPI documents of all of them.

A deployment runs intake, eligibility, transport and reporting for the host mission, and one border
clearance per checkpoint on its routes. This is the one module that imports every service: the
runtime library (``corridor``) imports none.

``python -m services.deployment asyncapi export`` writes ``docs/asyncapi/<instance>.json`` for
every instance; ``asyncapi check`` fails when a committed file is not current.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from contracts.routes import RouteBook
from corridor import asyncapi
from corridor.runtime import ServiceRuntime
from corridor.settings import REPO_ROOT, ServiceSettings
from services.border_clearance.app import BorderSettings
from services.border_clearance.app import create_service as border
from services.eligibility.app import EligibilitySettings
from services.eligibility.app import create_service as eligibility
from services.intake.app import IntakeSettings
from services.intake.app import create_service as intake
from services.reporting.app import ReportingSettings
from services.reporting.app import create_service as reporting
from services.transport.app import TransportSettings
from services.transport.app import create_service as transport

DOCS_DIR = REPO_ROOT / "docs" / "asyncapi"


def service_runtimes(routes_file: Path | None = None) -> Iterator[ServiceRuntime]:
    """Every service instance of a deployment, built offline: intake, eligibility, transport,
    reporting and one border clearance per checkpoint on the routes.

    Settings that reach the document are given explicitly (the defaults, not the environment), so
    the committed documents do not depend on who generates them.
    """
    defaults = ServiceSettings.model_fields
    routes = routes_file or defaults["routes_file"].default
    common: dict[str, Any] = {
        "kafka_bootstrap": defaults["kafka_bootstrap"].default,
        "routes_file": routes,
    }
    host = defaults["mission"].default
    yield intake(IntakeSettings(mission=host, **common))
    yield eligibility(EligibilitySettings(mission=host, **common))
    yield transport(TransportSettings(mission=host, **common))
    yield reporting(ReportingSettings(mission=host, **common))
    for route in RouteBook.load(routes).routes:
        for checkpoint in route.checkpoints:
            yield border(
                BorderSettings(checkpoint=checkpoint.checkpoint_id, mission=checkpoint.country, **common)
            )


def asyncapi_documents(routes_file: Path | None = None) -> dict[str, str]:
    """File name -> content of every instance's AsyncAPI document."""
    return asyncapi.generate_documents(service_runtimes(routes_file))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.deployment",
        description="The deployment's service instances.",
    )
    commands = parser.add_subparsers(dest="what", required=True)
    documents = commands.add_parser("asyncapi", help="AsyncAPI 3.0 documents of every service instance")
    documents.add_argument("command", choices=["export", "check"], help="write the documents, or check them")
    documents.add_argument("--out", type=Path, default=DOCS_DIR, help="directory (default: docs/asyncapi)")
    documents.add_argument(
        "--routes", type=Path, default=None, help="routes file (default: the deployment's)"
    )
    args = parser.parse_args(argv)
    files = asyncapi_documents(args.routes)
    out: Path = args.out
    if args.command == "check":
        problems = asyncapi.stale_documents(out, files)
        for problem in problems:
            print(f"{out / problem}", file=sys.stderr)
        if problems:
            print("run: python -m services.deployment asyncapi export", file=sys.stderr)
        return 1 if problems else 0
    for line in asyncapi.write_documents(out, files):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
