"""How a Kafka client proves who it is: one value every client in the project is built from.

Brokers listen with SASL (SCRAM-SHA-512) and an authoriser that refuses whatever no ACL allows,
so a client without credentials reaches nothing. ``KafkaAccess`` carries the bootstrap servers and
the principal's credentials, and renders them for each client library the project uses (aiokafka,
confluent-kafka/librdkafka, FastStream), so no call site spells out security settings itself.
"""

from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

SecurityProtocol = Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT", "SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaAccess(BaseModel):
    """Bootstrap servers and one principal's credentials.

    ``PLAINTEXT`` exists only for a broker that has no SASL listener (none in this project runs
    that way); the default is SASL over plain TCP for the local loopback stack, and ``SASL_SSL``
    with ``ssl_cafile`` for anything that crosses a network.
    """

    model_config = ConfigDict(frozen=True)

    bootstrap: str
    security_protocol: SecurityProtocol = "SASL_PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    ssl_cafile: Path | None = None

    @property
    def servers(self) -> list[str]:
        return [h.strip() for h in self.bootstrap.split(",") if h.strip()]

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SASL_SSL", "SSL")

    def _credentials(self) -> tuple[str, str]:
        if not self.username or self.password is None:
            raise ValueError(f"Kafka {self.security_protocol} needs a username and a password")
        return self.username, self.password.get_secret_value()

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.uses_sasl:
            user, password = self._credentials()
            kwargs |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": user,
                "sasl_plain_password": password,
            }
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def librdkafka(self) -> dict[str, Any]:
        """Configuration for confluent-kafka (librdkafka >= 2.6.1 for SCRAM against Kafka 4.x)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.uses_sasl:
            user, password = self._credentials()
            conf |= {"sasl.mechanism": self.sasl_mechanism, "sasl.username": user, "sasl.password": password}
        if self.uses_tls and self.ssl_cafile:
            conf["ssl.ca.location"] = str(self.ssl_cafile)
        return conf

    def faststream_security(self) -> Any:
        """``security=`` for FastStream's KafkaBroker (None for a plain listener)."""
        from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

        if not self.uses_sasl:
            return BaseSecurity(ssl_context=self.ssl_context()) if self.uses_tls else None
        user, password = self._credentials()
        kind = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}
        return kind[self.sasl_mechanism](
            user, password, ssl_context=self.ssl_context(), use_ssl=self.uses_tls
        )

    def as_env(self) -> dict[str, str]:
        """The ``CORRIDOR_KAFKA_*`` variables a service process reads these from (ServiceSettings)."""
        env = {
            "CORRIDOR_KAFKA_BOOTSTRAP": self.bootstrap,
            "CORRIDOR_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "CORRIDOR_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
        }
        if self.username:
            env["CORRIDOR_KAFKA_USERNAME"] = self.username
        if self.password is not None:
            env["CORRIDOR_KAFKA_PASSWORD"] = self.password.get_secret_value()
        if self.ssl_cafile:
            env["CORRIDOR_KAFKA_SSL_CAFILE"] = str(self.ssl_cafile)
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> KafkaAccess:
        """For tools: the same ``CORRIDOR_KAFKA_*`` variables a service reads."""
        env = os.environ if environ is None else environ
        password = env.get("CORRIDOR_KAFKA_PASSWORD")
        password_file = env.get("CORRIDOR_KAFKA_PASSWORD_FILE")
        if password is None and password_file:
            password = Path(password_file).read_text().strip()
        cafile = env.get("CORRIDOR_KAFKA_SSL_CAFILE")
        return cls(
            bootstrap=env.get("CORRIDOR_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            security_protocol=env.get("CORRIDOR_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),  # type: ignore[arg-type]
            sasl_mechanism=env.get("CORRIDOR_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),  # type: ignore[arg-type]
            username=env.get("CORRIDOR_KAFKA_USERNAME"),
            password=SecretStr(password) if password is not None else None,
            ssl_cafile=Path(cafile) if cafile else None,
        )


def write_secret(path: Path, value: str) -> None:
    """Write a secret readable by its owner only (created 600, never world-readable in between)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    os.chmod(path, 0o600)


def read_or_create_secret(path: Path) -> str:
    """The secret in ``path``; a new random one (written there, mode 600) if there is none."""
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    write_secret(path, value)
    return value
