#!/usr/bin/env bash
# Browser tests of the tablet web app against the real server.
#
#   scripts/web-test.sh                 # everything
#   scripts/web-test.sh tests/sell.test.js   # one file (path relative to web-tests/)
#
# Installs what is missing (Chromium from Debian, the npm packages of web-tests/), builds the
# server, starts it on a free loopback port with a fresh data folder, waits for
# /api/v1/health, runs the tests (each test also starts its own fresh server so none depends
# on another's stock), stops the server and exits non-zero on any failure.
# Screenshots of every page land in target/screenshots/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf '\n== %s\n' "$*"; }

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  log "installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ ! -d web-tests/node_modules/playwright-core ]; then
  log "installing web-tests dependencies (npm ci)"
  (cd web-tests && npm ci --no-audit --no-fund)
fi

log "building the server (cargo build -p lemonade)"
cargo build -p lemonade
export LEMONADE_BIN="$root/target/debug/lemonade"

data="$(mktemp -d "${TMPDIR:-/tmp}/lemonade-web-XXXXXX")"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
server_log="$data/server.log"
"$LEMONADE_BIN" serve --addr "127.0.0.1:$port" --data "$data/db" >"$server_log" 2>&1 &
server_pid=$!
cleanup() {
  if kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT INT TERM

log "waiting for http://127.0.0.1:$port/api/v1/health"
for _ in $(seq 1 200); do
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' \
      "http://127.0.0.1:$port/api/v1/health" 2>/dev/null; then ready=1; break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ "${ready:-0}" != 1 ]; then
  echo "the server did not become healthy; its log:" >&2
  cat "$server_log" >&2
  exit 1
fi
export LEMONADE_URL="http://127.0.0.1:$port"

log "running the browser tests"
mkdir -p target/screenshots
cd web-tests
if [ "$#" -gt 0 ]; then
  node --test --test-concurrency=1 "$@"
else
  node --test --test-concurrency=1 tests/
fi
