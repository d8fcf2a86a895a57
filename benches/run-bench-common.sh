# Shared by the benches/run-*-bench.sh scripts (sourced, not run): runs one criterion bench and
# sets what its summary needs.
#
# run_criterion_bench NAME [criterion arguments]: runs `cargo bench --bench NAME`, teeing its output
# to "$log", and sets repo_root, target_dir, run_dir (docs/bench/<date>-<host>, created), marker (a
# file older than every result of this run), log, bench_command, load_before, load_after and
# cpu_model.

run_criterion_bench() {
    local bench_name="$1"
    shift
    repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cd "$repo_root"
    target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
    run_dir="docs/bench/$(date +%F)-$(hostname -s)"
    mkdir -p "$run_dir"
    # Criterion keeps results of earlier runs beside the new ones; only files newer than this
    # marker count.
    marker="$(mktemp)"
    log="$(mktemp)"
    trap 'rm -f "$marker" "$log"' EXIT
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
    local command=(cargo bench -p fourfold-benches --bench "$bench_name" -- "$@")
    bench_command="${command[*]}"
    echo "running: $bench_command" >&2
    "${command[@]}" 2>&1 | tee "$log" >&2
    load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
    cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
}
