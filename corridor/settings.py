"""Settings every service reads from the environment (prefix ``CORRIDOR_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRIDOR_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
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
