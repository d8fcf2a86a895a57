//! Prints the hits of many asks on the 100,000-section synthetic store of `context_profile`, with
//! the bits of their scores, so that a change to the search can be checked to rank exactly as
//! before: run it before and after and compare the outputs with `diff`.
//!
//! The asks are the profile's 50 queries, each of their words, and their prefixes and suffixes of
//! two words or more, at 1, 5 and 20 hits, and at 5 hits with copies listed (which searches
//! without the relative-score floor).
//!
//! `cargo run --release -p fourfold-benches --example context_ranks [DIR] > ranks.txt` loads the
//! snapshot `context_profile` saves under DIR (default `target/context-profile`), or builds and
//! saves it.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use fourfold::context::{AskOptions, ContextStore, Hit};
use fourfold::FileStore;
use fourfold_benches::synthetic_sections::{self, Vocabulary};

fn hit_line(hit: &Hit) -> String {
    format!(
        "{}#{}@{}:{:08x}",
        hit.key,
        hit.section_id,
        hit.version,
        hit.score.to_bits()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/context-profile".to_string());
    let vocabulary = Vocabulary::new();
    let documents = synthetic_sections::generate(&vocabulary, 2_000, 50);
    let queries = synthetic_sections::queries(&vocabulary, &documents, 50);
    let store = ContextStore::open(Arc::new(FileStore::open(&dir)?))?;
    if store.keys().is_empty() {
        for document in &documents {
            store.put(&document.key, &document.text)?;
        }
        store.save()?;
    }
    let mut asks: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for query in &queries {
        let words: Vec<&str> = query.split_whitespace().collect();
        let mut variants = vec![query.clone()];
        variants.extend(words.iter().map(|word| word.to_string()));
        for n_words in 2..words.len() {
            variants.push(words[..n_words].join(" "));
            variants.push(words[words.len() - n_words..].join(" "));
        }
        for variant in variants {
            if seen.insert(variant.clone()) {
                asks.push(variant);
            }
        }
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut n_asks = 0;
    for ask in &asks {
        for (max_hits, with_copies) in [(1, false), (5, false), (20, false), (5, true)] {
            let options = AskOptions {
                max_hits,
                with_copies,
                ..AskOptions::budget(800)
            };
            let answer = store.ask_with(ask, &options);
            let hits: Vec<String> = answer.hits.iter().map(hit_line).collect();
            let copies: Vec<String> = answer.copies.iter().map(hit_line).collect();
            writeln!(
                out,
                "{max_hits}{} {ask:?}\n  hits {}\n  copies {}",
                if with_copies { "+copies" } else { "" },
                hits.join(" "),
                copies.join(" ")
            )?;
            n_asks += 1;
        }
    }
    out.flush()?;
    eprintln!("{n_asks} asks ({} queries)", asks.len());
    Ok(())
}
