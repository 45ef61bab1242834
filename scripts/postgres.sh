#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at 127.0.0.1:5432 for the tests (trust auth, user
# postgres): starts the machine's cluster when it is stopped, installs Debian's PostgreSQL
# when there is none, and drops databases that earlier test runs left behind (lt_*).
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: installing Debian's"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

if ! ready; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "PostgreSQL is not answering: starting cluster $version/main"
  conf="/etc/postgresql/$version/main"
  # The tests connect over TCP as postgres without a password.
  if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || { echo "PostgreSQL did not come up" >&2; exit 1; }
fi

# Databases of test runs that were killed before they could drop their own.
psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'lt\_%'" |
  while read -r db; do
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done
