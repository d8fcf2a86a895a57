#!/usr/bin/env python3
"""Refreshes fourfold's built-in price table from LiteLLM's `model_prices_and_context_window.json`.

The file ships inside the `litellm` wheel on PyPI as `model_prices_and_context_window_backup.json`.
This script downloads the wheel (`pip download litellm --no-deps`), extracts the file, keeps the
models priced per token (modes chat, completion and responses) with the fields fourfold reads, and
writes `core/src/cost/prices/model_prices.json` (still in LiteLLM's format) and the version and
date in `core/src/cost/prices/README.md`.

Usage: python3 scripts/update-prices.py [--wheel PATH]
"""

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "core", "src", "cost", "prices")
MODES = {"chat", "completion", "responses"}
FIELDS = [
    "litellm_provider",
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheel", help="a litellm wheel already downloaded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "litellm", "--no-deps", "-d", tmp], check=True)
            wheel = glob.glob(os.path.join(tmp, "litellm-*.whl"))[0]
        version = os.path.basename(wheel).split("-")[1]
        with zipfile.ZipFile(wheel) as archive:
            full = json.loads(archive.read("litellm/model_prices_and_context_window_backup.json"))
    kept = {}
    for name, entry in sorted(full.items()):
        if name == "sample_spec" or not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        if "input_cost_per_token" not in entry:
            continue
        kept[name] = {field: entry[field] for field in FIELDS if field in entry}
    with open(os.path.join(OUT_DIR, "model_prices.json"), "w") as out:
        json.dump(kept, out, indent=1, sort_keys=True)
        out.write("\n")
    today = datetime.date.today().isoformat()
    readme = f"""# Built-in price table

`model_prices.json` is LiteLLM's `model_prices_and_context_window.json`, trimmed, and is fourfold's
built-in price table (`PriceTable::builtin()`).

- Source: `litellm/model_prices_and_context_window_backup.json` in the `litellm` {version} wheel from PyPI.
- Taken on {today} by `scripts/update-prices.py`.
- Kept: the {len(kept)} of {len(full) - 1} entries whose mode is chat, completion or responses and that have an
  `input_cost_per_token`, with only the fields fourfold reads ({", ".join(f"`{field}`" for field in FIELDS)}).
  The file stays in LiteLLM's format, so a full LiteLLM file loads the same way.
- Prices are in US dollars per token.

To refresh it, run `python3 scripts/update-prices.py` and review the diff.
"""
    with open(os.path.join(OUT_DIR, "README.md"), "w") as out:
        out.write(readme)
    print(f"kept {len(kept)} models from litellm {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
