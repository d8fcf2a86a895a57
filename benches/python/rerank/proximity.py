"""A lexical reranker for `context_lookup --rerank-command`: BM25 plus term proximity.

An experiment, not part of the product: it asks whether sections where the question's words
stand close together answer it more often than BM25 alone says. Each candidate's score is its
BM25 score (as the store gives it, divided by the best candidate's) plus
`weight * (pairs found) / (pairs)`, where the pairs are the question's consecutive content words
(stop words dropped, a crude suffix strip: -ing, -ed, -es, -s) and a pair is found when the two
words occur within `window` words of each other in the section's heading path and text.

    python3 proximity.py [--weight 0.6] [--window 8] [--all-pairs]

JSON Lines on stdin and stdout, as `core/src/context/rerank_command.rs` describes. Standard library
only.
"""

import argparse
import json
import re
import sys

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can cannot could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in into
    is it its itself me more most my myself no nor not of off on once only or other ought our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why with would you your yours yourself yourselves
    get got use using want make way just also""".split()
)


def stem(word):
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text):
    return [stem(word) for word in re.findall(r"[a-z0-9_]+", text.lower())]


def query_pairs(query, all_pairs):
    content = list(dict.fromkeys(word for word in words(query) if word not in STOP_WORDS))
    if all_pairs:
        return set(content), [(a, b) for i, a in enumerate(content) for b in content[i + 1 :]]
    return set(content), list(zip(content, content[1:]))


def pairs_found(candidate, wanted, pairs, window):
    positions = {}
    text = " ".join(candidate["heading_path"]) + "\n" + candidate["text"]
    for position, word in enumerate(words(text)):
        if word in wanted:
            positions.setdefault(word, []).append(position)
    found = 0
    for a, b in pairs:
        if a in positions and b in positions:
            distance = min(abs(x - y) for x in positions[a] for y in positions[b])
            found += distance <= window
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weight", type=float, default=0.6)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--all-pairs", action="store_true")
    args = parser.parse_args()
    for line in sys.stdin:
        request = json.loads(line)
        wanted, pairs = query_pairs(request["query"], args.all_pairs)
        candidates = request["candidates"]
        best = max((candidate["score"] for candidate in candidates), default=1.0) or 1.0
        scores = [
            candidate["score"] / best
            + args.weight * pairs_found(candidate, wanted, pairs, args.window) / max(1, len(pairs))
            for candidate in candidates
        ]
        print(json.dumps({"scores": scores}), flush=True)


if __name__ == "__main__":
    main()
