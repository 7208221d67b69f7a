"""Real Kafka and PostgreSQL servers for the test suite and the local demo, without Docker."""

from devkit.devinfra.kafka import KAFKA_VERSION, KafkaCluster, ensure_kafka_classpath
from devkit.devinfra.postgres import PostgresServer

__all__ = ["KAFKA_VERSION", "KafkaCluster", "PostgresServer", "ensure_kafka_classpath"]
