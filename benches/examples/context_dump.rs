//! Dumps what the `context_lookup` bench's store holds and how it ranks, for experiments outside
//! Rust (the dense-retrieval experiment in `benches/python/semantic/`).
//!
//! It builds the drifted pydantic repository into a `ContextStore` exactly as `context_lookup`
//! does (every put and delete of `DriftedRepository::steps`, in order) and writes, under OUT_DIR:
//!
//! - `sections.jsonl`: every section of every current document: key, version, section id, heading
//!   path, the heading as a hit prints it (`a > b`), line, freshness marker (canonical / stale /
//!   duplicate), its reason and the copied text's pointer, tokens (o200k_base, text only), and
//!   text.
//! - `ranks.jsonl`: per question of every questions file: the hits of the bench's ask (budget 800,
//!   the default five hits), the hits of an unbudgeted ask for up to 50 sections (the store's
//!   ranking, which stops at the store's relative-score floor), and the top 50 canonical
//!   sections of a plain BM25 search without that floor, over an `Index` rebuilt with the store's
//!   fields and weights (headings x3, key words x1.5, body x1).
//!
//! ```sh
//! cargo run --release -p fourfold-benches --example context_dump -- \
//!     /work/shared/corpus/pydantic OUT_DIR dev=/work/shared/corpus/pydantic/questions-dev.jsonl \
//!     holdout=benches/questions/pydantic-holdout.jsonl
//! ```

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use fourfold::context::{AskOptions, ContextStore, Freshness, Hit, Index};
use fourfold_benches::context_corpus::{load_questions, DriftedRepository, Step};
use serde_json::json;

/// Mirrors `store.rs`'s field weights.
const HEADING_WEIGHT: f32 = 3.0;
const KEY_WEIGHT: f32 = 1.5;
const BODY_WEIGHT: f32 = 1.0;

/// How deep the unbudgeted rankings go.
const DEPTH: usize = 50;

/// The bench's default budget.
const BUDGET: u64 = 800;

/// Mirrors `store.rs`'s `key_words`.
fn key_words(key: &str) -> String {
    key.rsplit_once('.')
        .map_or(key, |(stem, _)| stem)
        .replace(['/', '_', '-', '.'], " ")
}

fn build_store(repository: &DriftedRepository) -> Result<ContextStore, String> {
    let store = ContextStore::new();
    for step in &repository.steps {
        match step {
            Step::Put { key, text } => {
                store
                    .put(key, text)
                    .map_err(|error| format!("put `{key}` failed: {error}"))?;
            }
            Step::Delete { key } => {
                store
                    .delete(key)
                    .map_err(|error| format!("delete `{key}` failed: {error}"))?;
            }
        }
    }
    Ok(store)
}

fn hit_json(hit: &Hit) -> serde_json::Value {
    json!({
        "key": hit.key,
        "id": hit.section_id,
        "heading_path": hit.heading_path,
        "version": hit.version,
        "freshness": hit.freshness.name(),
        "score": hit.score,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: context_dump CORPUS OUT_DIR LABEL=QUESTIONS...";
    let corpus = PathBuf::from(args.next().ok_or(usage)?);
    let out_dir = PathBuf::from(args.next().ok_or(usage)?);
    let question_files: Vec<(String, PathBuf)> = args
        .map(|arg| {
            let (label, path) = arg.split_once('=').ok_or(usage)?;
            Ok((label.to_string(), PathBuf::from(path)))
        })
        .collect::<Result<_, &str>>()?;
    fs::create_dir_all(&out_dir)?;

    let repository = DriftedRepository::build(&corpus)?;
    let store = build_store(&repository)?;

    // Every section of every current document, and the same sections in a rebuilt index.
    let mut sections_out = BufWriter::new(fs::File::create(out_dir.join("sections.jsonl"))?);
    let mut index = Index::new();
    let mut slots: Vec<(String, String, Freshness)> = Vec::new();
    let (mut n_sections, mut n_canonical) = (0usize, 0usize);
    for key in store.keys() {
        let document = store.get(&key).ok_or("a listed key has no document")?;
        let key_text = key_words(&key);
        for section in &document.sections {
            let freshness = section.marker.freshness;
            writeln!(
                sections_out,
                "{}",
                json!({
                    "key": section.key,
                    "version": section.version,
                    "id": section.id,
                    "heading_path": section.heading_path,
                    "heading": section.heading_path.join(" > "),
                    "line_start": section.line_start,
                    "freshness": freshness.name(),
                    "reason": section.marker.reason,
                    "copy_of": section.marker.copy_of,
                    "tokens": section.tokens,
                    "text": section.text,
                })
            )?;
            let headings = section.heading_path.join(" ");
            index.insert(
                slots.len() as u32,
                &[
                    (headings.as_str(), HEADING_WEIGHT),
                    (key_text.as_str(), KEY_WEIGHT),
                    (section.text.as_str(), BODY_WEIGHT),
                ],
            );
            slots.push((section.key.clone(), section.id.clone(), freshness));
            n_sections += 1;
            n_canonical += usize::from(freshness == Freshness::Canonical);
        }
    }
    sections_out.flush()?;
    index.merge();

    let mut ranks_out = BufWriter::new(fs::File::create(out_dir.join("ranks.jsonl"))?);
    let mut n_questions = 0;
    for (label, path) in &question_files {
        for question in load_questions(Path::new(path))? {
            let served = store.ask(&question.question, BUDGET);
            let deep = store.ask_with(
                &question.question,
                &AskOptions {
                    max_hits: DEPTH,
                    ..AskOptions::budget(u64::MAX)
                },
            );
            let bm25: Vec<serde_json::Value> = index
                .search(&question.question, DEPTH, |slot| {
                    slots[slot as usize].2 == Freshness::Canonical
                })
                .into_iter()
                .map(|(slot, score)| {
                    let (key, id, _) = &slots[slot as usize];
                    json!({"key": key, "id": id, "score": score})
                })
                .collect();
            writeln!(
                ranks_out,
                "{}",
                json!({
                    "file": label,
                    "id": question.id,
                    "question": question.question,
                    "served": served.hits.iter().map(hit_json).collect::<Vec<_>>(),
                    "store_ranked": deep.hits.iter().map(hit_json).collect::<Vec<_>>(),
                    "bm25_full": bm25,
                })
            )?;
            n_questions += 1;
        }
    }
    ranks_out.flush()?;
    eprintln!(
        "{} current documents, {n_sections} sections ({n_canonical} canonical), {n_questions} \
         questions, written to {}",
        store.keys().len(),
        out_dir.display()
    );
    Ok(())
}
