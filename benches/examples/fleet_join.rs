//! What joining a fleet costs a process whose documents are shared in PostgreSQL: the shared log
//! is seeded with `N` synthetic Markdown documents of 50 sections (default 400, 20.7 MB; the
//! generator of the `context_ask` bench), then `ROUNDS` new processes' stores (default 3) join
//! it in turn, each timed from `SharedDocuments::join` to its return (the whole log applied and
//! compacted). Beside them, in the same run, a loop of `ContextStore::put` of the same documents
//! on one thread, the work a join did before it prepared the log's puts on every core.
//!
//! Needs a server: `scripts/with-postgres.sh cargo run --release -p fourfold-benches --example
//! fleet_join [N] [ROUNDS]` (it reads `FOURFOLD_TEST_POSTGRES` and makes a database of its own).

use std::sync::Arc;
use std::time::Instant;

use fourfold::context::{ContextStore, SharedDocuments};
use fourfold::store::PostgresStore;
use fourfold_benches::synthetic_sections::{self, Vocabulary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n_documents: usize = args.next().map_or(Ok(400), |n| n.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |n| n.parse())?;
    let server = std::env::var("FOURFOLD_TEST_POSTGRES")
        .map_err(|_| "no server: run this under scripts/with-postgres.sh")?;
    let database = format!("ff_fleet_join_{}", std::process::id());
    postgres::Client::connect(&format!("{server} dbname=postgres"), postgres::NoTls)?
        .batch_execute(&format!("CREATE DATABASE {database}"))?;
    let settings = format!("{server} dbname={database}");
    let connect = || PostgresStore::connect(&settings).map(Arc::new);

    let vocabulary = Vocabulary::new();
    let documents = synthetic_sections::generate(&vocabulary, n_documents, 50);
    let n_bytes: usize = documents.iter().map(|document| document.text.len()).sum();
    let publisher = SharedDocuments::join(connect()?, ContextStore::new())?;
    for document in &documents {
        publisher.put(&document.key, &document.text)?;
    }
    drop(publisher);
    println!(
        "{} documents in the log, {:.1} MB, {} cores",
        documents.len(),
        n_bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    for round in 0..rounds {
        let store = connect()?;
        let started = Instant::now();
        let joined = SharedDocuments::join(store, ContextStore::new())?;
        let elapsed = started.elapsed().as_secs_f64();
        let n_keys = joined.context().keys().len();
        drop(joined);
        println!("round {round} join:     {elapsed:6.2}s, {n_keys} documents");

        let store = ContextStore::new();
        let started = Instant::now();
        for document in &documents {
            store.put(&document.key, &document.text)?;
        }
        store.compact();
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "round {round} put loop: {elapsed:6.2}s, {} documents",
            store.keys().len()
        );
    }
    Ok(())
}
