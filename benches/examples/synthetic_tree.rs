//! Writes the `context_ask` bench's synthetic documents as Markdown files under a folder, to
//! time `fourfold context ingest` (or `ContextStore::ingest_dir`) on a tree of known size.
//!
//! ```sh
//! cargo run --release -p fourfold-benches --example synthetic_tree -- OUT_DIR [DOCUMENTS]
//! time target/release/fourfold context ingest OUT_DIR --store /tmp/ingest-store
//! ```
//!
//! DOCUMENTS defaults to 400 (50 sections each, about 20 MB).

use std::path::PathBuf;

use fourfold_benches::synthetic_sections::{self, Vocabulary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: synthetic_tree OUT_DIR [DOCUMENTS]")?,
    );
    let n_documents: usize = args.next().map_or(Ok(400), |n| n.parse())?;
    let vocabulary = Vocabulary::new();
    let mut n_bytes = 0;
    for document in synthetic_sections::generate(&vocabulary, n_documents, 50) {
        let path = out.join(&document.key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &document.text)?;
        n_bytes += document.text.len();
    }
    println!(
        "wrote {n_documents} documents, {:.1} MB, under {}",
        n_bytes as f64 / 1e6,
        out.display()
    );
    Ok(())
}
