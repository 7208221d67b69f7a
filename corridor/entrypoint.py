"""What ``python -m services.<name>`` does: answer ``--help`` with the service's settings, refuse
arguments it does not take, otherwise start the service. A service is configured by environment
variables (``CORRIDOR_*``), as containers are; an argument is never silently ignored."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from corridor.settings import ServiceSettings


def usage(program: str, summary: str, settings: type[ServiceSettings]) -> str:
    lines = [
        f"usage: python -m {program} [--help]",
        "",
        summary.strip(),
        "",
        "Settings (environment variables):",
    ]
    prefix = str(settings.model_config.get("env_prefix", ""))
    for name, field in sorted(settings.model_fields.items()):
        lines.append(f"  {prefix}{name.upper()}{_default(field)}")
        if field.description:
            lines.append(f"      {field.description}")
    lines.append("")
    lines.append(
        "Secrets are read from files where a *_FILE variable exists (e.g. CORRIDOR_KAFKA_PASSWORD_FILE)."
    )
    return "\n".join(lines)


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined or field.default is None:
        return ""
    value = field.default
    shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return "" if hasattr(value, "get_secret_value") else f"  [default: {shown}]"


def main(
    program: str,
    summary: str,
    settings: type[ServiceSettings],
    start: Callable[[], None],
    argv: Sequence[str] | None = None,
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in {"-h", "--help"}:
        print(usage(program, summary, settings))
        return 0
    if args:
        print(
            f"python -m {program}: takes no arguments (got {args[0]!r}); it is configured by "
            f"environment variables: python -m {program} --help",
            file=sys.stderr,
        )
        return 2
    start()
    return 0
