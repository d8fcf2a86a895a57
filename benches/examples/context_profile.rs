//! A profiling harness for `ContextStore::ask` on the 100,000-section synthetic store of the
//! `context_ask` bench, without tantivy and without criterion: it saves the built store as a
//! snapshot under the directory given as its first argument (default `target/context-profile`)
//! and loads that snapshot on later runs, so a profiler sees asks, not ingest. Building it, it
//! prints the puts' p50, p99 and slowest (the puts that make a merge due among them).
//!
//! `cargo run --release -p fourfold-benches --example context_profile [DIR] [ROUNDS]` prints the
//! p50, p99 and mean of single asks over the bench's 50 queries. With `FOURFOLD_PROFILE_EVICT_MB=N`
//! it writes N MiB of other data before each ask (untimed): 64 gives asks with cold caches, as in
//! the bench's cold timing loop. With `FOURFOLD_PROFILE_EVICT_ROUND_MB=N` it writes them once
//! before each round of the 50 queries instead: 64 stands for the bench's timing loop, where
//! tantivy's calls between two rounds of fourfold's leave each query's data out of the caches
//! while what all queries share stays warm within the round. With `FOURFOLD_PROFILE_MAX_HITS=N`
//! each ask serves at most N sections instead of the default 5 (the search then looks for the
//! best N candidates instead of 5).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fourfold::context::{AskOptions, ContextStore};
use fourfold::FileStore;
use fourfold_benches::synthetic_sections::{self, Vocabulary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "target/context-profile".to_string());
    let rounds: usize = args.next().map_or(Ok(200), |rounds| rounds.parse())?;
    let vocabulary = Vocabulary::new();
    let documents = synthetic_sections::generate(&vocabulary, 2_000, 50);
    let queries = synthetic_sections::queries(&vocabulary, &documents, 50);
    let file_store = Arc::new(FileStore::open(&dir)?);
    let started = Instant::now();
    let store = ContextStore::open(file_store)?;
    if store.keys().is_empty() {
        let mut puts = Vec::with_capacity(documents.len());
        for document in &documents {
            let put_started = Instant::now();
            store.put(&document.key, &document.text)?;
            puts.push(put_started.elapsed());
        }
        let put_loop = started.elapsed();
        store.compact();
        store.save()?;
        puts.sort();
        eprintln!(
            "built and saved in {:.1?}: {} puts in {put_loop:.1?}, p50 {:.1?}, p99 {:.1?}, slowest {:.1?}",
            started.elapsed(),
            puts.len(),
            puts[puts.len() / 2],
            puts[puts.len() * 99 / 100],
            puts[puts.len() - 1],
        );
    } else {
        eprintln!("loaded in {:.1?}", started.elapsed());
    }
    // With FOURFOLD_PROFILE_MAX_HITS=N, each ask serves at most N sections (5 unless set).
    let mut ask_options = AskOptions::budget(800);
    if let Ok(max_hits) = std::env::var("FOURFOLD_PROFILE_MAX_HITS") {
        ask_options.max_hits = max_hits.parse()?;
    }
    // With FOURFOLD_PROFILE_EVICT_MB=N, N MiB are written between asks (untimed), so that each ask
    // starts with caches holding other data, as it does in an agent that did other work between.
    let mebibytes = |name: &str| -> Result<usize, std::num::ParseIntError> {
        std::env::var(name).ok().map_or(Ok(0), |mb| mb.parse())
    };
    let mut scratch = vec![0u8; mebibytes("FOURFOLD_PROFILE_EVICT_MB")? << 20];
    let mut round_scratch = vec![0u8; mebibytes("FOURFOLD_PROFILE_EVICT_ROUND_MB")? << 20];
    let mut samples = Vec::with_capacity(rounds * queries.len());
    let mut n_hits = 0;
    for round in 0..rounds {
        for line in round_scratch.chunks_mut(64) {
            line[0] = line[0].wrapping_add(round as u8 | 1);
        }
        black_box(&round_scratch);
        for query in &queries {
            for line in scratch.chunks_mut(64) {
                line[0] = line[0].wrapping_add(round as u8 | 1);
            }
            black_box(&scratch);
            let started = Instant::now();
            let answer = black_box(store.ask_with(black_box(query), &ask_options));
            samples.push(started.elapsed());
            n_hits += answer.hits.len();
        }
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len().max(1) as u32;
    println!(
        "asks={} p50={:?} p99={:?} mean={:?} hits/ask={:.2}",
        samples.len(),
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        mean,
        n_hits as f64 / samples.len().max(1) as f64
    );
    Ok(())
}
