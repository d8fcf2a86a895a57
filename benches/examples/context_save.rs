//! What a save costs on a large store kept in a folder: opens the store that `context_profile`
//! saved under the directory given as its first argument (default `target/context-profile`),
//! then puts one page and saves, as many times as its second argument says (default 5), and
//! prints each save's time and the snapshot's size. Each save moves the snapshot before it to
//! `snapshot-previous` first. While each save runs, another thread puts small pages one after
//! the other (each journaled, as the saves' own puts are) and the slowest of them is printed:
//! what a writer waits while the save holds the store's locks.
//!
//! `cargo run --release -p fourfold-benches --example context_save [DIR] [SAVES]`; run it under
//! `/usr/bin/time -v` for its peak memory.

use std::sync::atomic::{AtomicBool, Ordering};
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
        let saving = AtomicBool::new(true);
        let (saved, puts) = std::thread::scope(|scope| {
            let putter = scope.spawn(|| {
                let mut slowest = Duration::ZERO;
                let mut n_puts = 0u64;
                while saving.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    store.put(
                        &format!("notes/during-save-{}.md", n_puts % 8),
                        &format!("# Put {n_puts}\n\nA page put while save {n} runs.\n"),
                    )?;
                    slowest = slowest.max(started.elapsed());
                    n_puts += 1;
                }
                Ok::<_, fourfold::context::ContextError>((slowest, n_puts))
            });
            let started = Instant::now();
            let saved = store.save().map(|info| (info, started.elapsed()));
            saving.store(false, Ordering::Relaxed);
            (saved, putter.join())
        });
        let (info, took) = saved?;
        let (slowest, n_puts) = puts.map_err(|_| "the putting thread panicked")??;
        eprintln!(
            "save {n}: {took:.1?}, {:.1} MB; slowest of {n_puts} puts meanwhile {slowest:.1?}",
            info.n_bytes as f64 / 1e6
        );
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
