"""What the benches/run-*-bench.sh scripts share: reading this run's criterion results and writing
them out as raw CSV and as aligned text tables with the machine named."""

import csv
import json
import os
import sys
from pathlib import Path


def fresh_results(criterion_dir, marker, keep_group):
    """(group, engine, case, median_ns, elements_per_s) for every criterion result newer than the
    file `marker` whose group `keep_group` accepts; exits when there is none."""
    started = os.path.getmtime(marker)
    rows = []
    for estimates in Path(criterion_dir).glob("**/new/estimates.json"):
        if os.path.getmtime(estimates) < started:
            continue
        benchmark = json.loads((estimates.parent / "benchmark.json").read_text())
        group = benchmark["group_id"]
        if not keep_group(group):
            continue
        median_ns = json.loads(estimates.read_text())["median"]["point_estimate"]
        n_elements = (benchmark.get("throughput") or {}).get("Elements")
        elements_per_s = n_elements / median_ns * 1e9 if n_elements else None
        rows.append((group, benchmark["function_id"], benchmark["value_str"], median_ns, elements_per_s))
    if not rows:
        sys.exit("no fresh results under " + criterion_dir)
    return rows


def write_raw_csv(path, rows, with_elements):
    """Writes the rows as CSV, with an elements_per_s column when `with_elements`."""
    with open(path, "w", newline="") as raw:
        writer = csv.writer(raw)
        writer.writerow(["group", "engine", "case", "median_ns"] + (["elements_per_s"] if with_elements else []))
        for group, engine, case, median_ns, elements_per_s in rows:
            row = [group, engine, case, f"{median_ns:.1f}"]
            if with_elements:
                row.append("" if elements_per_s is None else f"{elements_per_s:.0f}")
            writer.writerow(row)


def human(ns):
    """A duration in nanoseconds as ns, µs or ms; `-` for none."""
    if ns is None:
        return "-"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns / 1_000_000:.2f} ms"


def table(header, body, n_left):
    """Aligned lines: the first `n_left` columns to the left, the rest to the right, and a rule
    under the header."""
    out = [header] + body
    widths = [max(len(row[col]) for row in out) for col in range(len(header))]
    lines = []
    for row_idx, row in enumerate(out):
        cells = [cell.ljust(width) if col < n_left else cell.rjust(width)
                 for col, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if row_idx == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def machine_lines(command, n_cpus, cpu_model, rustc, load_before, load_after):
    """The lines that name the command and the machine a run was made on."""
    return [
        f"command: {command}",
        f"cpus:    {n_cpus}",
        f"cpu:     {cpu_model}",
        f"rustc:   {rustc}",
        f"load:    {load_before} before, {load_after} after (1, 5, 15 min averages)",
    ]
