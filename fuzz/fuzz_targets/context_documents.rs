//! Any text as documents: a store takes every put and delete without a panic, never serves more
//! than the budget, and answers the same after a save and a reopen.
//!
//! The input, read as UTF-8 with bad bytes replaced, is cut at each `\u{1}`: the first part is
//! the query, each later part a put of one of six keys in turn (current docs, a stale `legacy/`
//! copy, a `wiki/` copy, a source file, plain text), or a delete of that key when the part is
//! `DEL`. So the splitter, the front matter, the renames read from tables and sentences, the
//! stale and duplicate marking, the index and the snapshot all see text no test wrote. A session
//! scoped to `docs/` must show nothing from another folder.
#![no_main]

use std::sync::Arc;

use fourfold::context::{AskOptions, ContextStore};
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
});
