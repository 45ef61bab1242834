#!/usr/bin/env bash
# The cost of distribution, measured in one run on this machine: the monolith and the
# cluster (`lemonade cluster`, four processes), each at concurrency 64 and 1, then the
# audit of both.
#   scripts/bench-cluster.sh [ORDERS]
# LEMONADE_BIN=path measures that binary instead of building this tree (to compare two
# builds in alternating runs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
orders="${1:-20000}"
bin="${LEMONADE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release -q -p lemonade
  bin="$root/target/release/lemonade"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/lemonade-bench-cluster-XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_up() {
  for _ in $(seq 1 300); do curl -sf "$1/api/v1/health" >/dev/null && return 0; sleep 0.1; done
  echo "$2 did not start" >&2; cat "$work/$2.log" >&2; exit 1
}
field() { python3 -c "import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1], {}, r))" "$1"; }

port="$(free_port)"
"$bin" serve --addr "127.0.0.1:$port" --data "$work/monolith" --log warn >"$work/monolith.log" 2>&1 &
pids+=("$!"); mono="http://127.0.0.1:$port"; wait_up "$mono" monolith

port="$(free_port)"
"$bin" cluster --addr "127.0.0.1:$port" --data "$work/cluster" --log warn >"$work/cluster.log" 2>&1 &
pids+=("$!"); cluster="http://127.0.0.1:$port"; wait_up "$cluster" cluster

run() { "$bin" bench --url "$1" --orders "$2" --concurrency "$3" --json; }
echo "== monolith, concurrency 64";  m64=$(run "$mono" "$orders" 64);  echo "$m64"
echo "== cluster, concurrency 64";   c64=$(run "$cluster" "$orders" 64); echo "$c64"
echo "== monolith, concurrency 1";   m1=$(run "$mono" 3000 1);   echo "$m1"
echo "== cluster, concurrency 1";    c1=$(run "$cluster" 3000 1); echo "$c1"

rate() { printf %.0f "$(echo "$1" | field orders_per_s)"; }
echo
echo "                   monolith    cluster"
echo "orders/s, c=64:    $(rate "$m64")       $(rate "$c64")"
echo "p50 us, c=1:       $(echo "$m1" | field 'latency_us["p50"]')         $(echo "$c1" | field 'latency_us["p50"]')"
echo "throughput ratio:  $(python3 -c "print(round($(echo "$m64" | field orders_per_s)/$(echo "$c64" | field orders_per_s), 2))")x (monolith / cluster)"
sleep 2
"$bin" check --data "$work/monolith" | tail -1
"$bin" check --data "$work/cluster" | tail -1
