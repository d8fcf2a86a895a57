//! Any text as documents: a store takes every put and delete without a panic, never serves more
//! than the budget, and answers the same after a save and a reopen.
//!
//! The input, read as UTF-8 with bad bytes replaced, is cut at each `\u{1}`: the first part is
//! the query, each later part a put of one of six keys in turn (current docs, a stale `legacy/`
//! copy, a `wiki/` copy, a source file, plain text), or a delete of that key when the part is
//! `DEL`. So the splitter, the front matter, the renames read from tables and sentences, the
//! stale and duplicate marking, the index and the snapshot all see text no test wrote. A session
//! scoped to `docs/` must show nothing from another folder.
//!
//! Then a reranker is set, its behaviour picked by the input's first byte: scores from the
//! candidates' text, the wrong number of them, a NaN, an error, or scores after it has replaced
//! `docs/guide.md` while the ask waits on it. Whatever it does, an ask serves only current
//! canonical sections, each once, within the budget, says why when it kept the search's order,
//! and a scoped session still shows nothing from another folder.
//!
//! Last, the reopened store compacts its index, and its first hit scores the same, to rounding.
#![no_main]

use std::sync::Arc;

use fourfold::context::{AskOptions, ContextStore, Freshness, RerankCandidate};
use fourfold::MemoryStore;
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 6] = [
    "docs/guide.md",
    "docs/api.md",
    "legacy/guide.md",
    "wiki/guide.md",
    "src/lib.rs",
    "notes.txt",
];

/// A budget small enough that the first section is often cut to fit it.
const BUDGET: u64 = 120;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{1}');
    let query = parts.next().unwrap_or_default();
    let backing = Arc::new(MemoryStore::new());
    let store = ContextStore::open(backing.clone()).expect("an empty store opens");
    for (idx, part) in parts.take(24).enumerate() {
        let key = KEYS[idx % KEYS.len()];
        if part == "DEL" {
            store.delete(key).expect("a delete of any key is journaled");
        } else {
            store
                .put(key, part)
                .expect("a put of any text is journaled");
        }
    }
    let options = AskOptions {
        with_copies: true,
        ..AskOptions::budget(BUDGET)
    };
    let asked = store.ask_with(query, &options);
    assert!(asked.tokens_served <= BUDGET, "served over the budget");
    assert_eq!(
        asked
            .hits
            .iter()
            .map(|hit| u64::from(hit.tokens))
            .sum::<u64>(),
        asked.tokens_served
    );
    // A session scoped to `docs/` shows nothing from elsewhere: no hit, copy or rename.
    let scoped = store
        .session("fuzzer", None, None)
        .scoped(Arc::new(|key: &str| key.starts_with("docs/")));
    let seen = scoped.ask_with(query, &options);
    for hit in seen.hits.iter().chain(&seen.copies) {
        assert!(
            hit.key.starts_with("docs/"),
            "a scoped session was shown {}",
            hit.pointer
        );
    }
    for rename in &seen.renames {
        assert!(
            rename.pointer.starts_with("docs/"),
            "renamed by {}",
            rename.pointer
        );
    }
    for key in store.keys() {
        assert!(
            store.get(&key).is_some(),
            "a listed key has a current version"
        );
    }
    // From the journal alone, then from a snapshot: the same documents and the same answer.
    let pointers = |store: &ContextStore| {
        let answer = store.ask_with(query, &options);
        let hits: Vec<(String, u32)> = answer
            .hits
            .iter()
            .map(|hit| (hit.pointer.clone(), hit.tokens))
            .collect();
        (store.keys(), hits)
    };
    rerank(&store, data.first().copied().unwrap_or(0), query, &options);
    let before = pointers(&store);
    let replayed = ContextStore::open(backing.clone()).expect("the journal replays");
    assert_eq!(
        pointers(&replayed),
        before,
        "the journal gave another store"
    );
    store.save().expect("a store saves");
    let reopened = ContextStore::open(backing).expect("the snapshot opens");
    assert_eq!(
        pointers(&reopened),
        before,
        "the snapshot gave another store"
    );
    // Compacting the index changes the answer only by the rounding of its scores (the terms are
    // summed in another order): the first hit scores the same, and the documents stay.
    let first_score = |store: &ContextStore| {
        let answer = store.ask_with(query, &options);
        assert!(answer.tokens_served <= BUDGET, "served over the budget");
        answer.hits.first().map(|hit| hit.score)
    };
    let loose = first_score(&reopened);
    reopened.compact();
    assert!(!reopened.compact(), "a compact left work for the next one");
    match (loose, first_score(&reopened)) {
        (None, None) => {}
        (Some(loose), Some(compact)) => assert!(
            (loose - compact).abs() <= loose.abs().max(1.0) * 1e-4,
            "the first hit scored {loose} before compacting and {compact} after"
        ),
        (loose, compact) => panic!("first hits {loose:?} before compacting, {compact:?} after"),
    }
    assert_eq!(reopened.keys(), before.0, "compacting lost a document");
});

/// Sets a reranker that behaves as `mode` says, checks what asks serve under it, and takes it
/// off again (it holds the store, so it would keep it alive).
fn rerank(store: &ContextStore, mode: u8, query: &str, options: &AskOptions) {
    let held = store.clone();
    let reranker = move |query: &str, candidates: &[RerankCandidate]| {
        let by_text = || -> Vec<f32> {
            candidates
                .iter()
                .map(|candidate| {
                    let mixed = candidate
                        .text
                        .bytes()
                        .chain(query.bytes())
                        .fold(u32::from(mode), |hash, byte| {
                            hash.wrapping_mul(31).wrapping_add(u32::from(byte))
                        });
                    (mixed % 1_000) as f32 - 500.0
                })
                .collect()
        };
        match mode % 5 {
            0 => Ok(by_text()),
            1 => Ok(vec![1.0; candidates.len() + 1]),
            2 => Ok(candidates.iter().map(|_| f32::NAN).collect()),
            3 => Err("the reranker is down".to_string()),
            _ => {
                // Replaces a page the candidates may hold while the ask waits.
                let _ = held.put("docs/guide.md", &format!("# Replaced\n\n{query}\n"));
                Ok(by_text())
            }
        }
    };
    store.set_reranker(Some(Arc::new(reranker)), 1 + usize::from(mode % 16));
    let answer = store.ask_with(query, options);
    let scoped = store
        .session("fuzzer", None, None)
        .scoped(Arc::new(|key: &str| key.starts_with("docs/")));
    let seen = scoped.ask_with(query, options);
    store.set_reranker(None, 0);
    for asked in [&answer, &seen] {
        assert!(asked.tokens_served <= BUDGET, "reranked over the budget");
        let fails = matches!(mode % 5, 1..=3);
        if fails && !asked.hits.is_empty() {
            assert!(!asked.reranked, "a failing reranker ordered the hits");
            assert!(asked.rerank_error.is_some(), "a failure not said");
        }
        let mut served = std::collections::HashSet::new();
        for hit in &asked.hits {
            assert_eq!(
                hit.freshness,
                Freshness::Canonical,
                "served {}",
                hit.pointer
            );
            assert!(
                served.insert((hit.key.clone(), hit.section_id.clone())),
                "served {} twice",
                hit.pointer
            );
        }
    }
    for hit in seen.hits.iter().chain(&seen.copies) {
        assert!(
            hit.key.starts_with("docs/"),
            "a scoped, reranked session was shown {}",
            hit.pointer
        );
    }
    // Nothing changed the store since the first ask but the reranker itself, which put the
    // same text again: every hit of either ask is of the version that is current now.
    for hit in answer.hits.iter().chain(&seen.hits) {
        let current = store.get(&hit.key).map(|document| document.version.version);
        assert_eq!(
            current,
            Some(hit.version),
            "served a replaced {}",
            hit.pointer
        );
    }
}
