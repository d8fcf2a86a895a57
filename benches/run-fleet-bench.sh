#!/usr/bin/env bash
# Fleet budgets on PostgreSQL: reserve + commit throughput with 1, 4 and 16 processes, beside the
# read-then-write check, and how far each lets a fleet overspend a limit. Starts a throwaway
# server (scripts/with-postgres.sh) and writes docs/bench/<date>-<machine>/fleet.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p fourfold-benches --bin fleet_budget
OUT="docs/bench/$(date +%Y-%m-%d)-${MACHINE:-vm}"
mkdir -p "$OUT"
bash scripts/with-postgres.sh target/release/fleet_budget --csv "$OUT/fleet.csv" "$@" | tee "$OUT/fleet-summary"
