#!/usr/bin/env bash
# Entrypoint of docker-compose.yml's kafka service (apache/kafka image, KRaft, one node).
#
# The image's own entrypoint (/etc/kafka/docker/run) renders KAFKA_* variables into its properties
# and formats the storage without any SCRAM credential, so a broker with SASL/SCRAM and the
# StandardAuthorizer would start with nobody able to log in. This script instead:
#   1. reads the admin password from its secret file (never from the environment or argv of a
#      long-lived process, never printed);
#   2. writes the broker's properties (deploy/kafka/server.properties plus the JAAS lines holding
#      that password) and a client file for the healthcheck, both mode 600;
#   3. formats the storage once, adding the admin's SCRAM-SHA-512 credential (--add-scram); the
#      storage tool prints the salted keys, so its output goes to a 600 file, not the log;
#   4. runs the broker.
set -euo pipefail
umask 077

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
TEMPLATE=${CORRIDOR_KAFKA_TEMPLATE:-/etc/corridor/kafka/server.properties}
SECRET=${CORRIDOR_KAFKA_ADMIN_PASSWORD_FILE:-/run/secrets/kafka-admin.password}
CONFIG_DIR=${CORRIDOR_KAFKA_CONFIG_DIR:-$KAFKA_HOME/config/corridor}
: "${CLUSTER_ID:?set CLUSTER_ID (kafka-storage.sh random-uuid)}"

if [[ ! -s "$SECRET" ]]; then
  echo "start.sh: no admin password in $SECRET (run deploy/docker/make-secrets.sh)" >&2
  exit 1
fi
password=$(tr -d '\r\n' <"$SECRET")
# It goes into JAAS and --add-scram syntax unquoted-safe only if it has no quote, bracket or comma.
if [[ ! "$password" =~ ^[A-Za-z0-9_-]{16,}$ ]]; then
  echo "start.sh: the admin password must be 16+ characters of [A-Za-z0-9_-]" >&2
  exit 1
fi

mkdir -p "$CONFIG_DIR"
props="$CONFIG_DIR/server.properties"
{
  cat "$TEMPLATE"
  echo
  echo "listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$password\";"
  echo "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$password\" user_admin=\"$password\";"
} >"$props"
{
  echo "security.protocol=SASL_PLAINTEXT"
  echo "sasl.mechanism=SCRAM-SHA-512"
  echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$password\";"
} >"$CONFIG_DIR/admin-client.properties"

log_dir=$(sed -n 's/^log\.dirs=//p' "$TEMPLATE" | cut -d, -f1)
if [[ ! -f "$log_dir/meta.properties" ]]; then
  "$KAFKA_HOME/bin/kafka-storage.sh" format --cluster-id "$CLUSTER_ID" --config "$props" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$password]" --ignore-formatted \
    >"$CONFIG_DIR/format.log" 2>&1 || {
      echo "start.sh: kafka-storage format failed (see $CONFIG_DIR/format.log)" >&2
      exit 1
    }
fi
unset password

exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$props"
