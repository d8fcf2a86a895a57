//! The ContextStore's public data: versions, sections, freshness markers, answers and changes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a section is the one to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// The current, canonical text on its subject: served as an answer.
    Canonical,
    /// An old copy: it matches text that has since been replaced or deleted, its front matter says
    /// it is superseded, or it lies in an archive folder. Never served as an answer.
    Stale,
    /// A near-identical copy of a canonical section elsewhere. Never served as an answer.
    Duplicate,
}

impl Freshness {
    /// The name used in events and JSON: `canonical`, `stale`, `duplicate`.
    pub fn name(self) -> &'static str {
        match self {
            Freshness::Canonical => "canonical",
            Freshness::Stale => "stale",
            Freshness::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A section's freshness and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Canonical, stale or duplicate.
    pub freshness: Freshness,
    /// Why it is stale or a duplicate (`None` for a canonical section).
    pub reason: Option<String>,
    /// Where the text it copies lives (`key:line`), when it copies one.
    pub copy_of: Option<String>,
}

impl Marker {
    pub(crate) const CANONICAL: Marker = Marker {
        freshness: Freshness::Canonical,
        reason: None,
        copy_of: None,
    };
}

/// One version of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocVersion {
    /// The document's key, such as `docs/concepts/models.md`.
    pub key: String,
    /// The version: 1 for the first put of the key, then 2, 3, ... (never reused, even after a
    /// delete).
    pub version: u64,
    /// The BLAKE3 hash of the text (the first 16 bytes, as hex).
    pub hash: String,
    /// When it was put, in nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// How many sections it has.
    pub n_sections: u32,
    /// Tokens of the whole text (o200k_base), as an agent reading the file would spend them.
    pub tokens: u64,
}

/// A section of a document version, with its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The section's id: stable across versions while its heading path is unchanged.
    pub id: String,
    /// The document's key.
    pub key: String,
    /// The document version this section is part of.
    pub version: u64,
    /// The document version in which this section's text last changed.
    pub changed_in: u64,
    /// Its headings, outermost first.
    pub heading_path: Vec<String>,
    /// Its first line, 1-based.
    pub line_start: u32,
    /// Its last line, 1-based, inclusive.
    pub line_end: u32,
    /// Its tokens (o200k_base).
    pub tokens: u32,
    /// Its text.
    pub text: String,
    /// Its freshness (for an old version: as it was when that version was current).
    pub marker: Marker,
}

impl Section {
    /// `key:line`, where the section starts.
    pub fn pointer(&self) -> String {
        format!("{}:{}", self.key, self.line_start)
    }
}

/// A document at one version: its text and sections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Which version this is.
    pub version: DocVersion,
    /// Whether it is the current version of a live document.
    pub current: bool,
    /// The text.
    pub text: String,
    /// Its front matter (`key: value` lines between `---` at the top).
    pub front_matter: BTreeMap<String, String>,
    /// Its sections, in order.
    pub sections: Vec<Section>,
}

/// One section served by [`ContextStore::ask`](super::ContextStore::ask).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The document's key.
    pub key: String,
    /// The section's id.
    pub section_id: String,
    /// Its headings, outermost first.
    pub heading_path: Vec<String>,
    /// `key:line`, where it starts.
    pub pointer: String,
    /// Its first line, 1-based.
    pub line_start: u32,
    /// Its last line, 1-based, inclusive.
    pub line_end: u32,
    /// The document version served.
    pub version: u64,
    /// The version in which the section last changed.
    pub changed_in: u64,
    /// Its freshness.
    pub freshness: Freshness,
    /// Why it is not canonical, for copies.
    pub reason: Option<String>,
    /// Tokens this hit costs the agent: the text served plus a one-line header with the pointer and
    /// headings (o200k_base).
    pub tokens: u32,
    /// The text; `None` when only a pointer is served (a copy, or a section the session already
    /// holds unchanged).
    pub text: Option<String>,
    /// Whether the text was cut to fit the budget (the rest is at the pointer).
    pub truncated: bool,
    /// Whether the session already held this version, so only the pointer was served.
    pub already_served: bool,
    /// The ranking score (BM25).
    pub score: f32,
}

/// What [`ContextStore::ask`](super::ContextStore::ask) served.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The canonical sections served, best first; their tokens fit the budget.
    pub hits: Vec<Hit>,
    /// Stale and duplicate copies that also match, as pointers without text, when asked for.
    pub copies: Vec<Hit>,
    /// Tokens served, the sum of the hits' tokens.
    pub tokens_served: u64,
    /// Tokens the agent would have read by opening the served sections' documents whole.
    pub tokens_baseline: u64,
    /// The budget asked for.
    pub budget_tokens: u64,
    /// Old names the query wrote as code that the current documents say were renamed or
    /// replaced; the search looked for the new names too.
    #[serde(default)]
    pub renames: Vec<Rename>,
    /// Documents that held sections good enough to be served, left out because the asker may
    /// not read them (a session scoped by the policy's `read` rules); 0 when nothing was.
    #[serde(default)]
    pub withheld: u64,
    /// Whether the store's reranker ordered the candidates (the hits' scores are then its own).
    #[serde(default)]
    pub reranked: bool,
    /// Why the reranker could not order them, if it failed: the search's order was kept.
    #[serde(default)]
    pub rerank_error: Option<String>,
}

/// A model that orders an ask's candidates by relevance to the question (a cross-encoder, a
/// hosted rerank API), called between the store's search and the filling of the budget
/// ([`ContextStore::set_reranker`](super::ContextStore::set_reranker)).
///
/// It is called with no lock of the store held, so it may take its time and may use the store.
pub trait Reranker: Send + Sync {
    /// One score for each candidate, in their order, higher for a better answer to `query`.
    /// An error, or scores that are not one finite number per candidate, leave the search's
    /// order, and the answer says why ([`Answer::rerank_error`]).
    fn rerank(&self, query: &str, candidates: &[RerankCandidate]) -> Result<Vec<f32>, String>;
}

/// A function of the query and the candidates is a reranker too.
impl<F> Reranker for F
where
    F: Fn(&str, &[RerankCandidate]) -> Result<Vec<f32>, String> + Send + Sync,
{
    fn rerank(&self, query: &str, candidates: &[RerankCandidate]) -> Result<Vec<f32>, String> {
        self(query, candidates)
    }
}

/// A canonical current section an ask's search found, for a [`Reranker`] to score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RerankCandidate {
    /// The document's key.
    pub key: String,
    /// The section's headings, outermost first.
    pub heading_path: Vec<String>,
    /// The section's text.
    pub text: String,
    /// The search's BM25 score.
    pub score: f32,
}

/// Which documents an asker may be served, by key: a session scoped by it is served, pointed to
/// and renamed by only the documents it allows. It is called while the store is read, so it must
/// not call the store.
pub type ReadScope = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A rename a current canonical section states (a migration guide's "`orm_mode` → `from_attributes`"),
/// applied to a query that named the old name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    /// The old name, as the query wrote it.
    pub old: String,
    /// The name the documents say replaces it.
    pub new: String,
    /// Where they say so: `key:line` of the stating section.
    pub pointer: String,
}

/// How to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AskOptions {
    /// The most tokens to serve.
    pub budget_tokens: u64,
    /// The most sections to serve (default 5).
    pub max_hits: usize,
    /// Whether to list stale and duplicate copies that match, as pointers.
    pub with_copies: bool,
    /// The agent asking, for the `Context` event.
    pub agent: Option<String>,
    /// The run it asks in, for the `Context` event.
    pub run_id: Option<String>,
    /// The task it works on, for the `Context` event.
    pub task: Option<String>,
}

impl AskOptions {
    /// Options with this budget and the defaults otherwise.
    pub fn budget(budget_tokens: u64) -> AskOptions {
        AskOptions {
            budget_tokens,
            max_hits: 5,
            with_copies: false,
            agent: None,
            run_id: None,
            task: None,
        }
    }
}

/// A section version an agent read, to check later with
/// [`ContextStore::changed_since`](super::ContextStore::changed_since).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SectionRead {
    /// The document's key.
    pub key: String,
    /// The section's id.
    pub section_id: String,
    /// The document version read.
    pub version: u64,
}

/// A section an agent read that is no longer current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What was read.
    pub read: SectionRead,
    /// What happened, in one line.
    pub reason: String,
    /// The current version of the document, if it still exists.
    pub current_version: Option<u64>,
    /// Where the section is now (`key:line`), if it still exists.
    pub current_pointer: Option<String>,
}

/// A change to the store, sent to subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextChange {
    /// The document.
    pub key: String,
    /// Its new version, or `None` if it was deleted.
    pub version: Option<u64>,
    /// The sections whose text changed or that are new.
    pub changed_sections: Vec<String>,
    /// The sections that no longer exist.
    pub removed_sections: Vec<String>,
}

/// Progress of [`ContextStore::ingest_dir`](super::ContextStore::ingest_dir), after each file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Files looked at.
    pub n_files: u64,
    /// Files put as a new version (new or changed).
    pub n_changed: u64,
    /// Files whose content was unchanged.
    pub n_unchanged: u64,
    /// Files skipped, with why (binary, not UTF-8, unreadable, a path that is not UTF-8).
    pub skipped: Vec<(String, String)>,
    /// Keys deleted because their file is gone.
    pub deleted: Vec<String>,
    /// Bytes of text put.
    pub bytes: u64,
}

impl IngestReport {
    /// Whether the ingest changed the store: a file put as a new version, or a key deleted.
    pub fn changed_anything(&self) -> bool {
        self.n_changed > 0 || !self.deleted.is_empty()
    }
}
