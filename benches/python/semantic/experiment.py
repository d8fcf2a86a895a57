"""Would a small sentence-embedding model (all-MiniLM-L6-v2) rank the pydantic corpus better than
the store's BM25? Dense only, BM25 only, fusions and dense reranks, on the dev and held-out
questions, scored by the corpus README's rule (the first section served answers canonically).

Inputs: the dump of `cargo run --release -p fourfold-benches --example context_dump` (DUMP dir
with sections.jsonl and ranks.jsonl) and the two questions files. Section embeddings are cached in
DUMP as .npy files; delete them to re-embed (and re-time).

    OPENBLAS_NUM_THREADS=1 python experiment.py --dump DUMP \
        --questions dev=/work/shared/corpus/pydantic/questions-dev.jsonl \
        --questions holdout=benches/questions/pydantic-holdout.jsonl
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from minilm import DEFAULT_DIR, MiniLM, sanity_check

RRF_K = 60
# Section texts embedded: "heading path\ntext" cut to 256 word pieces (the model's
# max_seq_length, [CLS] and [SEP] included), the same cut to 128, and the heading path alone.
VARIANTS = ("full256", "head128", "heading")
ALPHAS = (0.3, 0.5, 0.7)


def normalize_heading(heading):
    """Mirrors benches/src/context_corpus.rs normalize_heading."""
    text = heading.strip().lstrip("#").strip()
    if text.endswith("}"):
        open_at = text.rfind("{")
        if open_at >= 0:
            attributes = text[open_at + 1 : -1]
            if attributes.lstrip().startswith(("#", ".", ":")):
                text = text[:open_at].rstrip()
    return " ".join(text.split())


def is_answered_by(question, key, heading_path):
    """Mirrors Question::is_answered_by: key matches and some heading of the path is the answer
    heading (so the heading itself or any of its sub-headings)."""
    def under(answer_key, answer_heading):
        wanted = normalize_heading(answer_heading)
        return key == answer_key and any(normalize_heading(h) == wanted for h in heading_path)

    return under(question["answer_key"], question["answer_heading"]) or any(
        under(a["key"], a["heading"]) for a in question.get("also", [])
    )


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def section_texts(sections, variant):
    if variant == "full256":
        return [s["heading"] + "\n" + s["text"] for s in sections], 256
    if variant == "head128":
        return [s["heading"] + "\n" + s["text"] for s in sections], 128
    if variant == "heading":
        return [s["heading"] for s in sections], 64
    raise ValueError(variant)


def embed_sections(model, sections, variant, dump_dir):
    path = Path(dump_dir) / f"emb-{variant}.npy"
    meta_path = Path(dump_dir) / f"emb-{variant}.json"
    ids = [s["id"] for s in sections]
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["ids"] == ids:
            return np.load(path), meta
    texts, max_tokens = section_texts(sections, variant)
    pieces = [min(len(model.encode_ids(t, max_tokens)), max_tokens) for t in texts]
    started = time.perf_counter()
    emb = model.embed(texts, max_tokens=max_tokens)
    seconds = time.perf_counter() - started
    meta = {
        "ids": ids,
        "seconds": seconds,
        "n": len(texts),
        "pieces_total": int(sum(pieces)),
        "pieces_mean": float(np.mean(pieces)),
        "n_truncated": int(sum(1 for t in texts if len(model.tokenizer.encode(t).ids) > max_tokens)),
    }
    np.save(path, emb)
    meta_path.write_text(json.dumps(meta))
    return emb, meta


def first_and_top5(ranking, sections_by_id, question):
    """1-based rank of the first answering section within the top 5, the first section."""
    first = sections_by_id[ranking[0]] if ranking else None
    rank = None
    for i, sid in enumerate(ranking[:5]):
        s = sections_by_id[sid]
        if is_answered_by(question, s["key"], s["heading_path"]):
            rank = i + 1
            break
    return first, rank


def answer_rank(ranking, sections_by_id, question):
    """1-based rank of the first answering section in the whole ranking, or None."""
    for i, sid in enumerate(ranking):
        s = sections_by_id[sid]
        if is_answered_by(question, s["key"], s["heading_path"]):
            return i + 1
    return None


def rrf(lists, k=RRF_K):
    scores = {}
    for ranking in lists:
        for i, sid in enumerate(ranking):
            scores[sid] = scores.get(sid, 0.0) + 1.0 / (k + i + 1)
    return sorted(scores, key=lambda sid: -scores[sid])


def minmax(values):
    lo, hi = min(values.values()), max(values.values())
    span = hi - lo
    return {k: ((v - lo) / span if span > 0 else 1.0) for k, v in values.items()}


def weighted(bm25_scores, dense_scores, alpha, depth=50):
    """alpha * minmax(BM25) + (1 - alpha) * minmax(cosine) over the union of both top-`depth`
    lists; a section outside BM25's list gets BM25 0 (the list's floor after min-max)."""
    dense_top = dict(sorted(dense_scores.items(), key=lambda kv: -kv[1])[:depth])
    candidates = set(bm25_scores) | set(dense_top)
    b = minmax(bm25_scores) if bm25_scores else {}
    d = minmax({sid: dense_scores[sid] for sid in candidates})
    fused = {sid: alpha * b.get(sid, 0.0) + (1 - alpha) * d[sid] for sid in candidates}
    return sorted(fused, key=lambda sid: -fused[sid])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dump", required=True)
    parser.add_argument("--questions", action="append", required=True, help="LABEL=PATH")
    parser.add_argument("--model", default=DEFAULT_DIR)
    parser.add_argument("--json", help="write per-question results here")
    args = parser.parse_args()

    model = MiniLM(args.model)
    if not sanity_check(model):
        raise SystemExit("the forward pass fails the sanity check")

    all_sections = load_jsonl(Path(args.dump) / "sections.jsonl")
    canonical = [s for s in all_sections if s["freshness"] == "canonical"]
    by_id = {s["id"]: s for s in all_sections}
    assert len(by_id) == len(all_sections), "section ids are not unique"
    canon_ids = [s["id"] for s in canonical]
    ranks = {(r["file"], r["id"]): r for r in load_jsonl(Path(args.dump) / "ranks.jsonl")}

    labels, questions = [], {}
    for spec in args.questions:
        label, path = spec.split("=", 1)
        labels.append(label)
        questions[label] = load_jsonl(path)

    # Section embeddings (timed once, cached).
    section_emb, section_meta = {}, {}
    for variant in VARIANTS:
        section_emb[variant], section_meta[variant] = embed_sections(
            model, canonical, variant, args.dump
        )

    # Question embeddings, one at a time as an ask would, timed.
    q_times, q_emb = [], {}
    for label in labels:
        for q in questions[label]:
            model.embed([q["question"]])  # warm
            started = time.perf_counter()
            q_emb[(label, q["id"])] = model.embed([q["question"]])[0]
            q_times.append(time.perf_counter() - started)

    answer_ranks = {}  # (label, qid) -> ranking name -> rank of the answer
    results = {}  # variant -> label -> list of (qid, first, top5rank)

    def record(variant, label, q, ranking):
        first, rank = first_and_top5(ranking, by_id, q)
        results.setdefault(variant, {}).setdefault(label, []).append((q, first, rank))

    for label in labels:
        for q in questions[label]:
            r = ranks[(label, q["id"])]
            served = [h["id"] for h in r["served"]]
            store_ranked = [h["id"] for h in r["store_ranked"] if h["freshness"] == "canonical"]
            bm25_full = [h["id"] for h in r["bm25_full"]]
            bm25_full_scores = {h["id"]: h["score"] for h in r["bm25_full"]}
            # Checks of the harness: the budgeted ask's first hit is the store's ranking's first,
            # and the rebuilt index ranks the same first section.
            if served and store_ranked and served[0] != store_ranked[0]:
                print(f"note: {label} {q['id']}: served first != store ranking first")
            if store_ranked and bm25_full and store_ranked[0] != bm25_full[0]:
                print(f"note: {label} {q['id']}: rebuilt index first != store first")
            record("bm25: store ask (budget 800), as served", label, q, served)
            record("bm25: rebuilt index, no score floor", label, q, bm25_full)

            answer_ranks[(label, q["id"])] = {"bm25 full": answer_rank(bm25_full, by_id, q)}
            for variant in VARIANTS:
                emb = section_emb[variant]
                cos = emb @ q_emb[(label, q["id"])]
                order = np.argsort(-cos, kind="stable")
                dense_rank = [canon_ids[i] for i in order]
                dense_scores = {canon_ids[i]: float(cos[i]) for i in range(len(canon_ids))}
                record(f"dense only [{variant}]", label, q, dense_rank)
                answer_ranks[(label, q["id"])][f"dense {variant}"] = answer_rank(dense_rank, by_id, q)
                record(f"RRF k=60: dense top50 + bm25 full top50 [{variant}]", label, q,
                       rrf([dense_rank[:50], bm25_full]))
                record(f"RRF k=60: dense top50 + store ranking (floored) [{variant}]", label, q,
                       rrf([dense_rank[:50], store_ranked]))
                for alpha in ALPHAS:
                    record(f"weighted a={alpha} bm25 + (1-a) cos, minmax [{variant}]", label, q,
                           weighted(bm25_full_scores, dense_scores, alpha))
                for depth in (20, 50):
                    pool = bm25_full[:depth]
                    rerank = sorted(pool, key=lambda sid: -dense_scores[sid])
                    record(f"dense rerank of bm25 full top{depth} [{variant}]", label, q, rerank)
                pool = store_ranked
                record(f"dense rerank of store ranking (floored, <=50) [{variant}]", label, q,
                       sorted(pool, key=lambda sid: -dense_scores[sid]))

    # Table.
    print()
    header = f"{'variant':<62}" + "".join(f"{l + ' first':>15}{'top5':>6}" for l in labels)
    print(header)
    for variant, per_label in results.items():
        row = f"{variant:<62}"
        for label in labels:
            rows = per_label[label]
            n_first = sum(1 for _, _, rank in rows if rank == 1)
            n_top5 = sum(1 for _, _, rank in rows if rank is not None)
            row += f"{f'{n_first}/{len(rows)}':>15}{n_top5:>6}"
        print(row)

    # Where the answer sits in each single ranking, and the oracle of picking the better one.
    print("\nrank of the first answering section in each single ranking (bm25 full: top 50 only):")
    names = list(next(iter(answer_ranks.values())))
    for label in labels:
        for name in names:
            rs = [answer_ranks[(label, q["id"])][name] for q in questions[label]]
            found = [r for r in rs if r is not None]
            print(f"  {label:<8} {name:<14} first {sum(r == 1 for r in found):>2}  "
                  f"top5 {sum(r <= 5 for r in found):>2}  top20 {sum(r <= 20 for r in found):>2}  "
                  f"top50 {sum(r <= 50 for r in found):>2}  "
                  f"median {np.median([r if r is not None else 10**6 for r in rs]):.0f}")
        for name in names[1:]:
            either = sum(
                1 for q in questions[label]
                if 1 in (answer_ranks[(label, q["id"])]["bm25 full"], answer_ranks[(label, q["id"])][name])
            )
            print(f"  {label:<8} oracle: bm25 or {name} first: {either}/{len(questions[label])}")

    # Misses of every variant that does best on dev + holdout together, and of dense only.
    totals = {
        v: sum(1 for l in labels for _, _, rank in per[l] if rank == 1) for v, per in results.items()
    }
    best = max(totals.values())
    for variant in [v for v, t in totals.items() if t == best]:
        print(f"\nmissed by {variant} ({best} of {sum(len(questions[l]) for l in labels)}):")
        for label in labels:
            for q, first, rank in results[variant][label]:
                if rank == 1:
                    continue
                print(f"  {q['id']}: {q['question']!r}")
                print(f"      wants {q['answer_key']} [{q['answer_heading']}]"
                      + (f" or {[(a['key'], a['heading']) for a in q['also']]}" if q["also"] else ""))
                print(f"      first: {first['key']} [{first['heading']}]"
                      f" (answer in top 5 at {rank})" if first else "      first: -")

    # Timings.
    print("\ntimings (numpy, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}, machine shared):")
    q_ms = np.array(q_times) * 1e3
    print(f"  query embedding: {len(q_ms)} questions, mean {q_ms.mean():.1f} ms, "
          f"p50 {np.median(q_ms):.1f} ms, max {q_ms.max():.1f} ms (tokenize + forward, batch 1)")
    for variant, meta in section_meta.items():
        per = meta["seconds"] / meta["n"]
        print(f"  sections [{variant}]: {meta['n']} canonical sections in {meta['seconds']:.1f} s "
              f"= {per * 1e3:.1f} ms/section (batches of 16, sorted by length), "
              f"mean {meta['pieces_mean']:.0f} word pieces, {meta['n_truncated']} truncated; "
              f"est. 918 current sections {918 * per:.0f} s, 2,111 sections put by the history "
              f"{2111 * per:.0f} s, 6,000 sections {6000 * per:.0f} s")

    if args.json:
        out = {"answer_ranks": {f"{l}:{qid}": v for (l, qid), v in answer_ranks.items()}}
        out |= {
            variant: {
                label: [
                    {"id": q["id"], "rank_in_top5": rank,
                     "first": {"key": f["key"], "heading": f["heading"]} if f else None}
                    for q, f, rank in per[label]
                ]
                for label in labels
            }
            for variant, per in results.items()
        }
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
