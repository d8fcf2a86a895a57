//! `ContextStore`: versioned documents, served as the current canonical sections.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fourfold::context::{
    AskOptions as CoreAskOptions, Change, ContextStore as CoreContextStore, ContextStoreBuilder,
    IngestReport, SectionRead,
};
use napi::bindgen_prelude::{AsyncTask, Env, Object, Promise, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::{json, Value};

use crate::error::{shield, Fallible, FourfoldError};
use crate::json::to_json;
use crate::task::{on_own_thread, JsonTask};

/// How to build a standalone `ContextStore`.
#[napi(object)]
pub struct ContextStoreOptions {
    /// Key prefixes (such as `legacy/`) whose documents are never canonical.
    pub archive: Option<Vec<String>>,
    /// Keys canonical over their copies.
    pub pin: Option<Vec<String>>,
}

/// How to open a `ContextStore` saved in a folder.
#[napi(object)]
pub struct OpenOptions {
    /// Key prefixes (such as `legacy/`) whose documents are never canonical.
    pub archive: Option<Vec<String>>,
    /// Keys canonical over their copies.
    pub pin: Option<Vec<String>>,
    /// Opens the snapshot saved before the latest one, for when the latest is damaged.
    pub previous: Option<bool>,
}

/// How to ask.
#[napi(object)]
pub struct AskOptions {
    /// The most tokens to serve (o200k_base).
    pub budget_tokens: i64,
    /// The most sections to serve (default 5).
    pub max_hits: Option<u32>,
    /// Also list stale and duplicate copies that match, as pointers.
    pub with_copies: Option<bool>,
}

/// One document of `putMany`.
#[napi(object)]
pub struct PutDocument {
    /// The document's key.
    pub key: String,
    /// Its text.
    pub text: String,
}

/// The `(key, text)` pairs of `putMany`'s documents.
fn pairs(documents: Vec<PutDocument>) -> Vec<(String, String)> {
    documents
        .into_iter()
        .map(|document| (document.key, document.text))
        .collect()
}

/// What `save` wrote.
#[napi(object)]
pub struct SnapshotInfo {
    /// The snapshot's size in bytes.
    pub n_bytes: i64,
    /// The live documents saved.
    pub n_documents: i64,
}

/// A JS function called with each progress report of an ingest.
type ProgressListener =
    ThreadsafeFunction<Value, Unknown<'static>, Value, napi::Status, false, true>;

/// A JS reranker as the JS layer wraps it: called with `{ query, candidates }` as JSON, it
/// returns a Promise of `{ scores }` or `{ error }` as JSON, and never throws.
type RerankFunction =
    ThreadsafeFunction<String, Promise<String>, String, napi::Status, false, true>;

/// What `setReranker` reads besides the function.
#[napi(object)]
pub struct RerankOptions {
    /// How many of the search's best candidates the reranker orders (default 20).
    pub depth: Option<i64>,
    /// How long an ask waits for the reranker's answer, in milliseconds (default 10,000); past
    /// it, the ask keeps the search's order and says so in `rerankError`.
    pub timeout_ms: Option<f64>,
}

/// How long an ask waits for a JS reranker unless told: a `CommandReranker`'s default too.
const RERANK_TIMEOUT: Duration = Duration::from_secs(10);

/// A JS function as a store's reranker. It runs on the JS thread, called from the worker thread
/// an `ask` runs on, which waits for the Promise it returns, up to `timeout`; `askSync`, which
/// holds the JS thread, cannot wait for it and keeps the search's order.
struct JsReranker {
    function: RerankFunction,
    js_thread: std::thread::ThreadId,
    timeout: Duration,
}

/// Wakes the thread that waits in [`wait_until`].
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready or `deadline` passes (`None`).
///
/// A plain `block_on` has no deadline, and a reranker's Promise that never settles (a
/// hosted API that hangs, or a JS environment torn down before it could settle) would then
/// hold the ask's thread, one of libuv's few, for good.
fn wait_until<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        // A wake before the park makes it return at once; a spurious return polls again.
        std::thread::park_timeout(left);
    }
}

impl fourfold::context::Reranker for JsReranker {
    fn rerank(
        &self,
        query: &str,
        candidates: &[fourfold::context::RerankCandidate],
    ) -> Result<Vec<f32>, String> {
        if std::thread::current().id() == self.js_thread {
            return Err(
                "a JS reranker runs in ask(), not in askSync(), which holds the JS thread"
                    .to_string(),
            );
        }
        let deadline = Instant::now() + self.timeout;
        let input = json!({ "query": query, "candidates": candidates }).to_string();
        let (sent, received) = std::sync::mpsc::channel();
        let status = self.function.call_with_return_value(
            input,
            ThreadsafeFunctionCallMode::Blocking,
            move |promise, _| {
                let _ = sent.send(promise);
                Ok(())
            },
        );
        if status != napi::Status::Ok {
            return Err(format!("the reranker could not be called: {status}"));
        }
        let timed_out = || {
            format!(
                "the reranker did not answer within {} ms",
                self.timeout.as_millis()
            )
        };
        let promise =
            match received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(promise) => promise.map_err(|error| {
                    format!("the reranker did not return a Promise: {}", error.reason)
                })?,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Err(timed_out()),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the JS environment closed before the reranker ran".to_string())
                }
            };
        let answer = wait_until(promise, deadline)
            .ok_or_else(timed_out)?
            .map_err(|error| format!("the reranker failed: {}", error.reason))?;
        #[derive(serde::Deserialize)]
        struct Answer {
            scores: Option<Vec<f64>>,
            error: Option<String>,
        }
        match serde_json::from_str::<Answer>(&answer) {
            Ok(Answer {
                scores: Some(scores),
                ..
            }) => Ok(scores.into_iter().map(|score| score as f32).collect()),
            Ok(Answer {
                error: Some(error), ..
            }) => Err(error),
            _ => Err(format!("the reranker's answer is not understood: {answer}")),
        }
    }
}

/// What `ingestDir` reads.
#[napi(object, object_to_js = false)]
pub struct IngestOptions {
    /// Globs of the relative paths to put (default: every text file).
    pub globs: Option<Vec<String>>,
    /// The folder path to key the files under (`'docs'` keys `auth.md` `docs/auth.md`, the path
    /// a policy's `read` rules name when the folder is the workspace's `docs/`); default none.
    pub prefix: Option<String>,
    /// Called on the JS thread with the report so far after each file; the ingest waits for it,
    /// so the calls come in order and all before the Promise settles. If it throws, it is not
    /// called again, and the Promise rejects with what it threw once the ingest is done.
    #[napi(ts_type = "(report: import('./lib/types').IngestReport) => void")]
    pub on_progress: Option<ProgressListener>,
}

/// A count from JS as the `u64` the core wants.
pub fn to_u64(value: i64, what: &str) -> Fallible<u64> {
    u64::try_from(value).map_err(|_| {
        FourfoldError::invalid(format!(
            "`{what}` must be a non-negative integer, not {value}"
        ))
    })
}

/// The core's ask options for `options`.
pub fn ask_options(options: &AskOptions) -> Fallible<CoreAskOptions> {
    let mut core = CoreAskOptions::budget(to_u64(options.budget_tokens, "budgetTokens")?);
    if let Some(max_hits) = options.max_hits {
        core.max_hits = max_hits as usize;
    }
    core.with_copies = options.with_copies.unwrap_or(false);
    Ok(core)
}

/// A store builder with the `archive` prefixes and `pin`ned keys of `options`.
pub fn builder(options: Option<ContextStoreOptions>) -> ContextStoreBuilder {
    let mut builder = CoreContextStore::builder();
    if let Some(options) = options {
        for prefix in options.archive.unwrap_or_default() {
            builder = builder.archive(&prefix);
        }
        for key in options.pin.unwrap_or_default() {
            builder = builder.pin(&key);
        }
    }
    builder
}

/// The current canonical answer on demand: versioned documents split into sections, each marked
/// canonical, stale or duplicate, searched with BM25.
#[napi]
pub struct ContextStore {
    store: CoreContextStore,
}

impl ContextStore {
    /// A JS store sharing `store`.
    pub fn wrap(store: CoreContextStore) -> ContextStore {
        ContextStore { store }
    }
}

#[napi]
impl ContextStore {
    /// An empty store in memory.
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<ContextStoreOptions>) -> napi::Result<ContextStore> {
        shield(&env, || {
            Ok(ContextStore {
                store: builder(options).build(),
            })
        })
    }

    /// Opens the store saved in the folder `dir` (created if missing; empty if nothing was saved
    /// there yet). Each later `put`, `delete` and `record` is written to the folder's journal
    /// before it is applied, so nothing is lost without a save; `save` folds the journal into a
    /// snapshot, and an `ingestDir` that changed something saves one. A damaged snapshot or
    /// journal entry throws `FOURFOLD_CONTEXT_ERROR` and leaves the files as they were;
    /// `{ previous: true }` opens the snapshot saved before it (with the journal, it gives the
    /// same documents).
    #[napi(factory)]
    pub fn open(env: Env, dir: String, options: Option<OpenOptions>) -> napi::Result<ContextStore> {
        shield(&env, || {
            let file_store: Arc<dyn fourfold::Store> = Arc::new(fourfold::FileStore::open(&dir)?);
            let (builder_options, previous) = match options {
                Some(options) => (
                    Some(ContextStoreOptions {
                        archive: options.archive,
                        pin: options.pin,
                    }),
                    options.previous.unwrap_or(false),
                ),
                None => (None, false),
            };
            let builder = builder(builder_options);
            let store = if previous {
                builder.open_previous(file_store)?
            } else {
                builder.open(file_store)?
            };
            Ok(ContextStore { store })
        })
    }

    /// Saves a snapshot where the store was opened from, keeping the previous one beside it
    /// (the journal entries both hold are deleted). A store made with `new ContextStore()` has
    /// nowhere to save: `FOURFOLD_CONTEXT_ERROR`.
    #[napi]
    pub fn save(&self, env: Env) -> napi::Result<SnapshotInfo> {
        shield(&env, || {
            let info = self.store.save()?;
            Ok(SnapshotInfo {
                n_bytes: info.n_bytes as i64,
                n_documents: info.n_documents as i64,
            })
        })
    }

    /// Puts a new version of document `key`; the same text again changes nothing.
    #[napi(ts_return_type = "import('./lib/types').DocVersion")]
    pub fn put(&self, env: Env, key: String, text: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.store.put(&key, &text)?))
    }

    /// Puts several documents in order, as that many calls to `put` would, off the JS thread:
    /// they are split, counted and indexed on every core; their versions, in order. Every key is
    /// checked before anything is put: an invalid key puts nothing and rejects with
    /// `FOURFOLD_INVALID_REQUEST`.
    #[napi(ts_return_type = "Promise<import('./lib/types').DocVersion[]>")]
    pub fn put_many(&self, documents: Vec<PutDocument>) -> AsyncTask<JsonTask> {
        let store = self.store.clone();
        AsyncTask::new(JsonTask::new(move || {
            to_json(&store.put_many(&pairs(documents))?)
        }))
    }

    /// Folds what `put` and `delete` changed since the index last merged into its main segment;
    /// whether there was anything to fold in. After a bulk load through `put` it makes the asks
    /// that follow faster (`ingestDir` already does it). It runs on the JS thread while it
    /// rebuilds the index (160 to 320 ms on 100,000 sections); asks already on libuv's threads
    /// go on meanwhile.
    #[napi]
    pub fn compact(&self, env: Env) -> napi::Result<bool> {
        shield(&env, || Ok(self.store.compact()))
    }

    /// Deletes document `key`; whether it existed.
    #[napi]
    pub fn delete(&self, env: Env, key: String) -> napi::Result<bool> {
        shield(&env, || Ok(self.store.delete(&key)?))
    }

    /// The current version of document `key`, or `null`; with `version`, that version (old
    /// versions stay readable after later puts and a delete), or `null` if it has none. A
    /// negative `version` throws `FOURFOLD_INVALID_REQUEST`.
    #[napi(ts_return_type = "import('./lib/types').Document | null")]
    pub fn get(&self, env: Env, key: String, version: Option<i64>) -> napi::Result<Value> {
        shield(&env, || {
            let document = match version {
                Some(version) => self.store.get_version(&key, to_u64(version, "version")?),
                None => self.store.get(&key),
            };
            match document {
                Some(document) => to_json(&document),
                None => Ok(Value::Null),
            }
        })
    }

    /// Every version of document `key`, oldest first.
    #[napi(ts_return_type = "import('./lib/types').DocVersion[]")]
    pub fn history(&self, env: Env, key: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.store.history(&key)))
    }

    /// The keys of the live documents.
    #[napi]
    pub fn keys(&self, env: Env) -> napi::Result<Vec<String>> {
        shield(&env, || Ok(self.store.keys()))
    }

    /// The section `id` at its current version, or `null`.
    #[napi(ts_return_type = "import('./lib/types').Section | null")]
    pub fn get_section(&self, env: Env, id: String) -> napi::Result<Value> {
        shield(&env, || match self.store.get_section(&id) {
            Some(section) => to_json(&section),
            None => Ok(Value::Null),
        })
    }

    /// The canonical sections that answer `query` within the budget, best first, searched off
    /// the JS thread.
    #[napi(ts_return_type = "Promise<import('./lib/types').Answer>")]
    pub fn ask(&self, query: String, options: AskOptions) -> AsyncTask<JsonTask> {
        let store = self.store.clone();
        AsyncTask::new(JsonTask::new(move || {
            to_json(&store.ask_with(&query, &ask_options(&options)?))
        }))
    }

    /// Has every later `ask` (the store's, and its sessions') give the search's best `depth`
    /// candidates to `reranker(query, candidates)` (a cross-encoder's scores, a hosted rerank
    /// API's) and fill the budget in its order; `null` goes back to the search's order. It
    /// returns one number per candidate, or a Promise of them; if it throws, returns anything
    /// else or does not answer within `timeoutMs`, the ask keeps the search's order and
    /// `answer.rerankError` says why.
    #[napi(
        ts_args_type = "reranker: ((query: string, candidates: import('./lib/types').RerankCandidate[]) => number[] | Promise<number[]>) | null, options?: RerankOptions"
    )]
    pub fn set_reranker(
        &self,
        env: Env,
        reranker: Option<RerankFunction>,
        options: Option<RerankOptions>,
    ) -> napi::Result<()> {
        shield(&env, || {
            let (depth, timeout_ms) =
                options.map_or((None, None), |options| (options.depth, options.timeout_ms));
            let depth = depth.unwrap_or(20);
            if depth < 1 {
                return Err(FourfoldError::invalid(format!(
                    "a reranker's depth is at least 1, not {depth}"
                )));
            }
            let timeout = match timeout_ms {
                None => RERANK_TIMEOUT,
                Some(ms) => Duration::try_from_secs_f64(ms / 1000.0)
                    .ok()
                    .filter(|timeout| !timeout.is_zero())
                    .ok_or_else(|| {
                        FourfoldError::invalid(format!(
                            "a reranker's timeoutMs is a positive number of milliseconds, not {ms}"
                        ))
                    })?,
            };
            let reranker = reranker.map(|function| {
                Arc::new(JsReranker {
                    function,
                    js_thread: std::thread::current().id(),
                    timeout,
                }) as Arc<dyn fourfold::context::Reranker>
            });
            self.store
                .set_reranker(reranker, usize::try_from(depth).unwrap_or(usize::MAX));
            Ok(())
        })
    }

    /// `ask`, on the JS thread: for a small store, where a thread hop costs more than the search.
    #[napi(ts_return_type = "import('./lib/types').Answer")]
    pub fn ask_sync(&self, env: Env, query: String, options: AskOptions) -> napi::Result<Value> {
        shield(&env, || {
            to_json(&self.store.ask_with(&query, &ask_options(&options)?))
        })
    }

    /// Puts every text file under `root` (matching `globs`, if given), keyed by its relative path
    /// (under `prefix`, if given), off the JS thread. Unchanged files are not re-indexed; keys whose files are gone are deleted.
    #[napi(ts_return_type = "Promise<import('./lib/types').IngestReport>")]
    pub fn ingest_dir(&self, root: String, options: Option<IngestOptions>) -> AsyncTask<JsonTask> {
        let store = self.store.clone();
        ingest_task(root, options, move |root, prefix, globs, progress| {
            Ok(store.ingest_dir_as(root, prefix, globs, progress)?)
        })
    }

    /// Which of the sections read (the hits or sections served, or `{ key, sectionId, version }`)
    /// have changed or gone since.
    #[napi(
        ts_args_type = "reads: Array<import('./lib/types').Hit | import('./lib/types').Section | import('./lib/types').SectionRead>",
        ts_return_type = "import('./lib/types').Change[]"
    )]
    pub fn changed_since(&self, env: Env, reads: Unknown<'_>) -> napi::Result<Value> {
        shield(&env, || {
            // Read here rather than as a `Value` argument, so that a value JSON cannot hold is a
            // fourfold error too.
            let reads: Value = env.from_js_value(reads).map_err(|error| {
                FourfoldError::invalid(format!(
                    "`changedSince` cannot read its argument: {}",
                    error.reason
                ))
            })?;
            let reads = section_reads(reads)?;
            let changes: Vec<Value> = self
                .store
                .changed_since(&reads)
                .iter()
                .map(change_json)
                .collect();
            Ok(Value::Array(changes))
        })
    }

    /// Writes a finding back as a new section of document `records/<topic>.md`, so that asks
    /// serve it.
    #[napi(ts_return_type = "import('./lib/types').DocVersion")]
    pub fn record(&self, env: Env, topic: String, text: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.store.record(&topic, &text)?))
    }

    /// Takes in what other processes wrote to the folder this store was opened from since it
    /// last did (a snapshot one saved, journal entries past this store's own), reloading it;
    /// whether it did. Subscribers hear of each document that differs. A store made with
    /// `new ContextStore()` has nothing to take in: `false`.
    #[napi]
    pub fn refresh(&self, env: Env) -> napi::Result<bool> {
        shield(&env, || Ok(self.store.refresh()?))
    }

    /// A feed of every change to the store from now on: each put, delete and record.
    #[napi]
    pub fn subscribe(&self, env: Env) -> napi::Result<ChangeFeed> {
        shield(&env, || {
            Ok(ChangeFeed {
                feed: self.store.subscribe(),
            })
        })
    }
}

/// What `changedSince` was given, as the core's reads.
fn section_reads(reads: Value) -> Fallible<Vec<SectionRead>> {
    match reads {
        Value::Array(reads) => reads
            .iter()
            .enumerate()
            .map(|(read_idx, read)| section_read(read_idx, read))
            .collect(),
        other => Err(FourfoldError::invalid(format!(
            "`changedSince` takes an array of the hits or sections read, not {}",
            kind(&other)
        ))),
    }
}

/// A hit (`sectionId`), a section (`id`) or `{ key, sectionId, version }` as a read.
fn section_read(read_idx: usize, read: &Value) -> Fallible<SectionRead> {
    let invalid = |what: String| {
        FourfoldError::invalid(format!(
            "`changedSince` read {read_idx} {what}; pass the hits or sections read, or `{{ key, sectionId, version }}`"
        ))
    };
    let Value::Object(object) = read else {
        return Err(invalid(format!("is {}, not an object", kind(read))));
    };
    let text = |name: &str| match object.get(name) {
        Some(Value::String(text)) => Ok(Some(text.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(other) => Err(invalid(format!(
            "has a `{name}` that is {}, not a string",
            kind(other)
        ))),
    };
    let key = text("key")?.ok_or_else(|| invalid("has no `key`".to_string()))?;
    let section_id = match text("sectionId")? {
        Some(section_id) => section_id,
        None => text("id")?.ok_or_else(|| invalid("has no `sectionId` (or `id`)".to_string()))?,
    };
    let version = match object.get("version") {
        None | Some(Value::Null) => return Err(invalid("has no `version`".to_string())),
        Some(version) => version_of(version).ok_or_else(|| {
            invalid(format!(
                "has a `version` of `{version}`, not a whole number 0 or more"
            ))
        })?,
    };
    Ok(SectionRead {
        key,
        section_id,
        version,
    })
}

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A JS number that is a whole number from 0 to 2^53 - 1, as a `u64`.
fn version_of(value: &Value) -> Option<u64> {
    // INVARIANT: napi reads a whole JS number as an integer (saturating past 2^63) and any other
    // as a float, which `as_u64` refuses.
    value
        .as_u64()
        .filter(|version| *version <= MAX_SAFE_INTEGER)
}

/// What kind of JS value `value` is, for a message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A change as JS sees it: the read's fields beside what happened, as a `FOURFOLD_STALE_CONTEXT`
/// error's `changes` give them.
pub fn change_json(change: &Change) -> Value {
    json!({
        "key": change.read.key,
        "sectionId": change.read.section_id,
        "version": change.read.version,
        "reason": change.reason,
        "currentVersion": change.current_version,
        "currentPointer": change.current_pointer,
    })
}

/// The changes to a `ContextStore` since `subscribe`, oldest first. A feed that falls 1,024
/// changes behind misses the later ones until it is read again, counted by `missed`
/// (`changedSince` still tells what changed).
#[napi]
pub struct ChangeFeed {
    feed: fourfold::context::ChangeFeed,
}

/// A wait of `timeout_ms` milliseconds (`None`: no limit).
fn wait_of(timeout_ms: Option<f64>) -> Fallible<Option<Duration>> {
    timeout_ms
        .map(|timeout_ms| {
            Duration::try_from_secs_f64(timeout_ms / 1000.0).map_err(|_| {
                FourfoldError::invalid(format!(
                    "`timeoutMs` must be a number of milliseconds, 0 or more, not `{timeout_ms}`"
                ))
            })
        })
        .transpose()
}

#[napi]
impl ChangeFeed {
    /// The next change, waited for on a thread of its own (not libuv's pool, which `ask` and
    /// `ingestDir` need) for up to `timeoutMs` milliseconds; `null` if none came in time, the
    /// feed was closed or the store is gone. Without a timeout it waits until one of those,
    /// keeping the process alive meanwhile: `close()` ends it.
    #[napi(ts_return_type = "Promise<import('./lib/types').ContextChange | null>")]
    pub fn next<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let feed = self.feed.clone();
        on_own_thread(env, "fourfold-feed", move || {
            // A wait too long to add to now is a wait without end.
            let deadline = wait_of(timeout_ms)?.and_then(|wait| Instant::now().checked_add(wait));
            feed.next_until(deadline)
                .map_or(Ok(Value::Null), |change| to_json(&change))
        })
    }

    /// Stops the feed: waiting `next` calls resolve `null` at once, and later `next` and `drain`
    /// calls give nothing.
    #[napi]
    pub fn close(&self) {
        self.feed.close();
    }

    /// Whether `close` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.feed.is_closed()
    }

    /// How many changes this feed missed because 1,024 were already waiting to be read.
    #[napi(getter)]
    pub fn missed(&self) -> f64 {
        // Exact up to 2^53 changes.
        self.feed.missed() as f64
    }

    /// Every change waiting now, oldest first, without waiting for more.
    #[napi(ts_return_type = "import('./lib/types').ContextChange[]")]
    pub fn drain(&self, env: Env) -> napi::Result<Value> {
        shield(&env, || to_json(&self.feed.drain()))
    }
}

/// An ingest of `root` with the globs of `options`, off the JS thread, its report as JSON.
fn ingest_task(
    root: String,
    options: Option<IngestOptions>,
    ingest: impl FnOnce(
            &std::path::Path,
            &str,
            &[&str],
            &mut dyn FnMut(&IngestReport),
        ) -> Fallible<IngestReport>
        + Send
        + 'static,
) -> AsyncTask<JsonTask> {
    let (globs, prefix, progress) = options.map_or((None, None, None), |options| {
        (options.globs, options.prefix, options.on_progress)
    });
    let globs = globs.unwrap_or_default();
    let prefix = prefix.unwrap_or_default();
    AsyncTask::new(JsonTask::new(move || {
        let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
        let mut on_file = |report: &IngestReport| {
            if let Some(listener) = &progress {
                report_progress(listener, report);
            }
        };
        to_json(&ingest(
            &PathBuf::from(root),
            &prefix,
            &globs,
            &mut on_file,
        )?)
    }))
}

/// Calls `listener` with `report` on the JS thread and waits until it has run, so that a
/// listener sees every report in order before the ingest's Promise settles. The JS layer wraps
/// the listener so that it never throws.
fn report_progress(listener: &ProgressListener, report: &IngestReport) {
    let Ok(report) = to_json(report) else {
        return;
    };
    let (ran, wait) = std::sync::mpsc::channel::<()>();
    let status = listener.call_with_return_value(
        report,
        ThreadsafeFunctionCallMode::Blocking,
        move |_, _| {
            let _ = ran.send(());
            Ok(())
        },
    );
    // A queued call runs on the JS thread once it is free. Only if the environment is torn
    // down first does it never run, and then this thread waits until the process ends.
    if status == napi::Status::Ok {
        let _ = wait.recv();
    }
}

/// The fleet's shared documents (`[context] shared = true` with a PostgreSQL `[store]`): a put or
/// a delete here changes the document for every process of the fleet, which each apply it to
/// their own context store within about a second.
#[napi]
pub struct SharedDocuments {
    fourfold: fourfold::Fourfold,
}

impl SharedDocuments {
    /// The shared documents of `fourfold`, if it has some.
    pub fn of(fourfold: &fourfold::Fourfold) -> Option<SharedDocuments> {
        fourfold.shared_documents().map(|_| SharedDocuments {
            fourfold: fourfold.clone(),
        })
    }

    fn documents(&self) -> Fallible<&fourfold::context::SharedDocuments> {
        shared_documents_of(&self.fourfold)
    }
}

/// The shared documents of `fourfold`.
fn shared_documents_of(
    fourfold: &fourfold::Fourfold,
) -> Fallible<&fourfold::context::SharedDocuments> {
    // INVARIANT: a SharedDocuments is made only for a Fourfold that has shared documents, which
    // it keeps for life.
    fourfold.shared_documents().ok_or_else(|| {
        FourfoldError::new(
            crate::error::FOURFOLD_ERROR,
            "this Fourfold has no shared documents".to_string(),
        )
    })
}

#[napi]
impl SharedDocuments {
    /// Puts a new version of document `key` for the whole fleet; the version as this process
    /// applied it (every process applies the same).
    #[napi(ts_return_type = "import('./lib/types').DocVersion")]
    pub fn put(&self, env: Env, key: String, text: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.documents()?.put(&key, &text)?))
    }

    /// Puts several documents for the whole fleet in one append to the shared log, off the JS
    /// thread: every process applies them together, in order, as that many calls to `put`
    /// would; their versions as this process applied them. Every key is checked first: an
    /// invalid key appends nothing and rejects with `FOURFOLD_INVALID_REQUEST`.
    #[napi(ts_return_type = "Promise<import('./lib/types').DocVersion[]>")]
    pub fn put_many(&self, documents: Vec<PutDocument>) -> AsyncTask<JsonTask> {
        let fourfold = self.fourfold.clone();
        AsyncTask::new(JsonTask::new(move || {
            to_json(&shared_documents_of(&fourfold)?.put_many(&pairs(documents))?)
        }))
    }

    /// Retires document `key` for the whole fleet; whether this process held it.
    #[napi]
    pub fn delete(&self, env: Env, key: String) -> napi::Result<bool> {
        shield(&env, || Ok(self.documents()?.delete(&key)?))
    }

    /// Appends a finding to the record of `topic` (`records/<topic>.md`) as the fleet has it, for
    /// every process.
    #[napi(ts_return_type = "import('./lib/types').DocVersion")]
    pub fn record(&self, env: Env, topic: String, text: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.documents()?.record(&topic, &text)?))
    }

    /// Applies the puts and deletes other processes made since the last refresh, now rather than
    /// within the second; how many.
    #[napi]
    pub fn refresh(&self, env: Env) -> napi::Result<i64> {
        shield(&env, || Ok(self.documents()?.refresh()? as i64))
    }

    /// Publishes the files under `root` (matching `globs`, if given) to the whole fleet, off the
    /// JS thread: changed files become new versions, unchanged ones append nothing, and documents
    /// an ingest of `root` put before whose files are gone are retired.
    #[napi(ts_return_type = "Promise<import('./lib/types').IngestReport>")]
    pub fn ingest_dir(&self, root: String, options: Option<IngestOptions>) -> AsyncTask<JsonTask> {
        let fourfold = self.fourfold.clone();
        ingest_task(root, options, move |root, prefix, globs, progress| {
            Ok(shared_documents_of(&fourfold)?.ingest_dir_as(root, prefix, globs, progress)?)
        })
    }

    /// This process's context store, kept current.
    #[napi(getter)]
    pub fn context(&self, env: Env) -> napi::Result<ContextStore> {
        shield(&env, || {
            Ok(ContextStore::wrap(self.documents()?.context().clone()))
        })
    }
}
