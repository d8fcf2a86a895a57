#!/usr/bin/env python3
"""What fourfold costs a Python agent per call, side by side with the tools it would use instead.

1. Policy checks: `Policy.check` with a prepared `Request`, and `AgentSession.guard` with keyword
   arguments (the call an agent makes; it also emits a gate event to the session's plugins), against
   `cedarpy.is_authorized` (Cedar's Python binding) with a pre-parsed `PolicySet` and `Entities`
   (its fastest form), on equivalent 10-rule policies and the same four requests.
2. Token counting: `fourfold.count_tokens` against `tiktoken`'s `encode_ordinary`, one thread, same
   texts (this repository's Markdown and Rust sources, and the megabyte cases of the fixtures).

Every figure is the fastest of `--repeats` timed batches (the least disturbed by a noisy machine),
per call or per megabyte; decisions and counts are checked to agree before anything is printed.

Usage: benches/python/bench_python.py [--repeats N] [--csv OUT] [--summary OUT]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from importlib import metadata
from typing import Any, Callable

import cedarpy
import tiktoken

import fourfold

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import tiktoken_cache  # noqa: E402

# Ten rules, as fourfold TOML and as Cedar: the same effect for the requests below.
AGENTS = ["coder", "reviewer", "docs", "ops", "triage"]
FOURFOLD_POLICY = "\n".join(
    f"""
[[rule]]
id = "read-{agent}"
effect = "allow"
agents = ["{agent}"]
read = ["src/**"]

[[rule]]
id = "write-{agent}"
effect = "allow"
agents = ["{agent}"]
write = ["{agent}/**"]
"""
    for agent in AGENTS
)
CEDAR_POLICY = "\n".join(
    f"""
permit(principal == Agent::"{agent}", action == Action::"read", resource)
  when {{ resource.path like "src/*" }};
permit(principal == Agent::"{agent}", action == Action::"write", resource)
  when {{ resource.path like "{agent}/*" }};
"""
    for agent in AGENTS
)
# (agent, action, path, allowed)
CASES = [
    ("coder", "read", "src/auth/login.rs", True),
    ("coder", "write", "coder/notes.md", True),
    ("docs", "write", "src/lib.rs", False),
    ("triage", "read", "secrets/prod.env", False),
]


def best_per_call(body: Callable[[], Any], n_calls: int, repeats: int) -> float:
    """The fastest of `repeats` batches of `n_calls`, in seconds per call."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(n_calls):
            body()
        best = min(best, (time.perf_counter() - started) / n_calls)
    return best


def policy_rows(repeats: int) -> list[dict[str, Any]]:
    policy = fourfold.Policy(FOURFOLD_POLICY, root="/repo")
    ff = fourfold.Fourfold(FOURFOLD_POLICY, root="/repo", context=False, cost=False)
    entities = cedarpy.Entities.from_json_str(
        json.dumps(
            [
                {"uid": {"type": "File", "id": path}, "attrs": {"path": path}, "parents": []}
                for _, _, path, _ in CASES
            ]
            + [{"uid": {"type": "Agent", "id": agent}, "attrs": {}, "parents": []} for agent in AGENTS]
        )
    )
    policies = cedarpy.PolicySet.from_str(CEDAR_POLICY)
    rows = []
    for agent, action, path, allowed in CASES:
        request = getattr(fourfold.Request, action)(agent, path)
        session = ff.session(agent)
        cedar_request = {
            "principal": f'Agent::"{agent}"',
            "action": f'Action::"{action}"',
            "resource": f'File::"{path}"',
            "context": {},
        }
        assert policy.check(request).allowed == allowed
        assert (cedarpy.is_authorized(cedar_request, policies, entities).decision == cedarpy.Decision.Allow) == allowed

        def guard() -> None:
            try:
                session.guard(**{action: path})
            except fourfold.PolicyDenied:
                pass

        timings = {
            "fourfold Policy.check": best_per_call(lambda: policy.check(request), 20_000, repeats),
            "fourfold AgentSession.guard": best_per_call(guard, 20_000, repeats),
            "cedarpy is_authorized": best_per_call(
                lambda: cedarpy.is_authorized(cedar_request, policies, entities), 5_000, repeats
            ),
        }
        for tool, seconds in timings.items():
            rows.append(
                {
                    "bench": "policy",
                    "case": f"{agent} {action} {path} ({'allow' if allowed else 'deny'})",
                    "tool": tool,
                    "us_per_call": seconds * 1e6,
                }
            )
    return rows


def count_rows(repeats: int) -> list[dict[str, Any]]:
    tiktoken_cache.prepare(os.path.join(ROOT, "target", "tiktoken-cache"))
    sources = sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    sources += sorted(glob.glob(os.path.join(ROOT, "core", "src", "**", "*.rs"), recursive=True))
    corpus = "\n".join(open(path, encoding="utf-8").read() for path in sources)
    fixtures = json.load(open(os.path.join(ROOT, "tests", "fixtures", "tokens", "cases.json")))
    texts = {"repo docs and sources": corpus}
    for case in fixtures["cases"]:
        if case["name"] in ("repeat_a_1mb", "random_mixed_1mb"):
            spec = case["generate"]
            texts[case["name"]] = spec["repeat"] * spec["times"] if "repeat" in spec else expand_random(spec["random"])
    rows = []
    for name, text in texts.items():
        megabytes = len(text.encode()) / 1e6
        for encoding in ("o200k_base", "cl100k_base"):
            reference = tiktoken.get_encoding(encoding)
            expected = len(reference.encode_ordinary(text))
            assert fourfold.count_tokens(encoding, text) == expected, (name, encoding)
            timings = {
                "fourfold count_tokens": best_per_call(lambda: fourfold.count_tokens(encoding, text), 1, repeats),
                "tiktoken encode_ordinary": best_per_call(lambda: reference.encode_ordinary(text), 1, repeats),
            }
            for tool, seconds in timings.items():
                rows.append(
                    {
                        "bench": "count",
                        "case": f"{name} ({megabytes:.2f} MB, {encoding}, {expected} tokens)",
                        "tool": tool,
                        "mb_per_s": megabytes / seconds,
                    }
                )
    return rows


def expand_random(spec: dict[str, Any]) -> str:
    """The text of a fixture's random case (xorshift64 over its pieces, as the fixture's generator)."""
    state = spec["seed"] & 0xFFFFFFFFFFFFFFFF or 1
    out: list[str] = []
    n_bytes = 0
    while n_bytes < spec["min_bytes"]:
        state ^= (state << 13) & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 7
        state ^= (state << 17) & 0xFFFFFFFFFFFFFFFF
        piece = spec["pieces"][state % len(spec["pieces"])]
        out.append(piece)
        n_bytes += len(piece.encode())
    return "".join(out)


def summarize(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus; "
        f"fourfold {fourfold.__version__}, cedarpy {metadata.version('cedarpy')}, "
        f"tiktoken {metadata.version('tiktoken')}",
        "",
        "policy (us per call, fastest batch; ratio = cedarpy / fourfold):",
    ]
    cases = sorted({row["case"] for row in rows if row["bench"] == "policy"}, key=lambda case: case)
    for case in cases:
        by_tool = {row["tool"]: row["us_per_call"] for row in rows if row["case"] == case}
        check = by_tool["fourfold Policy.check"]
        guard = by_tool["fourfold AgentSession.guard"]
        cedar = by_tool["cedarpy is_authorized"]
        lines.append(
            f"  {case:55} check {check:6.2f}  guard {guard:6.2f}  cedarpy {cedar:7.2f}  "
            f"cedarpy/check {cedar / check:5.1f}x  cedarpy/guard {cedar / guard:5.1f}x"
        )
    lines += ["", "token counting (MB/s, one thread; ratio = fourfold / tiktoken):"]
    for case in sorted({row["case"] for row in rows if row["bench"] == "count"}):
        by_tool = {row["tool"]: row["mb_per_s"] for row in rows if row["case"] == case}
        ours, theirs = by_tool["fourfold count_tokens"], by_tool["tiktoken encode_ordinary"]
        lines.append(f"  {case:70} fourfold {ours:7.1f}  tiktoken {theirs:6.1f}  {ours / theirs:5.2f}x")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--csv")
    parser.add_argument("--summary")
    args = parser.parse_args()
    rows = policy_rows(args.repeats) + count_rows(args.repeats)
    summary = summarize(rows)
    print(summary, end="")
    if args.csv:
        with open(args.csv, "w") as out:
            out.write("bench,case,tool,value,unit\n")
            for row in rows:
                value, unit = (row["us_per_call"], "us_per_call") if "us_per_call" in row else (row["mb_per_s"], "mb_per_s")
                out.write(f"{row['bench']},\"{row['case']}\",{row['tool']},{value:.4f},{unit}\n")
    if args.summary:
        with open(args.summary, "w") as out:
            out.write(summary)


if __name__ == "__main__":
    main()
