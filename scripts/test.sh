#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the Rust tests (unit, API, crash and
# audit tests against real servers), the API suite again against the distributed mode, and
# the browser tests of the web app.
# Installs what is missing (Chromium, the browser tests' npm packages) on the way.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

# The same black-box API suite against the distributed mode: the coordinator and the stock,
# orders and CRM services in-process, each on its own port and database.
echo "== API suite against the cluster"
if command -v cargo-nextest >/dev/null 2>&1; then
  LEMONADE_TEST_MODE=cluster cargo nextest run -p lemonade --test api --locked --no-fail-fast
else
  LEMONADE_TEST_MODE=cluster cargo test -p lemonade --test api --locked --no-fail-fast
fi

echo "== browser tests"
scripts/web-test.sh
