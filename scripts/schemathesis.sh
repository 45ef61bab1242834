#!/usr/bin/env bash
# Runs schemathesis, a fuzzer nobody here wrote, against the OpenAPI document the shop serves:
# every check, over the examples, coverage, fuzzing and stateful phases, once against a
# monolith and once against a cluster, each started here on a free loopback port with a
# temporary data folder and an access token. Exits non-zero on any failure.
#
# schemathesis is installed, at the version pinned below, into a virtualenv under target/
# (a clean clone has nothing installed). The runs are bounded (EXAMPLES test cases per
# operation and phase) and seeded (SEED), so a failure can be replayed.
#
#   scripts/schemathesis.sh [monolith|cluster]...   (default: both)
#
# Environment: LEMONADE_BIN (default: the debug build, built if missing),
# SCHEMATHESIS_EXAMPLES (default 100), SCHEMATHESIS_SEED (default 20261130).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

version=4.32.5
examples="${SCHEMATHESIS_EXAMPLES:-100}"
seed="${SCHEMATHESIS_SEED:-20261130}"
venv="$root/target/schemathesis-venv"
config="$root/scripts/schemathesis.toml"
reports="$root/target/schemathesis"

if ! "$venv/bin/st" --version 2>/dev/null | grep -qx "st, version $version"; then
  echo "== installing schemathesis $version into $venv"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

bin="${LEMONADE_BIN:-$root/target/debug/lemonade}"
if [[ -z "${LEMONADE_BIN:-}" ]]; then
  cargo build --locked -p lemonade --bin lemonade
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_pid=""
workdir="$(mktemp -d)"
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

# run MODE: starts the shop in MODE (serve or cluster), fuzzes it, stops it.
run() {
  local mode="$1" command
  case "$mode" in
    monolith) command=serve ;;
    cluster) command=cluster ;;
    *) echo "unknown mode $mode (monolith or cluster)" >&2; return 2 ;;
  esac
  local port token data log
  port="$(free_port)"
  token="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  data="$workdir/$mode-data"
  log="$workdir/$mode.log"
  echo "== schemathesis against the $mode on 127.0.0.1:$port"
  LEMONADE_TOKEN="$token" "$bin" "$command" --addr "127.0.0.1:$port" --data "$data" >"$log" 2>&1 &
  server_pid=$!
  local url="http://127.0.0.1:$port/api/v1"
  local up=""
  for _ in $(seq 1 120); do
    if curl -fs -o /dev/null -H "Authorization: Bearer $token" "$url/health"; then up=1; break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  if [[ -z "$up" ]]; then
    echo "the $mode did not start:" >&2
    cat "$log" >&2
    return 1
  fi
  local status=0
  # too_slow is Hypothesis's check of its own generation speed, not of the shop: the Email
  # pattern lists every code point an email may hold (no private-use or unassigned ones,
  # as the server refuses), which is slow to draw from but exact; the cases are still drawn.
  "$venv/bin/st" --config-file "$config" run "$url/openapi.json" \
    --header "Authorization: Bearer $token" \
    --suppress-health-check too_slow \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$examples" \
    --seed "$seed" \
    --workers 1 \
    --generation-database none \
    --no-color \
    --report junit --report-dir "$reports/$mode" || status=$?
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if [[ $status -ne 0 ]]; then
    echo "schemathesis found failures against the $mode (exit $status); server log: see above" >&2
    tail -n 50 "$log" >&2
  fi
  return "$status"
}

modes=("$@")
[[ ${#modes[@]} -eq 0 ]] && modes=(monolith cluster)
failed=0
for mode in "${modes[@]}"; do
  run "$mode" || failed=1
done
exit "$failed"
