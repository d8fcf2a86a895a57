"""A reranking program for a store configured by `fourfold.toml`: `python -m fourfold.rerank`.

`[context.rerank]` in `fourfold.toml` names a program that orders each ask's best candidates
(`fourfold mcp serve` and every `Fourfold` built from the file use it). This module is one,
speaking the store's protocol (JSON Lines: a request `{"query": ..., "candidates": [{"key",
"heading_path", "text", "score"}]}` on stdin, a reply `{"scores": [...]}` or `{"error": ...}` on
stdout), around a scorer of your choice::

    [context.rerank]
    command = ["python3", "-m", "fourfold.rerank", "--cross-encoder", "cross-encoder/ms-marco-MiniLM-L6-v2"]
    # or any function of the query and the candidates that returns one number per candidate:
    command = ["python3", "-m", "fourfold.rerank", "--scorer", "my_rerank:score"]

`--cross-encoder NAME` needs `sentence-transformers` (and the model, from the Hugging Face hub or
a local folder); a candidate is given to it as its heading path, a line break, then its text.
`--scorer MODULE:FUNCTION` imports `FUNCTION` from `MODULE` (found on `sys.path`, which holds the
current directory) and calls it as `FUNCTION(query, candidates)`, each candidate a dict as above.

A request the scorer fails on is answered with an error, which the store reports in that ask's
`rerank_error` while serving the search's order; nothing but replies is written to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from typing import Any, Callable, Iterable, Sequence, TextIO

Candidate = dict[str, Any]
Scorer = Callable[[str, list[Candidate]], Iterable[float]]


def candidate_text(candidate: Candidate) -> str:
    """What a model reads of a candidate: its heading path, a line break, its text."""
    headings = " > ".join(str(heading) for heading in candidate["heading_path"])
    return f"{headings}\n{candidate['text']}"


def cross_encoder_scorer(name: str) -> Scorer:
    """Scores with a sentence-transformers `CrossEncoder` named `name`."""
    try:
        from sentence_transformers import CrossEncoder  # type: ignore[import-not-found,unused-ignore]
    except ImportError as error:
        raise SystemExit(f"fourfold.rerank: --cross-encoder needs sentence-transformers ({error})") from error
    model = CrossEncoder(name)

    def score(query: str, candidates: list[Candidate]) -> Iterable[float]:
        pairs = [(query, candidate_text(candidate)) for candidate in candidates]
        return [float(value) for value in model.predict(pairs)]

    return score


def imported_scorer(spec: str) -> Scorer:
    """The function `spec` (`module:function`) names."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise SystemExit(f"fourfold.rerank: --scorer wants MODULE:FUNCTION, not {spec!r}")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SystemExit(f"fourfold.rerank: {spec!r} is not a function")
    scorer: Scorer = function
    return scorer


def reply(scorer: Scorer, line: str) -> dict[str, Any]:
    """The reply to one request line."""
    try:
        request = json.loads(line)
        candidates = request["candidates"]
        scores = [float(value) for value in scorer(request["query"], candidates)]
    except Exception as error:  # the store serves the search's order and reports this
        return {"error": f"{type(error).__name__}: {error}"}
    if len(scores) != len(candidates):
        return {"error": f"the scorer gave {len(scores)} scores for {len(candidates)} candidates"}
    if not all(math.isfinite(value) for value in scores):
        return {"error": "the scorer gave a score that is not a finite number"}
    return {"scores": scores}


def serve(scorer: Scorer, requests: TextIO, replies: TextIO) -> int:
    """Answers every request line of `requests` on `replies` until `requests` ends; returns how
    many it answered."""
    n_answered = 0
    for line in requests:
        if not line.strip():
            continue
        replies.write(json.dumps(reply(scorer, line)) + "\n")
        replies.flush()
        n_answered += 1
    return n_answered


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fourfold.rerank",
        description="Orders a fourfold ContextStore's candidates over JSON Lines on stdin and stdout.",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--cross-encoder", metavar="NAME", help="a sentence-transformers CrossEncoder")
    model.add_argument("--scorer", metavar="MODULE:FUNCTION", help="a function of the query and the candidates")
    args = parser.parse_args(argv)
    scorer = cross_encoder_scorer(args.cross_encoder) if args.cross_encoder else imported_scorer(args.scorer)
    serve(scorer, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
