#!/usr/bin/env bash
# Counts the instructions of one Policy::check per bench case and rule count with callgrind, and
# prints a table (and writes it to the run directory given as $1, if any). Instruction counts do not
# depend on what else the machine is doing, unlike wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -p fourfold-benches --example instructions >&2
binary=target/release/examples/instructions
n_checks=$(grep -oP 'pub const N_CHECKS: usize = \K[0-9_]+' benches/examples/instructions.rs | tr -d _)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
    echo "Instructions per Policy::check (callgrind, ${n_checks} checks per case; $(rustc --version))"
    printf '%-8s  %-16s  %12s\n' rules case instructions
    for n_rules in 10 1000 100000; do
        valgrind --tool=callgrind --toggle-collect='instructions::measure' --dump-after='instructions::measure' \
            --callgrind-out-file="$work/cg.$n_rules" "$binary" "$n_rules" > "$work/cases.$n_rules" 2>/dev/null
        part=0
        while read -r case_name; do
            part=$((part + 1))
            total=$(grep -m1 '^summary:' "$work/cg.$n_rules.$part" | awk '{print $2}')
            printf '%-8s  %-16s  %12d\n' "$n_rules" "$case_name" $((total / n_checks))
        done < "$work/cases.$n_rules"
    done
} | tee "${1:-/dev/null}"
