#!/usr/bin/env python3
"""Token counting throughput, one thread: fourfold against OpenAI's `tiktoken`, same texts, one run.

The texts are the megabyte inputs of `tests/fixtures/tokens/cases.json` (expanded by the same code
that made their expected counts) and a prose-and-code corpus made of this repository's own `.rs`
and `.md` files. Each text is written to a temporary file; `tiktoken` (`encode_ordinary`, one
thread) is timed here, and the `token_count` binary of `fourfold-benches` times fourfold's counter
and tiktoken-rs on the same files. Every counter's count is checked to agree before a figure is
printed. Times are the fastest of the repetitions that fit in `--min-seconds` (at least 3).

Usage: benches/tokens_vs_tiktoken.py --token-count PATH [--min-seconds S] [--csv OUT] [--summary OUT]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import tiktoken_cache  # noqa: E402

ENCODINGS = ["o200k_base", "cl100k_base"]


def load_regen():
    """The regeneration script as a module, for its `expand`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("regen", os.path.join(ROOT, "scripts", "regen-token-counts.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texts():
    regen = load_regen()
    cases = json.load(open(os.path.join(ROOT, "tests", "fixtures", "tokens", "cases.json"), encoding="utf-8"))
    out = {}
    paths = sorted(glob.glob(os.path.join(ROOT, "core", "src", "**", "*.rs"), recursive=True))
    paths += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    corpus = "\n".join(open(path, encoding="utf-8").read() for path in paths)
    out["repo_code_and_docs"] = corpus
    for case in cases["cases"]:
        if "generate" in case:
            out[case["name"]] = regen.expand(case["generate"])
    return out


def time_tiktoken(encoding, text, min_seconds):
    started = time.perf_counter()
    best = float("inf")
    n_runs = 0
    tokens = None
    while n_runs < 3 or time.perf_counter() - started < min_seconds:
        run_started = time.perf_counter()
        try:
            tokens = len(encoding.encode_ordinary(text))
        except BaseException as error:  # pyo3's PanicException derives from BaseException.
            if isinstance(error, KeyboardInterrupt):
                raise
            return None, None
        best = min(best, time.perf_counter() - run_started)
        n_runs += 1
    return tokens, best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--token-count", required=True, help="the token_count binary (release build)")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--csv")
    parser.add_argument("--summary")
    args = parser.parse_args()

    tiktoken_cache.prepare(os.path.join(tempfile.gettempdir(), "fourfold-tiktoken-cache"))
    import tiktoken

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, text in texts().items():
            path = os.path.join(tmp, name + ".txt")
            with open(path, "w", encoding="utf-8", newline="") as file:
                file.write(text)
            files[name] = (path, text)
        for encoding_name in ENCODINGS:
            encoding = tiktoken.get_encoding(encoding_name)
            encoding.encode_ordinary("warm up")
            measured = {}
            for name, (path, text) in files.items():
                measured[(name, "tiktoken")] = time_tiktoken(encoding, text, args.min_seconds)
            output = subprocess.run(
                [args.token_count, encoding_name, str(args.min_seconds)] + [path for path, _ in files.values()],
                check=True, capture_output=True, text=True,
            ).stdout
            for line in output.splitlines():
                record = json.loads(line)
                name = os.path.basename(record["file"])[: -len(".txt")]
                measured[(name, record["counter"])] = (record.get("tokens"), record.get("seconds"))
            for name, (path, text) in files.items():
                n_bytes = len(text.encode())
                counts = {counter: measured.get((name, counter), (None, None))[0]
                          for counter in ["tiktoken", "fourfold", "tiktoken-rs"]}
                known = {count for count in counts.values() if count is not None}
                if len(known) > 1:
                    sys.exit(f"counts differ on {name} {encoding_name}: {counts}")
                row = {"encoding": encoding_name, "text": name, "bytes": n_bytes, "tokens": known.pop()}
                for counter in ["tiktoken", "fourfold", "tiktoken-rs"]:
                    seconds = measured.get((name, counter), (None, None))[1]
                    row[counter + "_mb_s"] = None if seconds is None else n_bytes / seconds / 1e6
                rows.append(row)

    def fmt(value):
        return "panics" if value is None else f"{value:,.1f}"

    def ratio(numerator, denominator):
        return "-" if not numerator or not denominator else f"{numerator / denominator:.1f}x"

    lines = [
        "Token counting throughput, one thread, MB/s (10^6 bytes per second); fastest of >=3 runs.",
        "tiktoken " + tiktoken.__version__ + " (Python, encode_ordinary); fourfold (merge loop, bpe-openai for long pieces);"
        " tiktoken-rs (encode_ordinary). Same texts, same run; counts checked equal.",
        "",
        f"{'encoding':<12} {'text':<30} {'MB':>5} {'tiktoken':>9} {'fourfold':>9} {'tiktoken-rs':>11} {'fourfold/tiktoken':>17}",
    ]
    for row in rows:
        lines.append(
            f"{row['encoding']:<12} {row['text']:<30} {row['bytes'] / 1e6:>5.2f} {fmt(row['tiktoken_mb_s']):>9}"
            f" {fmt(row['fourfold_mb_s']):>9} {fmt(row['tiktoken-rs_mb_s']):>11}"
            f" {ratio(row['fourfold_mb_s'], row['tiktoken_mb_s']):>17}"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.summary:
        open(args.summary, "w").write(text)
    if args.csv:
        with open(args.csv, "w") as out:
            out.write("encoding,text,bytes,tokens,tiktoken_mb_s,fourfold_mb_s,tiktoken_rs_mb_s\n")
            for row in rows:
                values = [row["encoding"], row["text"], row["bytes"], row["tokens"],
                          row["tiktoken_mb_s"], row["fourfold_mb_s"], row["tiktoken-rs_mb_s"]]
                out.write(",".join("" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
                                   for value in values) + "\n")


if __name__ == "__main__":
    main()
