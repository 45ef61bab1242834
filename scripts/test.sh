#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the Rust tests (unit, API, crash and
# audit tests against real servers, the cluster's deterministic simulation on a sample of
# seeds), planted bugs the simulation must catch, the API suite again against the distributed mode on
# SQLite and on PostgreSQL, schemathesis against the served OpenAPI document, and the browser
# tests of the web app.
# Installs or starts what is missing (PostgreSQL, Chromium, the browser tests' npm packages,
# schemathesis in a virtualenv) on the way.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== PostgreSQL"
scripts/postgres.sh
export LEMONADE_TEST_POSTGRES="${LEMONADE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"

# Property tests draw their cases from a fixed seed here, so that a run of this script is
# reproducible; `cargo test` alone draws a new seed each time and keeps exploring (a failure
# it finds is saved under proptest-regressions/ and replayed by every run after).
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261130}"

echo "== cargo test"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

# Proof that the simulation has teeth: a build per bug planted in one production function
# (crates/lemonade-sim/tests/plants.rs), each caught within 1,000 seeds.
echo "== planted bugs the simulation must catch"
for plant in inbox-forgets step-forgets-result sweeper-forgets-sagas read-permit-with-caller compensation-skips-release; do
  if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run -p lemonade-sim --test plants --features "plant-$plant" --locked --no-fail-fast
  else
    cargo test -p lemonade-sim --test plants --features "plant-$plant" --locked --no-fail-fast
  fi
done

# The same black-box API suite against the distributed mode: the coordinator and the stock,
# orders and CRM services in-process, each on its own port and database.
echo "== API suite against the cluster"
if command -v cargo-nextest >/dev/null 2>&1; then
  LEMONADE_TEST_MODE=cluster cargo nextest run -p lemonade --test api --locked --no-fail-fast
else
  LEMONADE_TEST_MODE=cluster cargo test -p lemonade --test api --locked --no-fail-fast
fi

# And with every service's database on PostgreSQL (four fresh databases per test).
echo "== API suite against the cluster on PostgreSQL"
if command -v cargo-nextest >/dev/null 2>&1; then
  LEMONADE_TEST_MODE=cluster-postgres cargo nextest run -p lemonade --test api --locked --no-fail-fast
else
  LEMONADE_TEST_MODE=cluster-postgres cargo test -p lemonade --test api --locked --no-fail-fast
fi

# A fuzzer nobody here wrote reads the served OpenAPI document and checks that the server
# does what it says: every check, the examples, coverage, fuzzing and stateful phases,
# against a monolith and a cluster of the real binary (installs itself into target/).
echo "== schemathesis against the monolith and the cluster"
scripts/schemathesis.sh

echo "== browser tests"
scripts/web-test.sh
