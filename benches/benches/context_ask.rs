//! Context lookup latency: fourfold's `ContextStore::ask` against tantivy, in the same run, on the
//! same 100,000 synthetic sections and the same 50 queries (`fourfold_benches::synthetic_sections`
//! describes the generator).
//!
//! Both engines get the same documents: fourfold puts 2,000 Markdown documents of 50 sections
//! each with `put_many` (which prepares them on every core, as tantivy's writer indexes on a
//! thread per core), then compacts its index (as tantivy's writer commits and waits for its
//! merges); tantivy indexes each section as one document with a `heading` and a `body` text
//! field (both stored), in RAM, committed once, and its reader is loaded once. Building both is
//! timed once, outside criterion, and printed as ingest throughput (MB/s of the documents'
//! Markdown text, and sections/s).
//!
//! Then, before criterion runs, a timing loop times single calls, 200 rounds: in each round every
//! engine asks all 50 queries before the next engine starts, and the engine that goes first
//! rotates. The calls are fourfold's `ask(query, 800)`; tantivy's parse and search with a
//! `TopDocs` collector whose limit is the mean number of sections fourfold served (rounded up);
//! and the same tantivy search followed by loading the stored text of the documents it found (what
//! an agent needs to read, and what fourfold's hits already carry). The loop prints p50, p99 and
//! the mean of the single calls for each engine as `context_latency ...` lines, because criterion
//! reports medians of batch means, not percentiles of single calls.
//!
//! A second loop times each engine alone: all its rounds back to back (200 rounds of the 50
//! queries after one untimed), so that its calls find in the caches what its own earlier calls
//! left there and nothing of the other engine's; it prints `context_latency_alone ...` lines.
//! Beside the first loop's figures, they say how much of a call's time is the other engine's
//! data having pushed its own out of the caches between rounds.
//!
//! A cold timing loop then times 1,000 single calls per engine in the same turns, each
//! after writing 64 MiB of other data (untimed), twice the machine's L3, so that the call reads
//! its index from memory: an agent asks between model calls and tool runs, which leave other
//! data in the caches. It prints `context_latency_cold ...` lines.
//!
//! Criterion then times the same three calls, cycling through the queries, one query per
//! iteration (group `context_ask_100000`).
//!
//! Without `--bench` on the command line (as under `cargo test --benches`), everything runs once on
//! a store of 1,000 sections, to check that it works.

use std::hint::black_box;
use std::process::exit;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use fourfold::context::ContextStore;
use fourfold_benches::synthetic_sections::{self, SyntheticDocument, Vocabulary};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, Schema, Value, STORED, TEXT};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument,
};

/// Documents and sections per document of the full run: 100,000 sections.
const N_DOCUMENTS: usize = 2_000;
const SECTIONS_PER_DOCUMENT: usize = 50;

/// Documents of the quick check run without `--bench`: 1,000 sections.
const N_DOCUMENTS_QUICK: usize = 20;

const N_QUERIES: usize = 50;

/// The budget of every `ask`, as in the `context_lookup` benchmark's default.
const BUDGET_TOKENS: u64 = 800;

/// Rounds of the timing loop over all queries: 10,000 single calls per engine.
const N_LATENCY_ROUNDS: usize = 200;

/// Rounds of the cold timing loop: 1,000 single calls per engine, each after the caches were
/// filled with other data.
const N_COLD_ROUNDS: usize = 20;

/// Bytes written between two calls of the cold timing loop: twice this machine's 32 MiB L3, so
/// that a call finds neither its own data nor the other engine's in any cache, as an agent's ask
/// that follows a model call or a tool run would.
const EVICT_BYTES: usize = 64 << 20;

/// Memory tantivy's index writer may use before it writes a segment.
const TANTIVY_WRITER_HEAP_BYTES: usize = 512 << 20;

/// Sections whose tokens are counted to report the mean tokens per section.
const N_SECTIONS_TOKEN_SAMPLE: usize = 1_000;

/// Prints the message and stops the bench: a bench has no caller to hand an error to.
fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("context_ask: {message}");
    exit(1)
}

/// tantivy's side: the index of the sections and what searching it needs.
struct TantivySide {
    searcher: Searcher,
    query_parser: QueryParser,
    heading: Field,
    body: Field,
    limit: usize,
    // The reader owns the searcher's segments; kept alive for the bench's life.
    _reader: IndexReader,
}

impl TantivySide {
    fn build(documents: &[SyntheticDocument]) -> tantivy::Result<Self> {
        let mut schema_builder = Schema::builder();
        let heading = schema_builder.add_text_field("heading", TEXT | STORED);
        let body = schema_builder.add_text_field("body", TEXT | STORED);
        let index = Index::create_in_ram(schema_builder.build());
        let mut writer: IndexWriter = index.writer(TANTIVY_WRITER_HEAP_BYTES)?;
        for document in documents {
            for section in &document.sections {
                let mut tantivy_document = TantivyDocument::default();
                tantivy_document.add_text(heading, &section.heading);
                tantivy_document.add_text(body, &section.body);
                writer.add_document(tantivy_document)?;
            }
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            searcher: reader.searcher(),
            query_parser: QueryParser::for_index(&index, vec![heading, body]),
            heading,
            body,
            limit: 1,
            _reader: reader,
        })
    }

    /// Parses and runs the query; the addresses of the best sections.
    fn search(&self, query: &str) -> Vec<DocAddress> {
        let parsed = match self.query_parser.parse_query(query) {
            Ok(parsed) => parsed,
            Err(error) => fail(format!("tantivy cannot parse `{query}`: {error}")),
        };
        match self
            .searcher
            .search(&parsed, &TopDocs::with_limit(self.limit).order_by_score())
        {
            Ok(top_docs) => top_docs.into_iter().map(|(_, address)| address).collect(),
            Err(error) => fail(format!("tantivy search failed: {error}")),
        }
    }

    /// Searches, then loads each section's stored heading and body.
    fn search_and_fetch(&self, query: &str) -> usize {
        let mut n_bytes = 0;
        for address in self.search(query) {
            let document: TantivyDocument = match self.searcher.doc(address) {
                Ok(document) => document,
                Err(error) => fail(format!("tantivy cannot load a document: {error}")),
            };
            for field in [self.heading, self.body] {
                if let Some(text) = document.get_first(field).and_then(|value| value.as_str()) {
                    n_bytes += text.len();
                }
            }
        }
        n_bytes
    }
}

/// Both engines over the same sections, and the queries.
struct Engines {
    store: ContextStore,
    tantivy: TantivySide,
    queries: Vec<String>,
    n_sections: usize,
}

fn build(n_documents: usize) -> Engines {
    let vocabulary = Vocabulary::new();
    let documents = synthetic_sections::generate(&vocabulary, n_documents, SECTIONS_PER_DOCUMENT);
    let queries = synthetic_sections::queries(&vocabulary, &documents, N_QUERIES);
    let n_bytes: usize = documents.iter().map(|document| document.text.len()).sum();
    let n_sections = n_documents * SECTIONS_PER_DOCUMENT;

    let sample_tokens: usize = documents
        .iter()
        .flat_map(|document| &document.sections)
        .take(N_SECTIONS_TOKEN_SAMPLE)
        .map(|section| fourfold::tokens::count_tokens(&section.body))
        .sum();
    let n_sampled = n_sections.clamp(1, N_SECTIONS_TOKEN_SAMPLE);
    println!(
        "context_store sections={n_sections} documents={n_documents} bytes={n_bytes} \
         mean_body_tokens={:.0} queries={}",
        sample_tokens as f64 / n_sampled as f64,
        queries.len()
    );

    let store = ContextStore::new();
    let started = Instant::now();
    let pairs: Vec<(&str, &str)> = documents
        .iter()
        .map(|document| (document.key.as_str(), document.text.as_str()))
        .collect();
    let n_store_sections: u64 = match store.put_many(&pairs) {
        Ok(versions) => versions
            .iter()
            .map(|version| u64::from(version.n_sections))
            .sum(),
        Err(error) => fail(format!("put_many failed: {error}")),
    };
    // The counterpart of tantivy's commit and wait for its merges: the last puts are folded into
    // the main index, as a user does after a bulk load.
    store.compact();
    print_ingest(
        "fourfold",
        n_bytes,
        n_store_sections as usize,
        started.elapsed(),
    );

    let started = Instant::now();
    let mut tantivy = match TantivySide::build(&documents) {
        Ok(tantivy) => tantivy,
        Err(error) => fail(format!("tantivy indexing failed: {error}")),
    };
    print_ingest("tantivy", n_bytes, n_sections, started.elapsed());

    let n_hits: usize = queries
        .iter()
        .map(|query| store.ask(query, BUDGET_TOKENS).hits.len())
        .sum();
    tantivy.limit = n_hits.div_ceil(queries.len().max(1)).max(1);
    println!(
        "context_hits fourfold_mean_hits={:.2} tantivy_limit={}",
        n_hits as f64 / queries.len().max(1) as f64,
        tantivy.limit
    );
    Engines {
        store,
        tantivy,
        queries,
        n_sections,
    }
}

fn print_ingest(engine: &str, n_bytes: usize, n_sections: usize, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "context_ingest engine={engine} bytes={n_bytes} sections={n_sections} seconds={seconds:.3} \
         mb_per_s={:.2} sections_per_s={:.0}",
        n_bytes as f64 / 1e6 / seconds,
        n_sections as f64 / seconds
    );
}

/// The value at quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The engines the timing loops time, in the order of [`timed_call`]'s indices.
const ENGINE_NAMES: [&str; 3] = ["fourfold", "tantivy", "tantivy_fetch"];

/// One call of engine `engine_idx` (an index into [`ENGINE_NAMES`]), timed.
fn timed_call(engines: &Engines, engine_idx: usize, query: &str) -> Duration {
    let started = Instant::now();
    match engine_idx {
        0 => drop(black_box(
            engines.store.ask(black_box(query), BUDGET_TOKENS),
        )),
        1 => drop(black_box(engines.tantivy.search(black_box(query)))),
        _ => drop(black_box(
            engines.tantivy.search_and_fetch(black_box(query)),
        )),
    }
    started.elapsed()
}

/// Prints one engine's percentiles as a `kind` line (`context_latency` or `context_latency_cold`),
/// ending with `extra` (more `name=value` fields, or nothing).
fn print_latency(
    kind: &str,
    engine: &str,
    n_sections: usize,
    samples: &mut [Duration],
    extra: &str,
) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let mean = total / samples.len().max(1) as u32;
    println!(
        "{kind} engine={engine} sections={n_sections} calls={} p50_ns={} p99_ns={} mean_ns={} \
         max_ns={}{extra}",
        samples.len(),
        quantile(samples, 0.50).as_nanos(),
        quantile(samples, 0.99).as_nanos(),
        mean.as_nanos(),
        samples.last().copied().unwrap_or_default().as_nanos(),
    );
}

/// Times every single call, all engines in turn on each query, and prints the percentiles.
fn latency_report(engines: &Engines, n_rounds: usize) {
    let mut samples: [Vec<Duration>; 3] =
        std::array::from_fn(|_| Vec::with_capacity(n_rounds * engines.queries.len()));
    // Each engine asks all queries in turn, then the next engine, so that no engine asks a
    // query right after another engine asked it (the two tantivy calls share its caches); the
    // engine that goes first changes every round. One round first, untimed, warms the caches.
    for round_idx in 0..=n_rounds {
        for engine_offset in 0..ENGINE_NAMES.len() {
            let engine_idx = (round_idx + engine_offset) % ENGINE_NAMES.len();
            for query in &engines.queries {
                let elapsed = timed_call(engines, engine_idx, query);
                if round_idx > 0 {
                    samples[engine_idx].push(elapsed);
                }
            }
        }
    }
    for (engine, engine_samples) in ENGINE_NAMES.iter().zip(samples.iter_mut()) {
        print_latency(
            "context_latency",
            engine,
            engines.n_sections,
            engine_samples,
            "",
        );
    }
}

/// Times every single call of each engine alone, all its rounds back to back after one untimed,
/// and prints the percentiles as `context_latency_alone` lines.
fn alone_latency_report(engines: &Engines, n_rounds: usize) {
    for (engine_idx, engine) in ENGINE_NAMES.iter().enumerate() {
        let mut samples = Vec::with_capacity(n_rounds * engines.queries.len());
        for round_idx in 0..=n_rounds {
            for query in &engines.queries {
                let elapsed = timed_call(engines, engine_idx, query);
                if round_idx > 0 {
                    samples.push(elapsed);
                }
            }
        }
        print_latency(
            "context_latency_alone",
            engine,
            engines.n_sections,
            &mut samples,
            "",
        );
    }
}

/// Times single calls with cold caches: before each call, untimed, [`EVICT_BYTES`] of other data
/// are written, so the call reads its index from memory. Engines and queries take turns as in
/// [`latency_report`].
fn cold_latency_report(engines: &Engines, n_rounds: usize) {
    let mut other_data = vec![0u8; EVICT_BYTES];
    let mut samples: [Vec<Duration>; 3] =
        std::array::from_fn(|_| Vec::with_capacity(n_rounds * engines.queries.len()));
    for round_idx in 0..n_rounds {
        for engine_offset in 0..ENGINE_NAMES.len() {
            let engine_idx = (round_idx + engine_offset) % ENGINE_NAMES.len();
            for query in &engines.queries {
                // One byte a cache line brings each line in, as owned.
                for line in other_data.chunks_mut(64) {
                    line[0] = line[0].wrapping_add(1);
                }
                black_box(&mut other_data);
                samples[engine_idx].push(timed_call(engines, engine_idx, query));
            }
        }
    }
    let evicted = format!(" evict_mib={}", EVICT_BYTES >> 20);
    for (engine, engine_samples) in ENGINE_NAMES.iter().zip(samples.iter_mut()) {
        print_latency(
            "context_latency_cold",
            engine,
            engines.n_sections,
            engine_samples,
            &evicted,
        );
    }
}

fn criterion_groups(criterion: &mut Criterion, engines: &Engines) {
    let mut group = criterion.benchmark_group(format!("context_ask_{}", engines.n_sections));
    let n_queries = engines.queries.len();
    group.bench_function(BenchmarkId::new("fourfold", "ask"), |bencher| {
        let mut query_idx = 0;
        bencher.iter(|| {
            query_idx = (query_idx + 1) % n_queries;
            black_box(
                engines
                    .store
                    .ask(&engines.queries[query_idx], BUDGET_TOKENS),
            )
        })
    });
    group.bench_function(BenchmarkId::new("tantivy", "ask"), |bencher| {
        let mut query_idx = 0;
        bencher.iter(|| {
            query_idx = (query_idx + 1) % n_queries;
            black_box(engines.tantivy.search(&engines.queries[query_idx]))
        })
    });
    group.bench_function(BenchmarkId::new("tantivy_fetch", "ask"), |bencher| {
        let mut query_idx = 0;
        bencher.iter(|| {
            query_idx = (query_idx + 1) % n_queries;
            black_box(
                engines
                    .tantivy
                    .search_and_fetch(&engines.queries[query_idx]),
            )
        })
    });
    group.finish();
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (n_documents, n_rounds, n_cold_rounds) = if full {
        (N_DOCUMENTS, N_LATENCY_ROUNDS, N_COLD_ROUNDS)
    } else {
        (N_DOCUMENTS_QUICK, 1, 1)
    };
    let engines = build(n_documents);
    latency_report(&engines, n_rounds);
    alone_latency_report(&engines, n_rounds);
    cold_latency_report(&engines, n_cold_rounds);
    let mut criterion = Criterion::default().configure_from_args();
    criterion_groups(&mut criterion, &engines);
    criterion.final_summary();
}
