#!/bin/sh
# Generate every password docker-compose.yml reads, for a local Docker run:
#
#   deploy/docker/make-secrets.sh [compose-file]
#
# The files are those the compose file's top-level `secrets:` name (`file: ./.secrets/...`), so
# this script never drifts from it: the Kafka admin, each Kafka principal the admin step derives
# (services, partner missions' integration clients, operators), the PostgreSQL superuser and each
# service's role. A file that exists is kept (a volume initialised with it would refuse a new
# one); delete it, and the volume, to rotate. Values are 32 random hex characters (no character the
# broker's JAAS or the storage tool's syntax would need quoted). Nothing is printed but file names.
#
# .secrets is 700, so no other user of this host reads it. The files themselves are 644: compose
# bind-mounts each into /run/secrets of its container, whose user (postgres, Kafka's appuser,
# Corridor's uid 10001) is not the host's owner of the file.
set -eu

compose=${1:-docker-compose.yml}
root=$(cd "$(dirname "$compose")" && pwd)

umask 077
files=$(sed -n 's|^[[:space:]]*file:[[:space:]]*\./\(\.secrets/[A-Za-z0-9._/-]*\)[[:space:]]*$|\1|p' "$compose")
if [ -z "$files" ]; then
  echo "make-secrets.sh: $compose names no ./.secrets/ file" >&2
  exit 1
fi

mkdir -p "$root/.secrets"
chmod 700 "$root/.secrets"
for rel in $files; do
  path="$root/$rel"
  if [ -s "$path" ]; then
    echo "kept     $rel"
    continue
  fi
  mkdir -p "$(dirname "$path")"
  chmod 700 "$(dirname "$path")"
  value=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  tmp="$path.tmp.$$"
  printf '%s\n' "$value" >"$tmp"
  chmod 644 "$tmp"
  mv "$tmp" "$path"
  echo "created  $rel"
done
