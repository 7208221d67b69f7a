"""Settings every service reads from the environment (prefix ``CORRIDOR_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
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
    database_url: str = Field(
        default="postgresql://corridor@127.0.0.1:5432/corridor",
        description="The service's own database and role, without a password (it goes in "
        "database_password or database_password_file); never the superuser's",
    )
    database_password: SecretStr | None = None
    database_password_file: Path | None = Field(
        default=None, description="A file holding the role's password (a Docker or Kubernetes secret)"
    )
    create_database: bool = Field(
        default=False,
        description="Create the service's database if missing (local runs; the role needs CREATEDB)",
    )
    mission: str = Field(default="KAZ", pattern=r"^[A-Z]{3}$")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    http_keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        description="How long an idle HTTP connection stays open. Longer than clients and proxies keep "
        "theirs (httpx 5 s, browsers and load balancers up to 60 s), so that a client never sends a "
        "request on a connection the server is closing at that moment",
    )
    routes_file: Path = REPO_ROOT / "deploy" / "routes" / "central-asia.json"
    topic_partitions: int = 3
    topic_replication: int = 1
    outbox_poll_seconds: float = 1.0
    outbox_retention_seconds: float = 3600.0
    retry_backoff_max_seconds: float = 10.0
    max_handler_attempts: int = 5
    consumer_batch_size: int = Field(
        default=500, ge=1, description="Most records a consumer applies in one transaction"
    )
    consumer_commit_interval_seconds: float = Field(
        default=0.25,
        ge=0.0,
        description="A consumer commits its offsets at most this often (0: after every batch); "
        "what is applied and not yet committed is read again after a crash, a duplicate for the inbox",
    )
    inbox_keep_seconds: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="A consumer keeps the ids of the records it applied at least this long, and in "
        "any case as long as its topics could deliver one of them again (their retention.ms and "
        "segment.ms, asked of the broker, and a day more); for ever where a topic keeps records for "
        "ever (compacted, retention.ms -1)",
    )
    inbox_prune_seconds: float = Field(
        default=3600.0, gt=0, description="How often the inbox ids past that are deleted"
    )
    read_model_gather_ms: int = Field(
        default=250,
        ge=0,
        le=5000,
        description="How long a read model's consumer (reporting's statistics: nobody waits on "
        "them) lets the broker gather records before a fetch answers, so that a trickle of records "
        "is applied in a few transactions instead of one each; 0: as soon as a record is there",
    )
    background: bool = Field(
        default=True,
        description="Run the outbox relay, the consumers and the periodic jobs here. False: this "
        "process only answers HTTP, beside processes of the same service that run them (a busy "
        "API, such as intake's bulk import, then has its core to itself)",
    )
    log_level: str = "INFO"
    log_levels: dict[str, Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]] = Field(
        default_factory=dict,
        description='Levels of single loggers over log_level, as JSON: {"corridor.applied": "DEBUG"} '
        "writes a line for every event a consumer applies, with its case and trace (per record, so "
        "DEBUG: at a busy consumer's rate, a line per record is more than logs should carry)",
    )
    lag_refresh_seconds: float = Field(default=5.0, gt=0, description="How often consumer lag is read")
    trace_console: bool = False
    otlp_endpoint: str | None = Field(
        default=None,
        description="Send spans to this OTLP collector (protobuf over HTTP, its base URL such as "
        "http://127.0.0.1:4318); OpenTelemetry's OTEL_EXPORTER_OTLP_ENDPOINT works too",
    )
    # --- who may call the HTTP API (corridor/auth.py). No defaults that would let a service run
    # without its mission's identity provider: it refuses to start until these are set.
    auth_issuer: str | None = Field(default=None, description="The identity provider's issuer (iss)")
    auth_audience: str | None = Field(default=None, description="This deployment's audience (aud)")
    auth_jwks_file: Path | None = Field(default=None, description="The issuer's public keys (JWKS file)")
    auth_jwks_url: str | None = Field(default=None, description="Or the issuer's JWKS URL")
    auth_algorithms: list[str] = Field(
        default=["RS256", "ES256"], description="Signature algorithms accepted (asymmetric only)"
    )
    auth_leeway_seconds: float = Field(default=30.0, ge=0, le=300, description="Clock skew tolerated")
    # --- how much a request may send (a larger limit for the routes that take files: intake's
    # /imports), refused with 413 before it is read whole.
    http_body_limit_bytes: int = Field(default=1 << 20, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _no_password_in_url(cls, url: str) -> str:
        # A URL is printed, logged and shown in process lists; a password is not.
        if urlsplit(url).password is not None:
            raise ValueError(
                "the database URL carries a password: put it in CORRIDOR_DATABASE_PASSWORD or "
                "CORRIDOR_DATABASE_PASSWORD_FILE"
            )
        return url

    def database_secret(self) -> SecretStr | None:
        """The role's password: from its file when one is configured, else the setting."""
        if self.database_password_file is not None:
            return SecretStr(self.database_password_file.read_text().strip())
        return self.database_password

    def database_dsn(self) -> str:
        """The URL with the password in it, for the database driver only: never log it."""
        secret = self.database_secret()
        if secret is None:
            return self.database_url
        parts = urlsplit(self.database_url)
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{quote(user, safe='')}:{quote(secret.get_secret_value(), safe='')}@{host}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

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
