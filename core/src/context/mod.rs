//! ContextStore: the current canonical answer on demand, with a freshness marker.
//!
//! Documents are versioned and split into sections ([`split`]); each section of a live document
//! is marked canonical, stale or duplicate with its reason; [`ContextStore::ask`] serves the best
//! canonical sections that fit a token budget, ranked by BM25 ([`Index`]). The model and a guide
//! are in `docs/context.md`.

mod ahead;
mod analyze;
mod err;
mod feed;
#[cfg(feature = "postgres")]
mod fleet;
mod index;
mod ingest;
mod journal;
mod model;
mod renames;
mod rerank_command;
mod section;
mod session;
mod similar;
mod snapshot;
mod store;

pub use analyze::analyze;
pub use err::ContextError;
pub use feed::{ChangeFeed, FEED_CAPACITY};
#[cfg(feature = "postgres")]
pub use fleet::SharedDocuments;
pub use index::{AnalyzedDocument, Index, IndexCorruptError, IndexError, MergePlan, MergedIndex};
pub use model::{
    Answer, AskOptions, Change, ContextChange, DocVersion, Document, Freshness, Hit, IngestReport,
    Marker, ReadScope, Rename, RerankCandidate, Reranker, Section, SectionRead,
};
pub use rerank_command::CommandReranker;
pub use section::{
    is_probably_binary, split, ParsedDocument, SectionDraft, MAX_SECTION_TOKENS, WINDOW_TOKENS,
};
pub use session::Session;
pub use snapshot::SnapshotInfo;
pub use store::{ContextStore, ContextStoreBuilder};
