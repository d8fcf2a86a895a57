#!/usr/bin/env bash
# Runs the policy check bench (fourfold against Cedar) and writes its medians, with the machine
# named, to docs/bench/<date>-<host>/raw.csv and docs/bench/<date>-<host>/summary.
#
# Usage: benches/run-policy-bench.sh [extra criterion arguments]
set -euo pipefail

# shellcheck source=benches/run-bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/run-bench-common.sh"
run_criterion_bench policy_check "$@"
python3 - "$target_dir/criterion" "$marker" "$run_dir" "$log" "$bench_command" \
    "$(nproc)" "${cpu_model:-unknown}" "$(rustc --version)" "$load_before" "$load_after" <<'PYTHON'
import csv
import json
import os
import sys
from pathlib import Path

criterion_dir, marker, run_dir, log, command, n_cpus, cpu_model, rustc, load_before, load_after = sys.argv[1:]
started = os.path.getmtime(marker)
rows = []
for estimates in Path(criterion_dir).glob("**/new/estimates.json"):
    if os.path.getmtime(estimates) < started:
        continue
    benchmark = json.loads((estimates.parent / "benchmark.json").read_text())
    group = benchmark["group_id"]
    if not group.startswith("policy_check_"):
        continue
    median_ns = json.loads(estimates.read_text())["median"]["point_estimate"]
    rows.append((group, benchmark["function_id"], benchmark["value_str"], median_ns))
if not rows:
    sys.exit("no fresh results under " + criterion_dir)

def n_rules(group):
    return int(group.rsplit("_", 1)[1])

case_order = ["allow_hit", "deny_hit", "no_match", "compound_command", "shell_command"]
rows.sort(key=lambda row: (n_rules(row[0]), row[1] != "fourfold", case_order.index(row[2]) if row[2] in case_order else 99))
with open(Path(run_dir) / "raw.csv", "w", newline="") as raw:
    writer = csv.writer(raw)
    writer.writerow(["group", "engine", "case", "median_ns"])
    for group, engine, case, median_ns in rows:
        writer.writerow([group, engine, case, f"{median_ns:.1f}"])

def human(ns):
    if ns is None:
        return "-"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns / 1_000_000:.2f} ms"

medians = {(group, engine, case): ns for group, engine, case, ns in rows}
groups = sorted({row[0] for row in rows}, key=n_rules)
lines = [
    "Policy check: fourfold Policy::check against cedar-policy Authorizer::is_authorized.",
    "Medians of criterion's sample means, per request, on the same policy and requests.",
    "",
    f"command: {command}",
    f"cpus:    {n_cpus}",
    f"cpu:     {cpu_model}",
    f"rustc:   {rustc}",
    f"load:    {load_before} before, {load_after} after (1, 5, 15 min averages)",
    "",
]
header = ("rules", "case", "fourfold", "cedar", "cedar/fourfold")
table = [header]
for group in groups:
    for case in case_order:
        fourfold = medians.get((group, "fourfold", case))
        cedar = medians.get((group, "cedar", case))
        if fourfold is None and cedar is None:
            continue
        ratio = f"{cedar / fourfold:.1f}x" if fourfold and cedar else "-"
        table.append((f"{n_rules(group):,}", case, human(fourfold), human(cedar), ratio))
widths = [max(len(row[col]) for row in table) for col in range(len(header))]
for row_idx, row in enumerate(table):
    cells = [cell.ljust(width) if col < 2 else cell.rjust(width) for col, (cell, width) in enumerate(zip(row, widths))]
    lines.append("  ".join(cells).rstrip())
    if row_idx == 0:
        lines.append("  ".join("-" * width for width in widths))
(Path(run_dir) / "summary").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYTHON
echo "wrote $run_dir/raw.csv and $run_dir/summary" >&2
