//! What publishing a folder to a fleet costs: `N` synthetic Markdown documents of 50 sections
//! (default 400, 20.7 MB; the generator of the `context_ask` bench) are written to a temporary
//! folder, then `ROUNDS` times (default 3) a process joins an empty shared log in a new database
//! and ingests the folder there (`SharedDocuments::ingest_dir`: the files appended to the log
//! and applied to its own store), timed from the call to its return. Beside it, in the same
//! run, the same folder ingested into a store of its own (`ContextStore::ingest_dir`).
//!
//! Needs a server: `scripts/with-postgres.sh cargo run --release -p fourfold-benches --example
//! fleet_ingest [N] [ROUNDS]` (it reads `FOURFOLD_TEST_POSTGRES` and makes its databases).

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

    let vocabulary = Vocabulary::new();
    let documents = synthetic_sections::generate(&vocabulary, n_documents, 50);
    let folder = tempfile::tempdir()?;
    let mut n_bytes = 0;
    for document in &documents {
        let path = folder.path().join(&document.key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &document.text)?;
        n_bytes += document.text.len();
    }
    println!(
        "{} documents in the folder, {:.1} MB, {} cores",
        documents.len(),
        n_bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    for round in 0..rounds {
        let database = format!("ff_fleet_ingest_{}_{round}", std::process::id());
        postgres::Client::connect(&format!("{server} dbname=postgres"), postgres::NoTls)?
            .batch_execute(&format!("CREATE DATABASE {database}"))?;
        let store = Arc::new(PostgresStore::connect(&format!(
            "{server} dbname={database}"
        ))?);
        let publisher = SharedDocuments::join(store, ContextStore::new())?;
        let started = Instant::now();
        let report = publisher.ingest_dir(folder.path(), &[], |_| {})?;
        let elapsed = started.elapsed().as_secs_f64();
        drop(publisher);
        println!(
            "round {round} fleet ingest: {elapsed:6.2}s ({:5.1} MB/s), {} documents",
            n_bytes as f64 / 1e6 / elapsed,
            report.n_changed
        );

        let local = ContextStore::new();
        let started = Instant::now();
        let report = local.ingest_dir(folder.path(), &[], |_| {})?;
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "round {round} local ingest: {elapsed:6.2}s ({:5.1} MB/s), {} documents",
            n_bytes as f64 / 1e6 / elapsed,
            report.n_changed
        );
    }
    Ok(())
}
