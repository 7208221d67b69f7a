"""Kafka's own command-line tools (the ``kafka-tools`` artifact of the assembled Kafka) against a
local stack's secured broker, as its operations principal.

    python -m devkit kafka-tool consumer-groups --describe --all-groups
    python -m devkit kafka-tool console-consumer --topic case.status --from-beginning --max-messages 5

The wrapper adds what the release tarball's ``bin/kafka-*.sh`` scripts and an operator's
properties file would: the classpath, the bootstrap address and a client configuration file
holding the principal's SCRAM credentials (mode 600, beside its password in the stack's secrets).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corridor.kafkaclient import KafkaAccess
from corridor.settings import REPO_ROOT
from devkit.devinfra.kafka import _java, ensure_kafka_classpath

LOG_CONFIG = REPO_ROOT / "deploy" / "kafka" / "tools-log4j2.yaml"


@dataclass(frozen=True)
class Tool:
    main_class: str
    config_option: str
    """The option that names the client configuration file."""


TOOLS: dict[str, Tool] = {
    "consumer-groups": Tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--command-config"),
    "console-consumer": Tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--command-config"),
    "topics": Tool("org.apache.kafka.tools.TopicCommand", "--command-config"),
    "acls": Tool("org.apache.kafka.tools.AclCommand", "--command-config"),
}
"""The tools an operator uses on the day, by the name of their ``bin/kafka-<name>.sh`` script."""


def client_properties(access: KafkaAccess) -> str:
    """A Java client's configuration for ``access`` (SASL/SCRAM, and TLS trust if it uses TLS)."""
    lines = [f"security.protocol={access.security_protocol}"]
    if access.uses_sasl:
        if access.username is None or access.password is None:
            raise ValueError(f"{access.security_protocol} needs the principal's name and password")
        user, password = access.username, access.password.get_secret_value()
        for value in (user, password):
            if '"' in value or "\\" in value:  # JAAS quoting has no escape for these
                raise ValueError("a SCRAM user or password with a quote or backslash cannot go in JAAS")
        lines += [
            f"sasl.mechanism={access.sasl_mechanism}",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";',
        ]
    if access.uses_tls and access.ssl_cafile is not None:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={access.ssl_cafile}"]
    return "\n".join(lines) + "\n"


def write_client_properties(access: KafkaAccess, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(client_properties(access))
    return path


def command(tool: str, access: KafkaAccess, config_file: Path, args: Sequence[str]) -> list[str]:
    """The ``java`` command line of ``tool`` with ``args``, against ``access``'s cluster."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}: one of {', '.join(TOOLS)}")
    spec = TOOLS[tool]
    lib = ensure_kafka_classpath()
    return [
        _java(),
        "-Xms32m",
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",  # a short-lived tool: C1 only starts faster
        f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        "-cp",
        f"{lib}/*",
        spec.main_class,
        "--bootstrap-server",
        access.bootstrap,
        spec.config_option,
        str(config_file),
        *args,
    ]


def run(
    tool: str, access: KafkaAccess, config_file: Path, args: Sequence[str], *, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``tool`` to completion and return what it printed (for tests and scripts)."""
    write_client_properties(access, config_file)
    return subprocess.run(
        command(tool, access, config_file, args),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
