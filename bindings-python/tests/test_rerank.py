"""`python -m fourfold.rerank`: the reranking program a `fourfold.toml` can name, on its own (the
protocol, a scorer's failures) and started by a store built from a config."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import fourfold
from fourfold import rerank

POLICY = """
[[rule]]
id = "docs"
effect = "allow"
agents = ["coder"]
read = ["docs/**"]
"""


def by_length(query: str, candidates: list[dict[str, Any]]) -> list[float]:
    return [float(len(candidate["text"])) for candidate in candidates]


def candidate(key: str, text: str) -> dict[str, Any]:
    return {"key": key, "heading_path": [key], "text": text, "score": 1.0}


def test_each_request_line_gets_one_reply_line() -> None:
    requests = io.StringIO(
        json.dumps({"query": "q", "candidates": [candidate("a.md", "ab"), candidate("b.md", "abcd")]})
        + "\n\n"
        + "not json\n"
        + json.dumps({"query": "q", "candidates": []})
        + "\n"
    )
    replies = io.StringIO()
    assert rerank.serve(by_length, requests, replies) == 3
    first, bad, empty = (json.loads(line) for line in replies.getvalue().splitlines())
    assert first == {"scores": [2.0, 4.0]}
    assert "JSONDecodeError" in bad["error"]
    assert empty == {"scores": []}


def test_a_scorer_that_fails_or_miscounts_is_answered_with_an_error() -> None:
    def raises(query: str, candidates: list[dict[str, Any]]) -> list[float]:
        raise RuntimeError("the model is not loaded")

    def one_short(query: str, candidates: list[dict[str, Any]]) -> list[float]:
        return [1.0] * (len(candidates) - 1)

    def not_a_number(query: str, candidates: list[dict[str, Any]]) -> list[float]:
        return [float("nan")] * len(candidates)

    line = json.dumps({"query": "q", "candidates": [candidate("a.md", "a"), candidate("b.md", "b")]})
    assert rerank.reply(raises, line) == {"error": "RuntimeError: the model is not loaded"}
    assert rerank.reply(one_short, line) == {"error": "the scorer gave 1 scores for 2 candidates"}
    assert rerank.reply(not_a_number, line) == {"error": "the scorer gave a score that is not a finite number"}


def test_bad_arguments_are_refused_with_a_message(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fourfold.rerank", *args], cwd=tmp_path, capture_output=True, text=True, input=""
        )

    assert "MODULE:FUNCTION" in run("--scorer", "no_colon").stderr
    (tmp_path / "scorers.py").write_text("NOT_A_FUNCTION = 3\n")
    assert "is not a function" in run("--scorer", "scorers:NOT_A_FUNCTION").stderr
    assert run().returncode != 0
    try:
        import sentence_transformers  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        missing = run("--cross-encoder", "cross-encoder/ms-marco-MiniLM-L6-v2")
        assert missing.returncode != 0 and "needs sentence-transformers" in missing.stderr


def test_a_config_starts_it_and_its_scorer_orders_what_asks_serve(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "my_rerank.py").write_text(
        "def score(query, candidates):\n    return [len(candidate['text']) for candidate in candidates]\n"
    )
    command = json.dumps([sys.executable, "-m", "fourfold.rerank", "--scorer", "my_rerank:score"])
    (tmp_path / "fourfold.toml").write_text(
        f'[policy]\nfile = "policy.toml"\n[context.rerank]\ncommand = {command}\ndepth = 5\ntimeout_seconds = 60\ndir = "."\n'
    )
    ff = fourfold.Fourfold.from_config(str(tmp_path / "fourfold.toml"))
    store = ff.context
    assert store is not None
    store.put("docs/short.md", "# Short\n\nThe login token.\n")
    store.put("docs/long.md", "# Long\n\nA login page, which says much more about other things than the short one.\n")
    answer = ff.session("coder").ask("login token", 10_000)
    assert answer.reranked, answer.rerank_error
    assert [hit.key for hit in answer.hits] == ["docs/long.md", "docs/short.md"]
