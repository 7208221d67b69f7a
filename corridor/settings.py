"""Settings every service reads from the environment (prefix ``CORRIDOR_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from corridor.kafkaclient import KafkaAccess, SaslMechanism, SecurityProtocol

REPO_ROOT = Path(__file__).resolve().parents[1]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRIDOR_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_username: str | None = Field(default=None, description="This instance's own Kafka principal")
    kafka_password: SecretStr | None = None
    kafka_password_file: Path | None = Field(
        default=None, description="A file holding the Kafka password (read when kafka_password is unset)"
    )
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle for a SASL_SSL listener")
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    create_database: bool = Field(
        default=False, description="Create the service's database if missing (local runs)"
    )
    mission: str = Field(default="KAZ", pattern=r"^[A-Z]{3}$")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    routes_file: Path = REPO_ROOT / "deploy" / "routes" / "central-asia.json"
    topic_partitions: int = 3
    topic_replication: int = 1
    outbox_poll_seconds: float = 1.0
    outbox_retention_seconds: float = 3600.0
    retry_backoff_max_seconds: float = 10.0
    max_handler_attempts: int = 5
    log_level: str = "INFO"
    trace_console: bool = False

    def kafka_access(self) -> KafkaAccess:
        password = self.kafka_password
        if password is None and self.kafka_password_file is not None:
            password = SecretStr(self.kafka_password_file.read_text().strip())
        return KafkaAccess(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=password,
            ssl_cafile=self.kafka_ssl_cafile,
        )
