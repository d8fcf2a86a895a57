#!/usr/bin/env bash
# Runs the trace recording bench (fourfold against tracing and opentelemetry_sdk) and writes its
# medians, with the machine named, to docs/bench/<date>-<host>/trace-raw.csv and
# docs/bench/<date>-<host>/trace-summary.
#
# Usage: benches/run-trace-bench.sh [extra criterion arguments]
set -euo pipefail

# shellcheck source=benches/run-bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/run-bench-common.sh"
run_criterion_bench trace_record "$@"
# The bench writes its trace files under the temporary directory.
temp_fs="$(df --output=fstype "${TMPDIR:-/tmp}" | tail -n1)"
python3 - "$target_dir/criterion" "$marker" "$run_dir" "$log" "$bench_command" \
    "$(nproc)" "${cpu_model:-unknown}" "$(rustc --version)" "$load_before" "$load_after" \
    "${TMPDIR:-/tmp} ($temp_fs)" <<'PYTHON'
import sys
from pathlib import Path

sys.path.insert(0, "benches")
from criterion_report import fresh_results, human, machine_lines, table, write_raw_csv

(criterion_dir, marker, run_dir, log, command, n_cpus, cpu_model, rustc, load_before, load_after,
 temp_dir) = sys.argv[1:]
groups = ["trace_record_caller", "trace_sustained"]
rows = fresh_results(criterion_dir, marker, lambda group: group in groups)

engine_order = ["fourfold", "tracing", "opentelemetry"]
case_order = ["event", "event_no_redaction", "span", "default_durability", "no_periodic_sync"]

def order(values, value):
    return values.index(value) if value in values else 99

rows.sort(key=lambda row: (order(groups, row[0]), order(engine_order, row[1]), order(case_order, row[2])))
write_raw_csv(Path(run_dir) / "trace-raw.csv", rows, with_elements=True)

def ratio(peer, fourfold):
    return f"{peer / fourfold:.2f}x" if peer and fourfold else "-"

medians = {(group, engine, case): ns for group, engine, case, ns, _ in rows}
lines = [
    "Trace recording: fourfold's Tracer against tracing (+ tracing-subscriber JSON, tracing-appender",
    "non-blocking) and opentelemetry_sdk (BatchSpanProcessor), on the same small tool-call record.",
    "Medians of criterion's sample means.",
    "",
] + machine_lines(command, n_cpus, cpu_model, rustc, load_before, load_after) + [
    f"files:   {temp_dir}",
    "",
    "Caller's thread, per record (the writer threads drain outside the timed part):",
    "",
]
caller = "trace_record_caller"
body = []
for case in ["event", "event_no_redaction", "span"]:
    fourfold = medians.get((caller, "fourfold", case))
    tracing = medians.get((caller, "tracing", case))
    opentelemetry = medians.get((caller, "opentelemetry", case))
    if fourfold is None and tracing is None and opentelemetry is None:
        continue
    body.append((case, human(fourfold), human(tracing), human(opentelemetry),
                 ratio(tracing, fourfold), ratio(opentelemetry, fourfold)))
lines += table(("case", "fourfold", "tracing", "opentelemetry", "tracing/fourfold",
                "opentelemetry/fourfold"), body, 1)

sustained = "trace_sustained"
lines += ["", "Sustained: one thread hands over 200,000 records, until all are written to the file:", ""]
baseline = medians.get((sustained, "fourfold", "no_periodic_sync"))
body = []
for group, engine, case, median_ns, elements_per_s in rows:
    if group != sustained:
        continue
    body.append((engine, case, human(median_ns),
                 "-" if elements_per_s is None else f"{elements_per_s:,.0f}",
                 ratio(median_ns, baseline)))
lines += table(("engine", "case", "200,000 records", "records/s", "time / fourfold no_periodic_sync"),
               body, 2)

latency = [line.strip() for line in Path(log).read_text().splitlines()
           if line.startswith("trace_latency ")]
if latency:
    lines += ["", "Single calls, each timed with two clock reads, the writer keeping up (500 calls a",
              "case in turn, then untimed until written; 200 rounds; 'timer empty' is the two clock",
              "reads around nothing, which every other line includes):", ""] + latency

dropped = [line.strip() for line in Path(log).read_text().splitlines() if " dropped" in line]
if dropped:
    lines += ["", "Dropped records (warm-up included):", ""] + dropped
(Path(run_dir) / "trace-summary").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYTHON
echo "wrote $run_dir/trace-raw.csv and $run_dir/trace-summary" >&2
