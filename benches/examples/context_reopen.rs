//! What a ContextStore kept in a folder costs to write and to reopen: the pages of a
//! documentation folder put one by one into a store in memory, then into a store opened from an
//! empty `FileStore` (each put journaled, with its fsyncs), the store reopened from that journal
//! alone (every entry split and tokenised again), then saved and reopened from the snapshot.
//!
//! `cargo run --release -p fourfold-benches --example context_reopen [DIR] [RUNS]` (default: the
//! corpus's pydantic v2.13.4 pages, 5 runs) prints each phase's fastest run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fourfold::context::ContextStore;
use fourfold::FileStore;

fn pages(root: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut pages = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                let key = path.strip_prefix(root).unwrap_or(&path);
                pages.push((
                    key.to_string_lossy().into_owned(),
                    std::fs::read_to_string(&path)?,
                ));
            }
        }
    }
    pages.sort();
    Ok(pages)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pydantic/v2.13.4"),
        PathBuf::from,
    );
    let runs: usize = args.next().map_or(Ok(5), |runs| runs.parse())?;
    let pages = pages(&root)?;
    let n_bytes: usize = pages.iter().map(|(_, text)| text.len()).sum();
    let (mut in_memory, mut put) = (Duration::MAX, Duration::MAX);
    let (mut replay, mut snapshot) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let store = ContextStore::new();
        let started = Instant::now();
        for (key, text) in &pages {
            store.put(key, text)?;
        }
        in_memory = in_memory.min(started.elapsed());
        let dir = tempfile::tempdir()?;
        let open = || -> Result<ContextStore, Box<dyn std::error::Error>> {
            Ok(ContextStore::open(Arc::new(FileStore::open(dir.path())?))?)
        };
        let store = open()?;
        let started = Instant::now();
        for (key, text) in &pages {
            store.put(key, text)?;
        }
        put = put.min(started.elapsed());
        drop(store);
        let started = Instant::now();
        let store = open()?;
        replay = replay.min(started.elapsed());
        assert_eq!(store.keys().len(), pages.len());
        store.save()?;
        drop(store);
        let started = Instant::now();
        let store = open()?;
        snapshot = snapshot.min(started.elapsed());
        assert_eq!(store.keys().len(), pages.len());
    }
    let mb = n_bytes as f64 / 1e6;
    println!(
        "{} pages, {mb:.2} MB, fastest of {runs}: puts in memory {in_memory:.1?}, journaled puts \
         {put:.1?} ({:.1} MB/s), reopen from the journal {replay:.1?} ({:.1} MB/s), reopen from \
         the snapshot {snapshot:.1?}",
        pages.len(),
        mb / put.as_secs_f64(),
        mb / replay.as_secs_f64(),
    );
    Ok(())
}
