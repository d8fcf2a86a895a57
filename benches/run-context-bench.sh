#!/usr/bin/env bash
# Runs the context benches and writes their results, with the machine named, to
# docs/bench/<date>-<host>/context-*:
#
# - `cargo bench --bench context_ask`: fourfold's ContextStore::ask against tantivy on 100,000
#   synthetic sections (latency percentiles of single calls, with the engines taking turns, each
#   engine alone, and with cold caches, criterion medians, ingest throughput), kept as
#   context-ask.log (the bench's own lines), context-raw.csv (criterion's medians) and
#   context-summary;
# - `context_lookup` at each budget in CONTEXT_BUDGETS (default "500 800 1500"): tokens per lookup
#   against grep-and-read on the pydantic corpus, kept as context-lookup-<budget>.txt and .json.
#
# Usage: benches/run-context-bench.sh [extra criterion arguments]
# Environment: CONTEXT_CORPUS (default ../shared/corpus/pydantic from the workspace root),
# CONTEXT_QUESTIONS (default the corpus's questions-dev.jsonl), CONTEXT_BUDGETS.
set -euo pipefail

# shellcheck source=benches/run-bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/run-bench-common.sh"
run_criterion_bench context_ask "$@"
grep -E '^context_(store|ingest|hits|latency|latency_alone|latency_cold) ' "$log" >"$run_dir/context-ask.log"

corpus="${CONTEXT_CORPUS:-$repo_root/../shared/corpus/pydantic}"
questions="${CONTEXT_QUESTIONS:-$corpus/questions-dev.jsonl}"
budgets="${CONTEXT_BUDGETS:-500 800 1500}"
cargo build --release -p fourfold-benches --bin context_lookup
lookup_commands=()
for budget in $budgets; do
    lookup_command=(cargo run --release -q -p fourfold-benches --bin context_lookup --
        --corpus "$corpus" --questions "$questions" --budget "$budget"
        --json "$run_dir/context-lookup-$budget.json")
    echo "running: ${lookup_command[*]}" >&2
    "${lookup_command[@]}" >"$run_dir/context-lookup-$budget.txt"
    tail -n1 "$run_dir/context-lookup-$budget.txt" >&2
    lookup_commands+=("${lookup_command[*]}")
done

python3 - "$target_dir/criterion" "$marker" "$run_dir" "$bench_command" \
    "$(nproc)" "${cpu_model:-unknown}" "$(rustc --version)" "$load_before" "$load_after" \
    "$(printf '%s\n' "${lookup_commands[@]}")" <<'PYTHON'
import json
import sys
from pathlib import Path

sys.path.insert(0, "benches")
from criterion_report import fresh_results, human, machine_lines, table, write_raw_csv

(criterion_dir, marker, run_dir, command, n_cpus, cpu_model, rustc, load_before, load_after,
 lookup_commands) = sys.argv[1:]
run_dir = Path(run_dir)
rows = fresh_results(criterion_dir, marker, lambda group: group.startswith("context_ask_"))
engine_order = ["fourfold", "tantivy", "tantivy_fetch"]
rows.sort(key=lambda row: engine_order.index(row[1]) if row[1] in engine_order else 99)
write_raw_csv(run_dir / "context-raw.csv", rows, with_elements=False)
medians = {engine: ns for _, engine, _, ns, _ in rows}


def fields(line):
    """The `name=value` pairs of one of the bench's `context_*` lines."""
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


ingest, latency, alone, cold, store, hits = {}, {}, {}, {}, {}, {}
for line in (run_dir / "context-ask.log").read_text().splitlines():
    kind = line.split(" ", 1)[0]
    if kind == "context_ingest":
        ingest[fields(line)["engine"]] = fields(line)
    elif kind == "context_latency":
        latency[fields(line)["engine"]] = fields(line)
    elif kind == "context_latency_alone":
        alone[fields(line)["engine"]] = fields(line)
    elif kind == "context_latency_cold":
        cold[fields(line)["engine"]] = fields(line)
    elif kind == "context_store":
        store = fields(line)
    elif kind == "context_hits":
        hits = fields(line)

lines = [
    "Context: fourfold ContextStore::ask against tantivy on the same synthetic sections and queries,",
    "and tokens per lookup against grep-and-read on the pydantic documentation corpus.",
    "",
] + machine_lines(command, n_cpus, cpu_model, rustc, load_before, load_after) + [
    "",
    f"store: {int(store.get('sections', 0)):,} sections in {int(store.get('documents', 0)):,} documents, "
    f"{int(store.get('bytes', 0)) / 1e6:.1f} MB, {store.get('mean_body_tokens', '?')} tokens per section body "
    f"(o200k_base, mean of the first 1,000), {store.get('queries', '?')} queries",
    f"fourfold served {hits.get('fourfold_mean_hits', '?')} sections per ask on average (budget 800); "
    f"tantivy's TopDocs limit: {hits.get('tantivy_limit', '?')}",
    "",
    "Latency of single calls (timing loop, every query in turn) and criterion's median:",
    "",
]


def latency_rows(by_engine, extra=lambda engine: ()):
    """A table's rows for one timing loop's lines, by engine: calls, p50, p99, mean, the columns
    `extra` gives the engine, and the p50 / p99 ratios against fourfold's."""
    reference = by_engine.get("fourfold", {})
    rows = []
    for engine in engine_order:
        figures = by_engine.get(engine)
        if figures is None:
            continue
        p50, p99, mean = (float(figures[name]) for name in ("p50_ns", "p99_ns", "mean_ns"))
        ratio = "-"
        if reference and engine != "fourfold":
            ratio = f"{p50 / float(reference['p50_ns']):.1f}x / {p99 / float(reference['p99_ns']):.1f}x"
        rows.append((engine, f"{int(figures['calls']):,}", human(p50), human(p99), human(mean),
                     *extra(engine), ratio))
    return rows


body = latency_rows(latency, lambda engine: (human(medians.get(engine)),))
lines += table(("engine", "calls", "p50", "p99", "mean", "criterion median", "p50 / p99 vs fourfold"), body, 1)
if alone:
    lines += ["", "Latency of single calls, each engine alone (all its rounds back to back):", ""]
    lines += table(("engine", "calls", "p50", "p99", "mean", "p50 / p99 vs fourfold"), latency_rows(alone), 1)
if cold:
    evicted = cold.get("fourfold", {}).get("evict_mib", "?")
    lines += ["", f"Latency of single calls with cold caches ({evicted} MiB of other data written before each call):", ""]
    lines += table(("engine", "calls", "p50", "p99", "mean", "p50 / p99 vs fourfold"), latency_rows(cold), 1)
lines += ["", "Ingest (built once; MB of the documents' Markdown text):", ""]
body = []
for engine in ["fourfold", "tantivy"]:
    engine_ingest = ingest.get(engine)
    if engine_ingest is None:
        continue
    body.append((engine, f"{float(engine_ingest['seconds']):.2f} s", f"{float(engine_ingest['mb_per_s']):.2f}",
                 f"{float(engine_ingest['sections_per_s']):,.0f}"))
lines += table(("engine", "time", "MB/s", "sections/s"), body, 1)

lines += ["", "Tokens per lookup on the pydantic corpus:", ""] + [
    f"command: {lookup_command}" for lookup_command in lookup_commands.splitlines()] + [""]
body = []
for report_path in sorted(run_dir.glob("context-lookup-*.json"),
                          key=lambda path: int(path.stem.rsplit("-", 1)[1])):
    report = json.loads(report_path.read_text())
    totals = report["totals"]
    n = totals["questions"]
    body.append((
        f"{report['budget_tokens']:,}",
        f"{n}",
        f"{totals['baseline_tokens'] / n:,.0f}",
        f"{totals['fourfold_tokens'] / n:,.0f}",
        f"{totals['reduction_percent']:.1f}%",
        f"{totals['canonical_first']}/{n}",
        f"{totals['canonical_served']}/{n}",
        f"{totals['stale_served']}",
        f"{totals['baseline_answered']}/{n}",
        f"{totals['baseline_misled']}/{n}",
    ))
    ingest_report = report["ingest"]
lines += table(("budget", "questions", "baseline tokens/q", "fourfold tokens/q", "reduction",
                "canonical first", "canonical served", "stale served", "baseline answered", "baseline misled"), body, 0)
if body:
    lines += ["", f"ingest of the drifted repository: {ingest_report['bytes'] / 1e6:.2f} MB, "
              f"{ingest_report['puts']} puts and {ingest_report['deletes']} deletes, "
              f"{ingest_report['sections']:,} sections in {ingest_report['seconds']:.3f} s = "
              f"{ingest_report['bytes'] / 1e6 / ingest_report['seconds']:.2f} MB/s"]
(run_dir / "context-summary").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYTHON
echo "wrote $run_dir/context-{ask.log,raw.csv,summary,lookup-*.txt,lookup-*.json}" >&2
