"""The client configuration Kafka's tools get: the principal's SCRAM credentials, nothing looser."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from corridor.kafkaclient import KafkaAccess
from devkit import kafkatool


def test_the_tools_log_in_with_scram_as_the_principal(tmp_path: Path) -> None:
    access = KafkaAccess(bootstrap="127.0.0.1:9092", username="operations", password=SecretStr("s3cret"))
    path = kafkatool.write_client_properties(access, tmp_path / "ops.properties")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().splitlines() == [
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="operations" password="s3cret";',
    ]


def test_a_password_that_would_break_out_of_jaas_is_refused() -> None:
    access = KafkaAccess(bootstrap="127.0.0.1:9092", username="operations", password=SecretStr('x"; y'))
    with pytest.raises(ValueError, match="quote"):
        kafkatool.client_properties(access)


def test_over_tls_the_tools_trust_the_clusters_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    access = KafkaAccess(
        bootstrap="127.0.0.1:9093",
        security_protocol="SASL_SSL",
        username="operations",
        password=SecretStr("p"),
        ssl_cafile=ca,
    )
    text = kafkatool.client_properties(access)
    assert "security.protocol=SASL_SSL" in text
    assert f"ssl.truststore.location={ca}" in text and "ssl.truststore.type=PEM" in text


def test_an_unknown_tool_is_refused_before_anything_runs(tmp_path: Path) -> None:
    access = KafkaAccess(bootstrap="127.0.0.1:9092", username="operations", password=SecretStr("p"))
    with pytest.raises(ValueError, match="unknown tool"):
        kafkatool.command("kafka-server-start", access, tmp_path / "x", [])
