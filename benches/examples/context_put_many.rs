//! What `ContextStore::put_many` saves a bulk load: the 100,000-section synthetic store of the
//! `context_ask` bench (2,000 Markdown documents of 50 sections, 103.5 MB) built in memory by a
//! loop of `put`s and by one `put_many`, in turn, `ROUNDS` times each (default 2), each store
//! compacted after its load as the bench does, and dropped before the next is built.
//!
//! `cargo run --release -p fourfold-benches --example context_put_many [ROUNDS]` prints each
//! build's time and MB/s of Markdown text, then whether both ways left the same sections.

use std::time::Instant;

use fourfold::context::ContextStore;
use fourfold_benches::synthetic_sections::{self, Vocabulary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(Ok(2), |rounds| rounds.parse())?;
    let vocabulary = Vocabulary::new();
    let documents = synthetic_sections::generate(&vocabulary, 2_000, 50);
    let pairs: Vec<(&str, &str)> = documents
        .iter()
        .map(|document| (document.key.as_str(), document.text.as_str()))
        .collect();
    let n_bytes: usize = pairs.iter().map(|(_, text)| text.len()).sum();
    println!(
        "{} documents, {:.1} MB, {} cores",
        pairs.len(),
        n_bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut sections = [0u64; 2];
    for round in 0..rounds {
        for (way, name) in ["put loop", "put_many"].into_iter().enumerate() {
            let store = ContextStore::new();
            let started = Instant::now();
            let versions = if way == 0 {
                pairs
                    .iter()
                    .map(|(key, text)| store.put(key, text))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                store.put_many(&pairs)?
            };
            store.compact();
            let elapsed = started.elapsed();
            sections[way] = versions
                .iter()
                .map(|version| u64::from(version.n_sections))
                .sum();
            println!(
                "round {round} {name:>8}: {elapsed:>8.2?}, {:.1} MB/s, {} sections",
                n_bytes as f64 / 1e6 / elapsed.as_secs_f64(),
                sections[way],
            );
        }
    }
    println!("same sections: {}", sections[0] == sections[1]);
    Ok(())
}
