#!/usr/bin/env bash
# Runs the cost benches and writes their results, with the machine named, to
# docs/bench/<date>-<host>/:
#   cost-tokens.csv, cost-tokens-summary: token counting throughput, one thread, fourfold against
#     OpenAI's tiktoken (and tiktoken-rs) on the same texts in one run (benches/tokens_vs_tiktoken.py);
#   cost-raw.csv, cost-summary: CostMeter record and reserve/commit with 1, 2 and 8 threads
#     (criterion bench cost_meter).
#
# Needs a Python with tiktoken and regex: PYTHON=/path/to/venv/bin/python (default python3).
# No internet: the BPE files come from the cargo registry (scripts/tiktoken_cache.py).
#
# Usage: benches/run-cost-bench.sh [extra criterion arguments]
set -euo pipefail

python="${PYTHON:-python3}"
if ! "$python" -c 'import tiktoken, regex' 2>/dev/null; then
    echo "error: $python lacks tiktoken or regex; run: python3 -m venv /tmp/venv &&" \
        "/tmp/venv/bin/pip install tiktoken regex, then PYTHON=/tmp/venv/bin/python $0" >&2
    exit 2
fi

# shellcheck source=benches/run-bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/run-bench-common.sh"
run_criterion_bench cost_meter "$@"

echo "building the token_count binary" >&2
cargo build --release -p fourfold-benches --bin token_count >&2
tokens_load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
tokens_command="$python benches/tokens_vs_tiktoken.py --token-count $target_dir/release/token_count --min-seconds 1"
echo "running: $tokens_command" >&2
"$python" benches/tokens_vs_tiktoken.py --token-count "$target_dir/release/token_count" --min-seconds 1 \
    --csv "$run_dir/cost-tokens.csv" --summary "$run_dir/cost-tokens-summary.body" >&2
tokens_load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
{
    echo "command: $tokens_command"
    echo "machine: $(nproc) CPUs, ${cpu_model:-unknown}; $(rustc --version)"
    echo "load:    $tokens_load_before before, $tokens_load_after after"
    echo
    cat "$run_dir/cost-tokens-summary.body"
} >"$run_dir/cost-tokens-summary"
rm -f "$run_dir/cost-tokens-summary.body"

python3 - "$target_dir/criterion" "$marker" "$run_dir" "$log" "$bench_command" \
    "$(nproc)" "${cpu_model:-unknown}" "$(rustc --version)" "$load_before" "$load_after" <<'PYTHON'
import sys
from pathlib import Path

sys.path.insert(0, "benches")
from criterion_report import fresh_results, human, machine_lines, table, write_raw_csv

(criterion_dir, marker, run_dir, log, command, n_cpus, cpu_model, rustc, load_before,
 load_after) = sys.argv[1:]
groups = ["cost_record", "cost_reserve_commit"]
rows = fresh_results(criterion_dir, marker, lambda group: group in groups)
rows.sort(key=lambda row: (groups.index(row[0]), int(row[2])))
write_raw_csv(Path(run_dir) / "cost-raw.csv", rows, with_elements=True)
lines = [
    "CostMeter: record, and reserve then commit, of one small gpt-4o call (built-in LiteLLM prices),",
    "three budgets covering every call; N threads contending for one meter, one call per thread per",
    "iteration. Medians of criterion's sample means. No peer: nothing else enforces budgets in-process.",
    "",
] + machine_lines(command, n_cpus, cpu_model, rustc, load_before, load_after) + [""]
body = []
for group, engine, case, median_ns, elements_per_s in rows:
    n_threads = int(case)
    body.append((engine, case, human(median_ns), human(median_ns / n_threads),
                 "-" if elements_per_s is None else f"{elements_per_s:,.0f}"))
lines += table(("operation", "threads", "per iteration", "per call", "calls/s"), body, 2)
(Path(run_dir) / "cost-summary").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYTHON
echo "wrote $run_dir/cost-raw.csv, cost-summary, cost-tokens.csv and cost-tokens-summary" >&2
