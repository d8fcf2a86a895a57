#!/usr/bin/env bash
# Builds the Node addon in release and runs benches/node/bench.js, writing
# docs/bench/<date>-<host>/node-raw.csv and node-summary (the table, the machine and the command).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root/bindings-node"
[[ -d node_modules ]] || npm ci --no-audit --no-fund
build_args=(--platform --release --js index.js --dts index.d.ts)
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  build_args+=(--target-dir "$CARGO_TARGET_DIR")
fi
npx --no-install napi build "${build_args[@]}"

cd "$repo_root"
run_dir="docs/bench/$(date +%F)-$(hostname -s)"
mkdir -p "$run_dir"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
node benches/node/bench.js >"$run_dir/node-raw.csv" 2>"$table"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "Node addon (release): session.guard per call from JS, and countTokens against js-tiktoken"
  echo "$(node -p "require('./bindings-node/node_modules/js-tiktoken/package.json').version" | sed 's/^/js-tiktoken /'),"\
    "same texts, same process, counts checked equal first. guard: median of 31 batch means of"\
    "20,000 calls (interleaved: 31 rounds of 20,000 calls from JS then 20,000 in Rust, medians);"\
    "counting: fastest of the runs in 2 s (at least 3)."
  echo
  echo "command: benches/node/run-node-bench.sh (node benches/node/bench.js)"
  echo "node:    $(node --version)"
  echo "cpus:    $(nproc)"
  echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "rustc:   $(rustc --version)"
  echo "load:    $load_before before, $load_after after (1, 5, 15 min averages)"
  echo
  cat "$table"
} >"$run_dir/node-summary"
cat "$run_dir/node-summary"
