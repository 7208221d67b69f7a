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
