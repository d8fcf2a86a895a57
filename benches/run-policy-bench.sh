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
import sys
from pathlib import Path

sys.path.insert(0, "benches")
from criterion_report import fresh_results, human, machine_lines, table, write_raw_csv

criterion_dir, marker, run_dir, log, command, n_cpus, cpu_model, rustc, load_before, load_after = sys.argv[1:]
rows = fresh_results(criterion_dir, marker, lambda group: group.startswith("policy_check_"))

def n_rules(group):
    return int(group.rsplit("_", 1)[1])

case_order = ["allow_hit", "deny_hit", "no_match", "compound_command", "shell_command"]
rows.sort(key=lambda row: (n_rules(row[0]), row[1] != "fourfold", case_order.index(row[2]) if row[2] in case_order else 99))
write_raw_csv(Path(run_dir) / "raw.csv", rows, with_elements=False)

medians = {(group, engine, case): ns for group, engine, case, ns, _ in rows}
groups = sorted({row[0] for row in rows}, key=n_rules)
lines = [
    "Policy check: fourfold Policy::check against cedar-policy Authorizer::is_authorized.",
    "Medians of criterion's sample means, per request, on the same policy and requests.",
    "",
] + machine_lines(command, n_cpus, cpu_model, rustc, load_before, load_after) + [""]
body = []
for group in groups:
    for case in case_order:
        fourfold = medians.get((group, "fourfold", case))
        cedar = medians.get((group, "cedar", case))
        if fourfold is None and cedar is None:
            continue
        ratio = f"{cedar / fourfold:.1f}x" if fourfold and cedar else "-"
        body.append((f"{n_rules(group):,}", case, human(fourfold), human(cedar), ratio))
lines += table(("rules", "case", "fourfold", "cedar", "cedar/fourfold"), body, 2)
(Path(run_dir) / "summary").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYTHON
echo "wrote $run_dir/raw.csv and $run_dir/summary" >&2
