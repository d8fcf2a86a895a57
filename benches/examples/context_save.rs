//! What a save costs on a large store kept in a folder: opens the store that `context_profile`
//! saved under the directory given as its first argument (default `target/context-profile`),
//! then puts one page and saves, as many times as its second argument says (default 5), and
//! prints each save's time and the snapshot's size. Each save moves the snapshot before it to
//! `snapshot-previous` first.
//!
//! `cargo run --release -p fourfold-benches --example context_save [DIR] [SAVES]`; run it under
//! `/usr/bin/time -v` for its peak memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fourfold::context::ContextStore;
use fourfold::FileStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "target/context-profile".to_string());
    let saves: usize = args.next().map_or(Ok(5), |saves| saves.parse())?;
    let started = Instant::now();
    let store = ContextStore::open(Arc::new(FileStore::open(&dir)?))?;
    if store.keys().is_empty() {
        return Err(format!("no store in {dir}: run context_profile there first").into());
    }
    eprintln!(
        "opened {} documents in {:.1?}",
        store.keys().len(),
        started.elapsed()
    );
    let mut times = Vec::with_capacity(saves);
    for n in 0..saves {
        store.put(
            "notes/save-bench.md",
            &format!("# Save {n}\n\nA page put before save {n}.\n"),
        )?;
        let started = Instant::now();
        let info = store.save()?;
        let took = started.elapsed();
        eprintln!("save {n}: {took:.1?}, {:.1} MB", info.n_bytes as f64 / 1e6);
        times.push(took);
    }
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    println!("saves={saves} median={median:.1?}");
    Ok(())
}
