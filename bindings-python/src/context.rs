//! `fourfold.ContextStore`, `Answer`, `Hit`, `Rename`, `Section` and `Change`: the context face.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fourfold::context::{AskOptions, ContextStoreBuilder, IngestReport, SectionRead};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{repr, repr_list, to_python};
use crate::error::{invalid_request, no_panic, OrRaise};

/// One section served for a query: where it is, which version, whether it is the canonical copy,
/// and its text (or `None` when the session already holds it unchanged).
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Hit {
    /// The document's key.
    #[pyo3(get)]
    key: String,
    /// The section's stable id.
    #[pyo3(get)]
    section_id: String,
    /// The headings above it, outermost first.
    #[pyo3(get)]
    heading_path: Vec<String>,
    /// `key:line`, for a citation.
    #[pyo3(get)]
    pointer: String,
    /// Its first line (1-based).
    #[pyo3(get)]
    line_start: u32,
    /// Its last line.
    #[pyo3(get)]
    line_end: u32,
    /// The document version it was served from.
    #[pyo3(get)]
    version: u64,
    /// `canonical`, `stale` or `duplicate`.
    #[pyo3(get)]
    freshness: &'static str,
    /// Why it is marked so, for stale and duplicate copies.
    #[pyo3(get)]
    reason: Option<String>,
    /// Its size in tokens (o200k_base).
    #[pyo3(get)]
    tokens: u32,
    /// Its text; `None` when the session was served this version before.
    #[pyo3(get)]
    text: Option<String>,
    /// Whether the text was cut to fit the budget.
    #[pyo3(get)]
    truncated: bool,
    /// Whether the session already holds this version.
    #[pyo3(get)]
    already_served: bool,
    /// Its relevance score.
    #[pyo3(get)]
    score: f32,
    inner: fourfold::context::Hit,
}

impl From<fourfold::context::Hit> for Hit {
    fn from(hit: fourfold::context::Hit) -> Hit {
        Hit {
            key: hit.key.clone(),
            section_id: hit.section_id.clone(),
            heading_path: hit.heading_path.clone(),
            pointer: hit.pointer.clone(),
            line_start: hit.line_start,
            line_end: hit.line_end,
            version: hit.version,
            freshness: hit.freshness.name(),
            reason: hit.reason.clone(),
            tokens: hit.tokens,
            text: hit.text.clone(),
            truncated: hit.truncated,
            already_served: hit.already_served,
            score: hit.score,
            inner: hit,
        }
    }
}

#[pymethods]
impl Hit {
    /// The hit as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Hit(pointer={}, heading_path={}, version={}, freshness={}, tokens={})",
            repr(&self.pointer),
            repr_list(&self.heading_path),
            self.version,
            repr(self.freshness),
            self.tokens
        )
    }
}

/// The answer to `ask`: the canonical sections that fit the budget, best first.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Answer {
    /// The sections served.
    #[pyo3(get)]
    hits: Vec<Py<Hit>>,
    /// Stale and duplicate copies of them, as pointers (only with `with_copies=True`).
    #[pyo3(get)]
    copies: Vec<Py<Hit>>,
    /// Tokens of the text served.
    #[pyo3(get)]
    tokens_served: u64,
    /// Tokens of the whole documents the hits come from (what rereading them would cost).
    #[pyo3(get)]
    tokens_baseline: u64,
    /// The budget asked for.
    #[pyo3(get)]
    budget_tokens: u64,
    /// Old names the query wrote as code that the documents say were renamed; the search
    /// looked for the new names too.
    #[pyo3(get)]
    renames: Vec<Py<Rename>>,
    /// Documents with sections good enough to serve that the session's agent may not read
    /// (the policy's `read` rules), left out; 0 when nothing was.
    #[pyo3(get)]
    withheld: u64,
    /// Whether the store's reranker ordered the hits (their scores are then its own).
    #[pyo3(get)]
    reranked: bool,
    /// Why the reranker could not order them, if it failed: the search's order was kept.
    #[pyo3(get)]
    rerank_error: Option<String>,
    inner: fourfold::context::Answer,
}

/// Calls at most this many of a reranker with a timeout may be running at once: each one past
/// its timeout keeps its thread until the callable returns, so a callable that hangs for good
/// costs at most this many threads, and asks after that keep the search's order at once.
const MAX_RERANK_CALLS_RUNNING: usize = 16;

/// A Python callable as a store's reranker: `reranker(query, candidates)`, each candidate a dict
/// of `key`, `heading_path`, `text` and `score` (the search's), returning one number per
/// candidate (a list, a tuple, a NumPy array), higher for a better answer.
struct PyReranker {
    callable: Arc<Py<PyAny>>,
    /// `None`: the callable runs in the ask's thread, for as long as it takes. Otherwise it runs
    /// in a thread of its own, and the ask waits for it this long.
    timeout: Option<Duration>,
    /// Calls running in threads of their own, finished or not.
    running: Arc<AtomicUsize>,
}

/// Calls `callable(query, candidates)` and reads its scores.
fn call_reranker(
    py: Python<'_>,
    callable: &Py<PyAny>,
    query: &str,
    candidates: &[fourfold::context::RerankCandidate],
) -> Result<Vec<f32>, String> {
    let candidates = to_python(py, &candidates).map_err(|error| error.to_string())?;
    let scores = callable
        .call1(py, (query, candidates))
        .map_err(|error| format!("the reranker raised {error}"))?;
    let not_numbers = |error: PyErr| format!("the reranker did not return numbers: {error}");
    scores
        .bind(py)
        .try_iter()
        .map_err(not_numbers)?
        .map(|score| {
            score
                .and_then(|score| score.extract::<f64>())
                .map(|score| score as f32)
                .map_err(not_numbers)
        })
        .collect()
}

impl fourfold::context::Reranker for PyReranker {
    fn rerank(
        &self,
        query: &str,
        candidates: &[fourfold::context::RerankCandidate],
    ) -> Result<Vec<f32>, String> {
        let Some(timeout) = self.timeout else {
            return Python::attach(|py| call_reranker(py, &self.callable, query, candidates));
        };
        if self.running.fetch_add(1, Ordering::SeqCst) >= MAX_RERANK_CALLS_RUNNING {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err(format!(
                "{MAX_RERANK_CALLS_RUNNING} calls of the reranker are still running"
            ));
        }
        let (send, answer) = std::sync::mpsc::sync_channel(1);
        let callable = Arc::clone(&self.callable);
        let running = Arc::clone(&self.running);
        let (query, candidates) = (query.to_string(), candidates.to_vec());
        let spawned = std::thread::Builder::new()
            .name("fourfold-rerank".to_string())
            .spawn(move || {
                let scores = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    Python::try_attach(|py| call_reranker(py, &callable, &query, &candidates))
                        .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
                }))
                .unwrap_or_else(|_| Err("the reranker's call panicked".to_string()));
                running.fetch_sub(1, Ordering::SeqCst);
                // The ask may have stopped waiting; then nobody reads the scores.
                let _ = send.send(scores);
            });
        if let Err(error) = spawned {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err(format!("could not start the reranker's thread: {error}"));
        }
        match answer.recv_timeout(timeout) {
            Ok(scores) => scores,
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "the reranker did not answer within {} ms",
                timeout.as_millis()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err("the reranker's thread ended without an answer".to_string())
            }
        }
    }
}

/// An old name in a query that a current canonical section says was renamed (a migration
/// guide's "`orm_mode` -> `from_attributes`").
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Rename {
    /// The old name, as the query wrote it.
    #[pyo3(get)]
    old: String,
    /// The name the documents say replaces it.
    #[pyo3(get)]
    new: String,
    /// `key:line` of the section that says so.
    #[pyo3(get)]
    pointer: String,
}

#[pymethods]
impl Rename {
    fn __repr__(&self) -> String {
        format!(
            "Rename(old={}, new={}, pointer={})",
            repr(&self.old),
            repr(&self.new),
            repr(&self.pointer)
        )
    }
}

impl Answer {
    pub(crate) fn new(py: Python<'_>, answer: fourfold::context::Answer) -> PyResult<Answer> {
        let hits = |hits: &[fourfold::context::Hit]| -> PyResult<Vec<Py<Hit>>> {
            hits.iter()
                .map(|hit| Py::new(py, Hit::from(hit.clone())))
                .collect()
        };
        Ok(Answer {
            hits: hits(&answer.hits)?,
            copies: hits(&answer.copies)?,
            tokens_served: answer.tokens_served,
            tokens_baseline: answer.tokens_baseline,
            budget_tokens: answer.budget_tokens,
            renames: answer
                .renames
                .iter()
                .map(|rename| {
                    Py::new(
                        py,
                        Rename {
                            old: rename.old.clone(),
                            new: rename.new.clone(),
                            pointer: rename.pointer.clone(),
                        },
                    )
                })
                .collect::<PyResult<_>>()?,
            withheld: answer.withheld,
            reranked: answer.reranked,
            rerank_error: answer.rerank_error.clone(),
            inner: answer,
        })
    }
}

#[pymethods]
impl Answer {
    /// The answer as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __len__(&self) -> usize {
        self.hits.len()
    }

    fn __repr__(&self) -> String {
        let pointers: Vec<&str> = self
            .inner
            .hits
            .iter()
            .map(|hit| hit.pointer.as_str())
            .collect();
        format!(
            "Answer(hits={}, tokens_served={}, tokens_baseline={})",
            repr_list(&pointers),
            self.tokens_served,
            self.tokens_baseline
        )
    }
}

/// A section of a document version.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Section {
    /// Its stable id.
    #[pyo3(get)]
    id: String,
    /// The document's key.
    #[pyo3(get)]
    key: String,
    /// The document version.
    #[pyo3(get)]
    version: u64,
    /// The headings above it, outermost first.
    #[pyo3(get)]
    heading_path: Vec<String>,
    /// Its first line (1-based).
    #[pyo3(get)]
    line_start: u32,
    /// Its last line.
    #[pyo3(get)]
    line_end: u32,
    /// Its size in tokens (o200k_base).
    #[pyo3(get)]
    tokens: u32,
    /// Its text.
    #[pyo3(get)]
    text: String,
    /// `canonical`, `stale` or `duplicate`.
    #[pyo3(get)]
    freshness: &'static str,
    /// Why it is marked so.
    #[pyo3(get)]
    reason: Option<String>,
    inner: fourfold::context::Section,
}

impl From<fourfold::context::Section> for Section {
    fn from(section: fourfold::context::Section) -> Section {
        Section {
            id: section.id.clone(),
            key: section.key.clone(),
            version: section.version,
            heading_path: section.heading_path.clone(),
            line_start: section.line_start,
            line_end: section.line_end,
            tokens: section.tokens,
            text: section.text.clone(),
            freshness: section.marker.freshness.name(),
            reason: section.marker.reason.clone(),
            inner: section,
        }
    }
}

#[pymethods]
impl Section {
    /// `key:line`, for a citation.
    #[getter]
    fn pointer(&self) -> String {
        self.inner.pointer()
    }

    /// The section as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Section(pointer={}, heading_path={}, version={}, freshness={})",
            repr(&self.inner.pointer()),
            repr_list(&self.heading_path),
            self.version,
            repr(self.freshness)
        )
    }
}

/// A section version an agent read that is no longer current.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Change {
    /// The document's key.
    #[pyo3(get)]
    key: String,
    /// The section's id.
    #[pyo3(get)]
    section_id: String,
    /// The version that was read.
    #[pyo3(get)]
    version: u64,
    /// What happened to it.
    #[pyo3(get)]
    reason: String,
    /// The current version of the document, if it still exists.
    #[pyo3(get)]
    current_version: Option<u64>,
    /// Where the section is now, if it still exists.
    #[pyo3(get)]
    current_pointer: Option<String>,
    inner: fourfold::context::Change,
}

impl From<fourfold::context::Change> for Change {
    fn from(change: fourfold::context::Change) -> Change {
        Change {
            key: change.read.key.clone(),
            section_id: change.read.section_id.clone(),
            version: change.read.version,
            reason: change.reason.clone(),
            current_version: change.current_version,
            current_pointer: change.current_pointer.clone(),
            inner: change,
        }
    }
}

#[pymethods]
impl Change {
    /// The change as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Change(key={}, section_id={}, version={}, reason={})",
            repr(&self.key),
            repr(&self.section_id),
            self.version,
            repr(&self.reason)
        )
    }
}

/// Versioned documents split into sections, each marked canonical, stale or duplicate, served by
/// relevance within a token budget. Safe to share across threads.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct ContextStore {
    pub(crate) inner: fourfold::context::ContextStore,
}

#[pymethods]
impl ContextStore {
    /// An empty in-memory store. Copies under an `archive` prefix are never canonical; a `pin`ned
    /// document is canonical over its copies.
    #[new]
    #[pyo3(signature = (*, archive=Vec::new(), pin=Vec::new()))]
    fn new(archive: Vec<String>, pin: Vec<String>) -> ContextStore {
        ContextStore {
            inner: builder(&archive, &pin).build(),
        }
    }

    /// Opens the store saved under the directory `path` (created if missing; an empty store if
    /// nothing was saved there yet). Each later put, delete and record is written to the
    /// folder's journal before it is applied, so nothing is lost without a save;
    /// :meth:`save` folds the journal into a snapshot, and an ``ingest_dir`` that changed
    /// something saves one. A damaged snapshot or journal entry raises ``ContextError`` and
    /// changes nothing on disk; ``previous=True`` opens the snapshot saved before the latest one
    /// instead (with the journal, it gives the same documents).
    #[staticmethod]
    #[pyo3(signature = (path, *, archive=Vec::new(), pin=Vec::new(), previous=false))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        archive: Vec<String>,
        pin: Vec<String>,
        previous: bool,
    ) -> PyResult<ContextStore> {
        no_panic(|| {
            let inner = py.detach(|| {
                let file_store: Arc<dyn fourfold::Store> =
                    Arc::new(fourfold::FileStore::open(&path)?);
                let builder = builder(&archive, &pin);
                if previous {
                    builder.open_previous(file_store)
                } else {
                    builder.open(file_store)
                }
            });
            Ok(ContextStore {
                inner: inner.or_raise()?,
            })
        })
    }

    /// Saves a snapshot where the store was opened from (the previous snapshot is kept beside
    /// it, and the journal entries both hold are deleted); returns
    /// ``{"n_bytes": ..., "n_documents": ...}``. A store made with ``ContextStore()`` has nowhere
    /// to save and raises ``ContextError``.
    fn save<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        no_panic(|| {
            let info = py.detach(|| self.inner.save()).or_raise()?;
            let saved = PyDict::new(py);
            saved.set_item("n_bytes", info.n_bytes)?;
            saved.set_item("n_documents", info.n_documents)?;
            Ok(saved)
        })
    }

    /// Folds what ``put`` and ``delete`` changed since the index last merged into its main
    /// segment; returns whether there was anything to fold in. After a bulk load through
    /// ``put`` it makes the asks that follow faster (``ingest_dir`` already does it). Other
    /// threads' asks go on while it rebuilds the index; their puts wait for it.
    fn compact(&self, py: Python<'_>) -> PyResult<bool> {
        no_panic(|| Ok(py.detach(|| self.inner.compact())))
    }

    /// Takes in what other processes wrote to the folder this store was opened from since it
    /// last did (a snapshot one saved, journal entries past this store's own), reloading it;
    /// returns whether it did. Subscribers hear of each document that differs. A store made
    /// with ``ContextStore()`` has nothing to take in and returns ``False``.
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        no_panic(|| py.detach(|| self.inner.refresh()).or_raise())
    }

    /// Has every later ask (the store's, and its sessions') give the search's best `depth`
    /// candidates to `reranker(query, candidates)` (a cross-encoder's scores, a hosted rerank
    /// API's) and fill the budget in its order; `None` goes back to the search's order. Each
    /// candidate is a dict of `key`, `heading_path`, `text` and `score`; it returns one number
    /// per candidate, higher for better. If it raises or returns anything else, the ask keeps
    /// the search's order and `answer.rerank_error` says why.
    ///
    /// It runs in a thread of its own, and an ask waits for it `timeout` seconds (10 unless
    /// set), then keeps the search's order with `rerank_error` "did not answer within N ms"; the
    /// call goes on until it returns (Python cannot stop it), and while 16 such calls are still
    /// running, asks keep the search's order at once. `timeout=None` calls it in the ask's own
    /// thread and waits as long as it takes.
    #[pyo3(
        signature = (reranker, depth=20, timeout=Some(10.0)),
        text_signature = "(self, /, reranker, depth=20, timeout=10.0)"
    )]
    fn set_reranker(
        &self,
        reranker: Option<Bound<'_, PyAny>>,
        depth: usize,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        no_panic(|| {
            if depth == 0 {
                return Err(invalid_request(
                    "a reranker's depth is at least 1".to_string(),
                ));
            }
            let timeout = match timeout {
                None => None,
                Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => {
                    Some(Duration::from_secs_f64(seconds))
                }
                Some(seconds) => {
                    return Err(invalid_request(format!(
                        "a reranker's timeout is a number of seconds above 0 and at most a day, not {seconds}"
                    )))
                }
            };
            let reranker = match reranker {
                None => None,
                Some(reranker) if reranker.is_callable() => Some(Arc::new(PyReranker {
                    callable: Arc::new(reranker.unbind()),
                    timeout,
                    running: Arc::new(AtomicUsize::new(0)),
                })
                    as Arc<dyn fourfold::context::Reranker>),
                Some(other) => {
                    return Err(PyTypeError::new_err(format!(
                        "a reranker is a callable, not {}",
                        other.get_type().name()?
                    )))
                }
            };
            self.inner.set_reranker(reranker, depth);
            Ok(())
        })
    }

    /// A feed of every change from now on (a put, a delete, a record): see :class:`ChangeFeed`.
    fn subscribe(&self) -> ChangeFeed {
        ChangeFeed {
            feed: self.inner.subscribe(),
        }
    }

    /// Adds `text` as the next version of document `key`; returns the version record (`key`,
    /// `version`, `hash`, `at_ns`, `n_sections`, `tokens`).
    fn put<'py>(&self, py: Python<'py>, key: &str, text: &str) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let version = py.detach(|| self.inner.put(key, text)).or_raise()?;
            to_python(py, &version)
        })
    }

    /// Puts several documents in order, each a `(key, text)` pair (a dict's `.items()` will do),
    /// as that many calls to `put` would, but splits, counts and indexes them on every core,
    /// without the GIL; returns their version records in order. Every key is checked before
    /// anything is put: an invalid key puts nothing and raises `InvalidRequest`; anything but
    /// pairs of `str` raises `TypeError`.
    fn put_many<'py>(
        &self,
        py: Python<'py>,
        documents: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let documents = document_pairs(documents)?;
            let versions = py.detach(|| self.inner.put_many(&documents)).or_raise()?;
            to_python(py, &versions)
        })
    }

    /// Retires document `key`; returns whether it existed.
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        no_panic(|| py.detach(|| self.inner.delete(key)).or_raise())
    }

    /// The current text of document `key`, or `None`; with `version`, the text of that version
    /// (old versions stay readable after later puts and a delete), or `None` if it has none.
    #[pyo3(signature = (key, version=None))]
    fn get(&self, py: Python<'_>, key: &str, version: Option<u64>) -> PyResult<Option<String>> {
        no_panic(|| {
            Ok(py
                .detach(|| match version {
                    Some(version) => self.inner.get_version(key, version),
                    None => self.inner.get(key),
                })
                .map(|document| document.text))
        })
    }

    /// The section `section_id` as it is now, or `None`.
    fn get_section(&self, py: Python<'_>, section_id: &str) -> PyResult<Option<Section>> {
        no_panic(|| {
            Ok(py
                .detach(|| self.inner.get_section(section_id))
                .map(Section::from))
        })
    }

    /// The keys of the current documents.
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        no_panic(|| Ok(py.detach(|| self.inner.keys())))
    }

    /// Every version of document `key`, oldest first.
    fn history<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| to_python(py, &py.detach(|| self.inner.history(key))))
    }

    /// The canonical current sections that best answer `query` within `budget_tokens`, at most
    /// `max_hits`; `with_copies=True` also lists their stale and duplicate copies as pointers.
    #[pyo3(signature = (query, budget_tokens=2000, *, max_hits=5, with_copies=false))]
    fn ask(
        &self,
        py: Python<'_>,
        query: &str,
        budget_tokens: u64,
        max_hits: usize,
        with_copies: bool,
    ) -> PyResult<Answer> {
        no_panic(|| {
            let mut options = AskOptions::budget(budget_tokens);
            options.max_hits = max_hits;
            options.with_copies = with_copies;
            let answer = py.detach(|| self.inner.ask_with(query, &options));
            Answer::new(py, answer)
        })
    }

    /// Reads the files under `root` that match `globs` (binaries skipped) as documents keyed by
    /// their relative path, under `prefix` if given (`prefix="docs"` keys `root`'s `auth.md`
    /// `docs/auth.md`, the path a policy's `read` rules name when `root` is the workspace's
    /// `docs/`); a re-ingest re-indexes only changed files and retires deleted ones.
    /// Returns the report (`n_files`, `n_changed`, `n_unchanged`, `skipped`, `deleted`, `bytes`).
    /// `progress`, if given, is called with the report so far after each file; if it raises, it
    /// is not called again, the ingest finishes, and its exception is raised then.
    #[pyo3(signature = (root, globs=vec!["**/*.md".to_string()], *, prefix="", progress=None))]
    fn ingest_dir<'py>(
        &self,
        py: Python<'py>,
        root: PathBuf,
        globs: Vec<String>,
        prefix: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            ingest_report(py, &root, &globs, progress, |root, globs, progress| {
                self.inner.ingest_dir_as(root, prefix, globs, progress)
            })
        })
    }

    /// Which of the section versions read (hits or sections) are no longer current.
    fn changed_since(&self, py: Python<'_>, reads: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<Change>> {
        no_panic(|| {
            let reads = reads
                .iter()
                .map(section_read)
                .collect::<PyResult<Vec<_>>>()?;
            let changes = py.detach(|| self.inner.changed_since(&reads));
            Ok(changes.into_iter().map(Change::from).collect())
        })
    }

    /// Writes a finding back as a new version of document `topic`.
    fn record<'py>(&self, py: Python<'py>, topic: &str, text: &str) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let version = py.detach(|| self.inner.record(topic, text)).or_raise()?;
            to_python(py, &version)
        })
    }

    fn __len__(&self) -> usize {
        self.inner.keys().len()
    }

    fn __repr__(&self) -> String {
        format!("ContextStore(n_documents={})", self.inner.keys().len())
    }
}

/// How long a `ChangeFeed.get` waits with the GIL released before it checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// A store builder with the `archive` prefixes and the `pin`ned keys.
pub(crate) fn builder(archive: &[String], pin: &[String]) -> ContextStoreBuilder {
    let mut builder = fourfold::context::ContextStore::builder();
    for prefix in archive {
        builder = builder.archive(prefix);
    }
    for key in pin {
        builder = builder.pin(key);
    }
    builder
}

/// The changes to a :class:`ContextStore` since :meth:`ContextStore.subscribe`, oldest first, each
/// a dict: ``key``, ``version`` (``None`` for a delete), ``changed_sections`` and
/// ``removed_sections`` (section ids). A feed that falls 1,024 changes behind misses the later
/// ones until it is read again, counted by :attr:`missed`; ``changed_since`` still tells what
/// changed.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct ChangeFeed {
    feed: fourfold::context::ChangeFeed,
}

#[pymethods]
impl ChangeFeed {
    /// The next change, waiting up to `timeout` seconds (``None``: until one comes); ``None`` if
    /// none came in time, the feed was closed or the store is gone. Waits with the GIL released,
    /// checking for signals a tenth of a second at a time, so that Ctrl-C (or another signal
    /// handler's exception) interrupts it; :meth:`close` from another thread ends it at once.
    #[pyo3(signature = (timeout=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        no_panic(|| {
            let deadline = match timeout {
                None => None,
                Some(seconds) => {
                    let wait = Duration::try_from_secs_f64(seconds).map_err(|_| {
                        invalid_request(format!(
                            "timeout must be a number of seconds, 0 or more, not {seconds}"
                        ))
                    })?;
                    // A wait too long to add to now is a wait without end.
                    Instant::now().checked_add(wait)
                }
            };
            let change = py.detach(|| {
                self.feed.next_checking(deadline, SIGNAL_CHECK, || {
                    Python::attach(|py| py.check_signals())
                })
            })?;
            change.map(|change| to_python(py, &change)).transpose()
        })
    }

    /// Iterating a feed waits for each change in turn (as :meth:`get` without a timeout) and
    /// ends when the feed is closed or the store is gone.
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.get(py, None)
    }

    /// Stops the feed: a waiting :meth:`get` returns ``None`` at once, and later calls give
    /// nothing.
    fn close(&self) {
        self.feed.close();
    }

    /// Whether :meth:`close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.feed.is_closed()
    }

    /// How many changes this feed missed because 1,024 were already waiting to be read.
    #[getter]
    fn missed(&self) -> u64 {
        self.feed.missed()
    }

    /// Every change waiting now, without waiting for more.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        no_panic(|| {
            self.feed
                .drain()
                .iter()
                .map(|change| to_python(py, change))
                .collect()
        })
    }

    /// How many changes are waiting.
    fn __len__(&self) -> usize {
        self.feed.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "ChangeFeed(pending={}, missed={}, closed={})",
            self.feed.len(),
            self.feed.missed(),
            self.feed.is_closed()
        )
    }
}

fn section_read(read: &Bound<'_, PyAny>) -> PyResult<SectionRead> {
    if let Ok(hit) = read.cast::<Hit>() {
        let hit = hit.get();
        return Ok(SectionRead {
            key: hit.key.clone(),
            section_id: hit.section_id.clone(),
            version: hit.version,
        });
    }
    if let Ok(section) = read.cast::<Section>() {
        let section = section.get();
        return Ok(SectionRead {
            key: section.key.clone(),
            section_id: section.id.clone(),
            version: section.version,
        });
    }
    Err(invalid_request(format!(
        "changed_since takes the Hit or Section objects read, not {}",
        read.get_type().name()?
    )))
}

/// Runs `ingest` of `root` with `globs` with the GIL released, taking it back to call `progress`
/// after each file; the report as a dict. The first exception `progress` raises stops the calls
/// and is raised once the ingest is done (a put cannot be taken back halfway through a folder).
fn ingest_report<'py>(
    py: Python<'py>,
    root: &std::path::Path,
    globs: &[String],
    progress: Option<Py<PyAny>>,
    ingest: impl FnOnce(
            &std::path::Path,
            &[&str],
            &mut dyn FnMut(&IngestReport),
        ) -> Result<IngestReport, fourfold::context::ContextError>
        + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
    let mut raised: Option<PyErr> = None;
    let report = py.detach(|| {
        let mut on_file = |report: &IngestReport| {
            let Some(callback) = progress.as_ref().filter(|_| raised.is_none()) else {
                return;
            };
            Python::attach(|py| {
                let called = to_python(py, report).and_then(|report| callback.call1(py, (report,)));
                if let Err(error) = called {
                    raised = Some(error);
                }
            });
        };
        ingest(root, &globs, &mut on_file)
    });
    let report = report.or_raise()?;
    if let Some(error) = raised {
        return Err(error);
    }
    to_python(py, &report)
}

/// The `(key, text)` pairs of `put_many`, from any iterable of them; a `TypeError` otherwise.
fn document_pairs(documents: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let not_pairs = |error: PyErr| {
        PyTypeError::new_err(format!("put_many takes (key, text) pairs of str: {error}"))
    };
    documents
        .try_iter()
        .map_err(not_pairs)?
        .map(|pair| pair?.extract::<(String, String)>())
        .collect::<PyResult<Vec<_>>>()
        .map_err(not_pairs)
}

/// The fleet's shared documents (`[context] shared = true` with a PostgreSQL `[store]`): a put or
/// a delete here changes the document for every process of the fleet, which each apply it to
/// their own context store within about a second.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct SharedDocuments {
    pub(crate) fourfold: fourfold::Fourfold,
}

impl SharedDocuments {
    fn documents(&self) -> PyResult<&fourfold::context::SharedDocuments> {
        // INVARIANT: made only for a Fourfold that has shared documents, which it keeps for life.
        self.fourfold
            .shared_documents()
            .ok_or_else(|| invalid_request("this Fourfold has no shared documents"))
    }
}

#[pymethods]
impl SharedDocuments {
    /// Adds `text` as the next version of document `key` for the whole fleet; returns the version
    /// record as this process applied it (every process applies the same).
    fn put<'py>(&self, py: Python<'py>, key: &str, text: &str) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let documents = self.documents()?;
            let version = py.detach(|| documents.put(key, text)).or_raise()?;
            to_python(py, &version)
        })
    }

    /// Puts several documents for the whole fleet, each a `(key, text)` pair, in one append to
    /// the shared log: every process applies them together, in order, as that many calls to
    /// `put` would; returns their version records as this process applied them. Every key is
    /// checked first: an invalid key appends nothing and raises `InvalidRequest`.
    fn put_many<'py>(
        &self,
        py: Python<'py>,
        documents: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let shared = self.documents()?;
            let documents = document_pairs(documents)?;
            let versions = py.detach(|| shared.put_many(&documents)).or_raise()?;
            to_python(py, &versions)
        })
    }

    /// Retires document `key` for the whole fleet; returns whether this process held it.
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        no_panic(|| {
            let documents = self.documents()?;
            py.detach(|| documents.delete(key)).or_raise()
        })
    }

    /// Appends a finding to the record of `topic` (``records/<topic>.md``) as the fleet has it,
    /// for every process; returns the version record.
    fn record<'py>(&self, py: Python<'py>, topic: &str, text: &str) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let documents = self.documents()?;
            let version = py.detach(|| documents.record(topic, text)).or_raise()?;
            to_python(py, &version)
        })
    }

    /// Applies the puts and deletes other processes made since the last refresh, now rather than
    /// within the second; returns how many.
    fn refresh(&self, py: Python<'_>) -> PyResult<u64> {
        no_panic(|| {
            let documents = self.documents()?;
            py.detach(|| documents.refresh()).or_raise()
        })
    }

    /// Publishes the files under `root` that match `globs` to the whole fleet: changed files
    /// become new versions, unchanged ones append nothing, and documents an ingest of `root` put
    /// before whose files are gone are retired. Keys are relative paths under `prefix`, and the
    /// report is `ContextStore.ingest_dir`'s.
    #[pyo3(signature = (root, globs=vec!["**/*.md".to_string()], *, prefix="", progress=None))]
    fn ingest_dir<'py>(
        &self,
        py: Python<'py>,
        root: PathBuf,
        globs: Vec<String>,
        prefix: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let documents = self.documents()?;
            ingest_report(py, &root, &globs, progress, |root, globs, progress| {
                documents.ingest_dir_as(root, prefix, globs, progress)
            })
        })
    }

    /// The process's context store, kept current.
    #[getter]
    fn context(&self) -> PyResult<ContextStore> {
        no_panic(|| {
            Ok(ContextStore {
                inner: self.documents()?.context().clone(),
            })
        })
    }

    fn __repr__(&self) -> String {
        "SharedDocuments()".to_string()
    }
}
