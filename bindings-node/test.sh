#!/usr/bin/env bash
# Builds the Node addon and runs the Node tests, from a fresh clone: installs the pinned npm
# dependencies from the lockfile, builds the addon in the debug profile with the napi CLI (into
# CARGO_TARGET_DIR when it is set), checks that the committed index.js and index.d.ts match what
# the build generates, runs `node --test` and type-checks a typed example with `tsc --noEmit`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

npm ci --no-audit --no-fund

build_args=(--platform --js index.js --dts index.d.ts)
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  build_args+=(--target-dir "$CARGO_TARGET_DIR")
fi
npx --no-install napi build "${build_args[@]}"

# The loader and the types are generated, and committed so that the package ships them.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --exit-code -- index.js index.d.ts; then
    echo "index.js or index.d.ts differ from what napi build generates: commit the regenerated files" >&2
    exit 1
  fi
fi

node --test test/*.test.js test/*.test.mjs

npx --no-install tsc --noEmit -p test/typed
