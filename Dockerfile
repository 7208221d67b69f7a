# Corridor's images, two targets of one file:
#   service (the default, last stage): the runtime dependencies only; docker-compose.yml picks the
#           service with `command: python -m services.<name>`.
#   tools:  the runtime dependencies plus the `tools` group (typer, rich, confluent-kafka) and
#           opstools: the Kafka admin step (`python -m opstools.kafkaadmin apply`, compose's
#           kafka-admin service), the dead-letter CLI (`python -m opstools.deadletters`) and the
#           bulk import CLI.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# Same uv version that wrote uv.lock.
RUN pip install --no-cache-dir uv==0.13.9

# Transport prints manifests with DejaVu Sans: names in every script intake accepts.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Run unprivileged: the code and the venv stay root-owned and read-only.
RUN groupadd --system --gid 10001 corridor \
    && useradd --system --uid 10001 --gid corridor --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin corridor

# Dependencies first, so this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./


FROM base AS tools

# Runtime dependencies and the tools group; not the dev group.
RUN uv sync --frozen --no-dev --group tools --no-install-project

COPY contracts ./contracts
COPY corridor ./corridor
COPY services ./services
COPY deploy ./deploy
COPY opstools ./opstools
RUN uv sync --frozen --no-dev --group tools

USER 10001:10001

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1

CMD ["python", "-m", "opstools.kafkaadmin", "--help"]


FROM base AS service

# Runtime dependencies only: neither the dev group nor the tools group (not a default group).
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself (contracts, corridor, services are the wheel's
# packages; deploy holds the route files read at run time).
COPY contracts ./contracts
COPY corridor ./corridor
COPY services ./services
COPY deploy ./deploy
RUN uv sync --frozen --no-dev

USER 10001:10001

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1

CMD ["python", "-m", "services.intake"]
