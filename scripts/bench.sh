#!/usr/bin/env bash
# The monolith's benchmark in one run: group commit against one commit per order, both at
# concurrency 64, then latency at concurrency 1, and the server's peak resident memory.
#   scripts/bench.sh [ORDERS] [BASELINE_ORDERS]
# LEMONADE_BIN=path measures that binary instead of building this tree (to compare two
# builds in alternating runs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
orders="${1:-100000}"
baseline_orders="${2:-20000}"
bin="${LEMONADE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release -q -p lemonade
  bin="$root/target/release/lemonade"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/lemonade-bench-XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start() { # name batch_max -> sets url and pid
  local port; port="$(free_port)"
  "$bin" serve --addr "127.0.0.1:$port" --data "$work/$1" --batch-max "$2" --log warn >"$work/$1.log" 2>&1 &
  pid=$!; pids+=("$pid"); url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "$url/api/v1/health" >/dev/null && return 0; sleep 0.1; done
  echo "server $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}

field() { python3 -c "import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1], {}, r))" "$1"; }

start grouped 32; grouped_url=$url; grouped_pid=$pid
start baseline 1; baseline_url=$url

echo "== group commit, concurrency 64, $orders orders"
g=$("$bin" bench --url "$grouped_url" --orders "$orders" --concurrency 64 --json)
echo "$g"
echo "== one commit per order, concurrency 64, $baseline_orders orders"
b=$("$bin" bench --url "$baseline_url" --orders "$baseline_orders" --concurrency 64 --json)
echo "$b"
echo "== group commit, concurrency 1, 5000 orders"
one=$("$bin" bench --url "$grouped_url" --orders 5000 --concurrency 1 --json)
echo "$one"
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$grouped_pid/status")

g_rate=$(echo "$g" | field orders_per_s); b_rate=$(echo "$b" | field orders_per_s)
echo
echo "group commit:      $(printf %.0f "$g_rate") orders/s"
echo "one per commit:    $(printf %.0f "$b_rate") orders/s"
echo "ratio:             $(python3 -c "print(round($g_rate/$b_rate, 2))")x"
echo "p50 at c=1:        $(echo "$one" | field 'latency_us["p50"]') us"
echo "server peak RSS:   $((rss_kib / 1024)) MiB"
"$bin" check --data "$work/grouped" | tail -1
