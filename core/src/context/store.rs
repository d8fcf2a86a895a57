//! The ContextStore: versioned documents, their sections, freshness markers and the search index.
//!
//! One `RwLock` guards the state: `ask`, `get` and `get_section` share it, so any number of agents
//! read at once; a `put` splits, tokenises and signs the document before it takes the lock, and
//! holds it only to swap the version in, update the index and re-mark the documents it touches.
//! Merging the index's segments (when a put makes it due, on a thread of its own, or on
//! `compact`) copies what it needs under a read lock, builds the merged index with no lock, so
//! that asks and puts go on, and takes the write lock only to swap it in with the changes made
//! meanwhile.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::ahead::in_order;
use super::err::ContextError;
use super::feed::{self, ChangeFeed, Subscriber};
use super::index::{AnalyzedDocument, Index};
use super::journal::Op;
use super::model::{
    Answer, AskOptions, Change, ContextChange, DocVersion, Document, Freshness, Hit, Marker,
    ReadScope, Rename, RerankCandidate, Reranker, Section, SectionRead,
};
use super::renames::{self, Renames};
use super::section::{document_tokens, split, SectionDraft};
use super::similar::{Lsh, Signature, NEAR_IDENTICAL};
use super::snapshot::JournalGuard;
use crate::event::{Clock, ContextEvent, Event, EventKind, FastClock, Sequencer, ServedSection};
use crate::plugin::PluginRegistry;
use crate::tokens::count_tokens;
use crate::trace::EventKindName;

mod v3;
mod v4;
pub(super) use v3::StateV3;
pub(super) use v4::StateV4;

/// Weights of a section's fields in the index: headings count three times the body, the key's
/// words one and a half.
const HEADING_WEIGHT: f32 = 3.0;
const KEY_WEIGHT: f32 = 1.5;
const BODY_WEIGHT: f32 = 1.0;

/// A section scoring below this fraction of the best one is not served: it would cost tokens
/// for little.
const MIN_RELATIVE_SCORE: f32 = 0.45;

/// A document is stale as a whole when at least this share of its judged tokens copies replaced
/// text.
const STALE_DOCUMENT_SHARE: f64 = 0.5;

/// [`ContextStore::put_many`] prepares at most this many documents ahead of the one it puts.
pub(super) const PUTS_AHEAD: usize = 32;

/// Where a section of some version lives: document, version and section indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) struct SectionRef {
    doc: u32,
    version: u32,
    section: u32,
}

/// A section of a version; `S` is its signature's type, [`Signature`] but in the old snapshots
/// [`v4`] reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct SectionEntry<S = Signature> {
    id: String,
    heading_path: Vec<String>,
    line_start: u32,
    line_end: u32,
    /// Where its text lies in its version's text, in bytes (see [`SectionEntry::text_in`]).
    bytes: Range<usize>,
    tokens: u32,
    header_tokens: u32,
    changed_in: u64,
    content_hash: [u8; 16],
    signature: Option<S>,
    marker: Marker,
    slot: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct VersionEntry<S = Signature> {
    meta: DocVersion,
    text: String,
    front_matter: BTreeMap<String, String>,
    sections: Vec<SectionEntry<S>>,
    /// The store operation that created this version.
    created_op: u64,
    /// The store operation that replaced or deleted it.
    retired_op: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DocEntry<S = Signature> {
    key: String,
    /// The operation that first created the key: the older document of two copies is canonical.
    created_op: u64,
    versions: Vec<VersionEntry<S>>,
    /// The index in `versions` of the current version, `None` once deleted.
    current: Option<u32>,
    /// The directory it was ingested from, so a re-ingest deletes it when its file is gone.
    source: Option<String>,
}

impl SectionEntry {
    /// Its text, out of its version's text. Its bytes are a slice of that text at char
    /// boundaries, as [`split`] found them, and [`State::check`] makes sure of it for a decoded
    /// snapshot; should they not be, the text is empty.
    fn text_in<'a>(&self, version_text: &'a str) -> &'a str {
        version_text.get(self.bytes.clone()).unwrap_or_default()
    }
}

impl VersionEntry {
    /// The text of `section`, one of this version's sections.
    fn text_of(&self, section: &SectionEntry) -> &str {
        section.text_in(&self.text)
    }
}

impl DocEntry {
    fn current(&self) -> Option<&VersionEntry> {
        self.current.map(|idx| &self.versions[idx as usize])
    }
}

/// Everything the store holds; what a snapshot saves.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    docs: Vec<DocEntry>,
    doc_idx: FxHashMap<String, u32>,
    /// The section in each index slot (slots of replaced versions are `None`).
    slots: Vec<Option<SectionRef>>,
    /// Whether each index slot holds a current canonical section: what a search filters on,
    /// kept beside the slots so that the filter reads one byte instead of following the slot
    /// to its section. Derived from the markers, so not saved; [`State::remark`] keeps it, and
    /// [`State::flag_canonical_slots`] makes it for a state opened without re-marking.
    #[serde(skip)]
    canonical: Vec<bool>,
    /// Current sections by id.
    by_id: FxHashMap<String, SectionRef>,
    /// The renames the current sections state, by slot. Derived from their text, so not saved;
    /// [`State::find_renames`] makes it for a state opened from a snapshot.
    #[serde(skip)]
    renames: Renames,
    index: Index,
    /// Finds the sections near-identical to a text. Made from the sections' signatures, so not
    /// saved; [`State::index_signatures`] makes it for a state opened from a snapshot.
    #[serde(skip)]
    lsh: Lsh<SectionRef>,
    n_ops: u64,
    pins: BTreeSet<String>,
    archive: Vec<String>,
}

/// A document split, tokenised, signed and analysed, ready to be swapped in.
pub(super) struct Prepared {
    key: String,
    text: String,
    hash: String,
    front_matter: BTreeMap<String, String>,
    sections: Vec<SectionEntry>,
    /// Each section's search terms, in the order of `sections`.
    analyzed: Vec<AnalyzedDocument>,
    /// The renames each section states, in the order of `sections`.
    renames: Vec<Vec<(String, String)>>,
    tokens: u64,
}

/// What [`ContextStore::plan_put`] found a put needs.
pub(super) enum PutPlan {
    /// The text is the current version's: nothing to do.
    Unchanged(DocVersion),
    /// A new version, ready for [`ContextStore::apply_put`].
    Prepared(Box<Prepared>),
}

/// The current canonical answer on demand: versioned documents split into sections, each marked
/// canonical, stale or duplicate, searched with BM25. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct ContextStore {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) state: RwLock<State>,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Held from reading a record to putting its next version, so that findings recorded at
    /// once by different threads are all appended.
    pub(super) recording: Mutex<()>,
    plugins: Option<Arc<PluginRegistry>>,
    clock: Arc<dyn Clock>,
    sequencer: Sequencer,
    pub(super) persist: Option<super::snapshot::Persist>,
    /// The reranker asks call, and how many of the search's best candidates it orders.
    reranker: RwLock<Option<(Arc<dyn Reranker>, usize)>>,
    /// Held by the merge of the index under way, so that one runs at a time.
    merging: Arc<Mutex<()>>,
}

impl Shared {
    /// Merges the index's segments (only if a merge is due, with `only_if_due`); says whether
    /// it merged. The caller holds `merging`. What the merge needs is copied under a read lock,
    /// the merged index built with no lock (asks and writes go on), and swapped in under the
    /// write lock with the writes made meanwhile; a merge planned before the state was
    /// replaced (a reload) is dropped.
    fn merge_now(&self, only_if_due: bool) -> bool {
        let plan = {
            let state = self.state.read();
            if only_if_due && !state.index.merge_due() {
                return false;
            }
            state.index.plan_merge()
        };
        let Some(plan) = plan else {
            return false;
        };
        let merged = plan.build();
        self.state.write().index.install(merged)
    }
}

/// What an ask's search found, before the budget is filled: the ranked canonical sections (slot
/// and score), and what the answer says besides its hits.
struct Searched {
    ranked: Vec<(u32, f32)>,
    renames: Vec<Rename>,
    copies: Vec<Hit>,
    withheld: u64,
}

impl Searched {
    /// Gives `answer` the renames, copies and withheld count of the search.
    fn complete(self, answer: &mut Answer) {
        answer.renames = self.renames;
        answer.copies = self.copies;
        answer.withheld = self.withheld;
    }
}

/// A section version an ask found: its slot, id and the version it last changed in.
type Current = (u32, String, u64);

/// How many of the search's best canonical sections a plain ask considers: as many as it may
/// serve. Those that do not fit what is left of the budget are skipped, and no section further
/// down takes their place: a section far down the list is not worth serving just because it is
/// small enough to fit, and a small limit lets the search skip most postings.
fn candidate_limit(options: &AskOptions) -> usize {
    options.max_hits.max(1)
}

/// Whether a change is written to the store's journal before it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Journaled {
    /// Yes (when the store has one): a put, delete or record of a caller's.
    Yes,
    /// No: a journal entry being applied again, or an ingest, which saves a snapshot when it ends.
    No,
}

/// Which put a put is, for when it merges the index's delta segment into the main one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Load {
    /// One put among asks: it starts a merge once the delta holds a tenth of the store
    /// ([`Index::merge_due`]), which keeps the asks' search of the delta short.
    One,
    /// A put of a bulk load (`put_many`, an ingest, a journal's or a fleet log's replay): it
    /// starts one once the delta holds as much as the main segment
    /// ([`Index::merge_due_in_bulk`]), and the load ends with [`ContextStore::merge_if_due`].
    Bulk,
}

impl std::fmt::Debug for ContextStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state.read();
        f.debug_struct("ContextStore")
            .field("n_documents", &state.docs.len())
            .field("n_sections", &state.by_id.len())
            .finish_non_exhaustive()
    }
}

impl Default for ContextStore {
    fn default() -> ContextStore {
        ContextStore::new()
    }
}

/// Configures a [`ContextStore`].
#[derive(Default)]
pub struct ContextStoreBuilder {
    plugins: Option<Arc<PluginRegistry>>,
    clock: Option<Arc<dyn Clock>>,
    archive: Vec<String>,
    pins: Vec<String>,
    persist: Option<super::snapshot::Persist>,
    reranker: Option<(Arc<dyn Reranker>, usize)>,
}

impl ContextStoreBuilder {
    /// Orders every ask's best `depth` candidates with `reranker`, as
    /// [`ContextStore::set_reranker`] does once the store is built.
    pub fn reranker(mut self, reranker: Arc<dyn Reranker>, depth: usize) -> ContextStoreBuilder {
        self.reranker = Some((reranker, depth.max(1)));
        self
    }

    /// Emits a `Context` event to these plugins (such as a Tracer) on every ask.
    pub fn plugins(mut self, plugins: Arc<PluginRegistry>) -> ContextStoreBuilder {
        self.plugins = Some(plugins);
        self
    }

    /// The clock for version timestamps (default:
    /// [`FastClock`], the system clock read through the time-stamp counter).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> ContextStoreBuilder {
        self.clock = Some(clock);
        self
    }

    /// Marks every document whose key starts with `prefix` (such as `archive/`) as stale.
    pub fn archive(mut self, prefix: &str) -> ContextStoreBuilder {
        self.archive.push(prefix.to_string());
        self
    }

    /// Makes `key` the canonical document wherever its sections are copied.
    pub fn pin(mut self, key: &str) -> ContextStoreBuilder {
        self.pins.push(key.to_string());
        self
    }

    pub(super) fn persist(mut self, persist: super::snapshot::Persist) -> ContextStoreBuilder {
        self.persist = Some(persist);
        self
    }

    /// An empty store.
    pub fn build(self) -> ContextStore {
        self.build_with(State::default(), Marked::Now)
    }

    /// A store of `state`, re-marked unless `marked` says its markers are current and this
    /// builder adds no archive folder or pin to those `state` was marked with.
    pub(super) fn build_with(self, mut state: State, marked: Marked) -> ContextStore {
        let mut remark = marked == Marked::Before;
        for prefix in self.archive {
            if !state.archive.contains(&prefix) {
                state.archive.push(prefix);
                remark = true;
            }
        }
        for key in self.pins {
            remark |= state.pins.insert(key);
        }
        let store = ContextStore {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                subscribers: Mutex::new(Vec::new()),
                recording: Mutex::new(()),
                plugins: self.plugins,
                clock: self.clock.unwrap_or_else(|| Arc::new(FastClock::new())),
                sequencer: Sequencer::new(),
                persist: self.persist,
                reranker: RwLock::new(self.reranker),
                merging: Arc::new(Mutex::new(())),
            }),
        };
        let mut state = store.shared.state.write();
        if remark {
            state.remark_all();
        } else {
            state.flag_canonical_slots();
        }
        state.find_renames();
        drop(state);
        store
    }
}

/// The version of the marking rules. A snapshot saved under another one is re-marked when it is
/// opened; bump it with any change that would mark a saved store otherwise (the test
/// `markers_are_as_marking_version_says` fails on such a change until its list is updated).
pub(super) const MARKING_VERSION: u32 = 2;

/// Whether a state's markers are those the current marking rules give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Marked {
    /// Yes: marked by this build, with the archive folders and pins the state holds.
    Now,
    /// Not known (a snapshot marked by other rules, or by none recorded): mark it again.
    Before,
}

pub(super) fn validate_key(key: &str) -> Result<(), ContextError> {
    let invalid = |reason| ContextError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("it is empty"));
    }
    if key.len() > 1024 {
        return Err(invalid("it is longer than 1,024 bytes"));
    }
    if key.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    Ok(())
}

/// [`validate_key`] for every key of a batch, before any of it is put.
pub(super) fn validate_keys<K: AsRef<str>, T>(documents: &[(K, T)]) -> Result<(), ContextError> {
    documents
        .iter()
        .try_for_each(|(key, _)| validate_key(key.as_ref()))
}

fn hash16(bytes: &[u8]) -> [u8; 16] {
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&blake3::hash(bytes).as_bytes()[..16]);
    hash
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A section's fields as the index weighs them: its heading path, its document's key, its text.
fn index_fields<'a>(headings: &'a str, key_text: &'a str, text: &'a str) -> [(&'a str, f32); 3] {
    [
        (headings, HEADING_WEIGHT),
        (key_text, KEY_WEIGHT),
        (text, BODY_WEIGHT),
    ]
}

/// The words of a key worth indexing: `docs/concepts/json_schema.md` gives `concepts json schema`.
fn key_words(key: &str) -> String {
    key.rsplit_once('.')
        .map_or(key, |(stem, _)| stem)
        .replace(['/', '_', '-', '.'], " ")
}

fn header_line(key: &str, section: &SectionDraft) -> String {
    format!(
        "{}:{}-{} {}",
        key,
        section.line_start,
        section.line_end,
        section.heading_path.join(" > ")
    )
}

impl ContextStore {
    /// An empty in-memory store with default settings.
    pub fn new() -> ContextStore {
        ContextStore::builder().build()
    }

    /// Starts configuring a store.
    pub fn builder() -> ContextStoreBuilder {
        ContextStoreBuilder::default()
    }

    fn prepare(key: &str, text: &str) -> Prepared {
        let parsed = split(key, text);
        let tokens = document_tokens(text, &parsed.sections) as u64;
        let sections: Vec<SectionEntry> = parsed
            .sections
            .into_iter()
            .map(|draft| SectionEntry {
                header_tokens: count_tokens(&header_line(key, &draft)) as u32,
                content_hash: hash16(draft.text.as_bytes()),
                signature: Signature::of(&draft.text),
                id: draft.id,
                heading_path: draft.heading_path,
                line_start: draft.line_start,
                line_end: draft.line_end,
                tokens: draft.tokens,
                bytes: draft.bytes,
                changed_in: 0,
                marker: Marker::CANONICAL,
                slot: None,
            })
            .collect();
        let key_text = key_words(key);
        let analyzed = sections
            .iter()
            .map(|section| {
                Index::analyze(&index_fields(
                    &section.heading_path.join(" "),
                    &key_text,
                    section.text_in(text),
                ))
            })
            .collect();
        let renames = sections
            .iter()
            .map(|section| renames::extract(section.text_in(text)))
            .collect();
        Prepared {
            analyzed,
            renames,
            key: key.to_string(),
            hash: hex(&hash16(text.as_bytes())),
            tokens,
            text: text.to_string(),
            front_matter: parsed.front_matter,
            sections,
        }
    }

    /// Puts a new version of document `key`. The previous version stays readable as history.
    /// Putting the current text again changes nothing and returns the current version.
    pub fn put(&self, key: &str, text: &str) -> Result<DocVersion, ContextError> {
        self.put_from(key, text, None, Journaled::Yes)
    }

    pub(super) fn put_from(
        &self,
        key: &str,
        text: &str,
        source: Option<&str>,
        journaled: Journaled,
    ) -> Result<DocVersion, ContextError> {
        match self.plan_put(key, text)? {
            PutPlan::Unchanged(version) => Ok(version),
            PutPlan::Prepared(prepared) => self.apply_put(*prepared, source, journaled, Load::One),
        }
    }

    /// Puts several documents, `(key, text)` each, in their order: the versions, markers and
    /// changes are those of as many calls to [`ContextStore::put`], one after the other. What a
    /// put spends most of its time on (splitting, counting tokens, signing, analysing) runs on
    /// every core, a few documents ahead of the one being put, so a bulk load takes a fraction of
    /// the time of a loop of puts. Returns each document's version, in order.
    ///
    /// Every key is checked before anything is put: an invalid key puts nothing. An error after
    /// that (writing the journal of a store kept in a folder) stops at that document, and the
    /// documents before it stay put, as they would with a loop of puts.
    ///
    /// ```
    /// use fourfold::context::ContextStore;
    ///
    /// let store = ContextStore::new();
    /// let versions = store
    ///     .put_many(&[("a.md", "# A\nalpha"), ("b.md", "# B\nbeta"), ("a.md", "# A\nalpha 2")])
    ///     .unwrap();
    /// let numbers: Vec<u64> = versions.iter().map(|version| version.version).collect();
    /// assert_eq!(numbers, [1, 1, 2]);
    /// assert_eq!(store.get("a.md").unwrap().text, "# A\nalpha 2");
    /// ```
    pub fn put_many<K, T>(&self, documents: &[(K, T)]) -> Result<Vec<DocVersion>, ContextError>
    where
        K: AsRef<str> + Sync,
        T: AsRef<str> + Sync,
    {
        validate_keys(documents)?;
        let mut versions = Vec::with_capacity(documents.len());
        let loaded = in_order(
            documents,
            PUTS_AHEAD,
            |(key, text)| self.prepare_ahead(key.as_ref(), text.as_ref()),
            |(key, text), prepared| {
                let (key, text) = (key.as_ref(), text.as_ref());
                versions.push(self.put_prepared(key, text, None, prepared, Journaled::Yes)?);
                Ok::<(), ContextError>(())
            },
        );
        self.merge_if_due();
        loaded.map(|()| versions)
    }

    /// What [`ContextStore::put_prepared`] may be handed, made on another thread ahead of it:
    /// `key` and `text` split, counted, signed and analysed, unless the key is invalid or `text`
    /// is the current version's now.
    pub(super) fn prepare_ahead(&self, key: &str, text: &str) -> Option<Prepared> {
        match self.plan_put(key, text) {
            Ok(PutPlan::Prepared(prepared)) => Some(*prepared),
            Ok(PutPlan::Unchanged(_)) | Err(_) => None,
        }
    }

    /// A put of a bulk load ([`Load::Bulk`]: the load ends with [`ContextStore::merge_if_due`])
    /// of `text` as the next version of `key`, with the work [`ContextStore::prepare_ahead`] did
    /// for it. Whether the text is unchanged is checked again, as a put before it may have put
    /// the same key since it was prepared; and it is prepared here if it was not then.
    pub(super) fn put_prepared(
        &self,
        key: &str,
        text: &str,
        source: Option<&str>,
        prepared: Option<Prepared>,
        journaled: Journaled,
    ) -> Result<DocVersion, ContextError> {
        self.put_prepared_at(key, text, source, prepared, None, journaled)
    }

    /// [`ContextStore::put_prepared`], its version stamped `at_ns` if given (a journal entry's
    /// first time), or now.
    fn put_prepared_at(
        &self,
        key: &str,
        text: &str,
        source: Option<&str>,
        prepared: Option<Prepared>,
        at_ns: Option<u64>,
        journaled: Journaled,
    ) -> Result<DocVersion, ContextError> {
        validate_key(key)?;
        if let Some(version) = self.unchanged(key, text) {
            return Ok(version);
        }
        let prepared = prepared.unwrap_or_else(|| ContextStore::prepare(key, text));
        let at_ns = at_ns.unwrap_or_else(|| self.shared.clock.now_ns());
        self.apply_put_at(prepared, source, at_ns, journaled, Load::Bulk)
    }

    /// The part of a put that needs no lock but a reader's for a moment, and may run on any
    /// thread: the key checked, the text compared with the current version and, if it differs,
    /// split, counted, signed and analysed.
    pub(super) fn plan_put(&self, key: &str, text: &str) -> Result<PutPlan, ContextError> {
        validate_key(key)?;
        Ok(match self.unchanged(key, text) {
            Some(version) => PutPlan::Unchanged(version),
            None => PutPlan::Prepared(Box::new(ContextStore::prepare(key, text))),
        })
    }

    /// Swaps a prepared document in as the next version of its key, after writing it to the
    /// journal when `journaled` says so and the store has one.
    pub(super) fn apply_put(
        &self,
        prepared: Prepared,
        source: Option<&str>,
        journaled: Journaled,
        load: Load,
    ) -> Result<DocVersion, ContextError> {
        let at_ns = self.shared.clock.now_ns();
        self.apply_put_at(prepared, source, at_ns, journaled, load)
    }

    fn apply_put_at(
        &self,
        prepared: Prepared,
        source: Option<&str>,
        at_ns: u64,
        journaled: Journaled,
        load: Load,
    ) -> Result<DocVersion, ContextError> {
        let journal = self.journal(
            journaled,
            &Op::Put {
                key: Cow::Borrowed(&prepared.key),
                text: Cow::Borrowed(&prepared.text),
                source: source.map(Cow::Borrowed),
                at_ns,
            },
        )?;
        let (version, change, merge_due) = {
            let mut state = self.shared.state.write();
            let (version, change) = state.put(prepared, at_ns, source);
            let merge_due = match load {
                Load::One => state.index.merge_due(),
                Load::Bulk => state.index.merge_due_in_bulk(),
            };
            (version, change, merge_due)
        };
        self.changed(journal, change);
        if merge_due {
            self.merge_in_background();
        }
        Ok(version)
    }

    /// After a change is applied: releases the journal, tells subscribers, and saves a
    /// snapshot if the journal has grown enough.
    fn changed(&self, journal: Option<JournalGuard<'_>>, change: Option<ContextChange>) {
        let written = journal.is_some();
        drop(journal);
        self.notify(change);
        if written {
            self.save_if_journal_due();
        }
    }

    /// Applies journal entries in order, each as it was applied the first time, without writing
    /// them again. As with [`ContextStore::put_many`], the puts are prepared on every core a few
    /// entries ahead of the one applied.
    pub(super) fn replay(&self, ops: &[Op<'_>]) -> Result<(), ContextError> {
        let replayed = in_order(
            ops,
            PUTS_AHEAD,
            |op| match op {
                Op::Put { key, text, .. } => self.prepare_ahead(key, text),
                Op::Delete { .. } => None,
            },
            |op, prepared| self.replay_one(op, prepared),
        );
        self.merge_if_due();
        replayed
    }

    /// Applies one journal entry, with its put prepared when it was prepared ahead.
    fn replay_one(&self, op: &Op<'_>, prepared: Option<Prepared>) -> Result<(), ContextError> {
        match op {
            Op::Put {
                key,
                text,
                source,
                at_ns,
            } => {
                self.put_prepared_at(
                    key,
                    text,
                    source.as_deref(),
                    prepared,
                    Some(*at_ns),
                    Journaled::No,
                )?;
            }
            Op::Delete { key } => {
                self.delete_from(key, Journaled::No)?;
            }
        }
        Ok(())
    }

    /// The current version of `key` if `text` is its text (by hash), without building the
    /// document.
    pub(super) fn unchanged(&self, key: &str, text: &str) -> Option<DocVersion> {
        let state = self.shared.state.read();
        let doc = &state.docs[*state.doc_idx.get(key)? as usize];
        let current = doc.current()?;
        (current.meta.hash == hex(&hash16(text.as_bytes()))).then(|| current.meta.clone())
    }

    /// Retires document `key`: it is no longer served, and its versions stay readable as history.
    /// Returns whether it was live.
    pub fn delete(&self, key: &str) -> Result<bool, ContextError> {
        self.delete_from(key, Journaled::Yes)
    }

    pub(super) fn delete_from(
        &self,
        key: &str,
        journaled: Journaled,
    ) -> Result<bool, ContextError> {
        validate_key(key)?;
        if !self.is_live(key) {
            return Ok(false);
        }
        let journal = self.journal(
            journaled,
            &Op::Delete {
                key: Cow::Borrowed(key),
            },
        )?;
        let change = self.shared.state.write().delete(key);
        let deleted = change.is_some();
        self.changed(journal, change);
        Ok(deleted)
    }

    /// Whether `key` has a current version.
    pub(super) fn is_live(&self, key: &str) -> bool {
        self.current_version(key).is_some()
    }

    /// The number of `key`'s current version, if it is live, without building the document.
    pub(super) fn current_version(&self, key: &str) -> Option<u64> {
        let state = self.shared.state.read();
        let doc = &state.docs[*state.doc_idx.get(key)? as usize];
        doc.current().map(|version| version.meta.version)
    }

    /// The current version of `key`, if it is live.
    pub fn get(&self, key: &str) -> Option<Document> {
        let state = self.shared.state.read();
        let doc = &state.docs[*state.doc_idx.get(key)? as usize];
        doc.current.map(|idx| state.document(doc, idx))
    }

    /// Version `version` of `key`, current or not.
    pub fn get_version(&self, key: &str, version: u64) -> Option<Document> {
        let state = self.shared.state.read();
        let doc = &state.docs[*state.doc_idx.get(key)? as usize];
        let idx = doc
            .versions
            .iter()
            .position(|v| v.meta.version == version)?;
        Some(state.document(doc, idx as u32))
    }

    /// Every version of `key`, oldest first.
    pub fn history(&self, key: &str) -> Vec<DocVersion> {
        let state = self.shared.state.read();
        state.doc_idx.get(key).map_or_else(Vec::new, |&idx| {
            state.docs[idx as usize]
                .versions
                .iter()
                .map(|version| version.meta.clone())
                .collect()
        })
    }

    /// The keys of the live documents, sorted.
    pub fn keys(&self) -> Vec<String> {
        let state = self.shared.state.read();
        let mut keys: Vec<String> = state
            .docs
            .iter()
            .filter(|doc| doc.current.is_some())
            .map(|doc| doc.key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The directory document `key` was last ingested from, if it was.
    #[cfg(feature = "postgres")]
    pub(super) fn source_of(&self, key: &str) -> Option<String> {
        let state = self.shared.state.read();
        state.docs[*state.doc_idx.get(key)? as usize].source.clone()
    }

    /// The live keys that were ingested from directory `source`.
    pub(super) fn keys_from(&self, source: &str) -> Vec<String> {
        let state = self.shared.state.read();
        state
            .docs
            .iter()
            .filter(|doc| doc.current.is_some() && doc.source.as_deref() == Some(source))
            .map(|doc| doc.key.clone())
            .collect()
    }

    /// Folds what `put` and `delete` changed since the index last merged into its main segment,
    /// and says whether there was anything to fold in.
    ///
    /// `put` indexes a document's sections in a small delta segment, merged into the main one
    /// only once it holds more than a tenth of the store's sections (and more than 4,096), so a
    /// store built by `put` alone keeps up to a tenth of them there, and every ask searches both
    /// segments.
    /// After a bulk load through `put`, one call makes the asks that follow faster (7% to 10% at
    /// p50 on the 100,000-section store of `docs/benchmarks.md`); [`ContextStore::ingest_dir`]
    /// already does it at its end.
    /// Answers stay the same (their scores to rounding, as the terms are summed in another
    /// order). It first waits for a merge a put started, if one is under way, then rebuilds
    /// the index (160 to 320 ms on 100,000 sections) while asks and writes on other threads go
    /// on, and takes the write lock only to swap the rebuilt index in, with the writes made
    /// meanwhile left in the delta segment.
    ///
    /// The put that makes a merge due (the delta segment past a tenth of the store) starts the
    /// same rebuild on a thread of its own and returns without waiting for it.
    pub fn compact(&self) -> bool {
        self.merge_index(false)
    }

    /// Merges the index's segments (only if a merge is due, with `only_if_due`) once any
    /// merge under way has ended; says whether it merged.
    fn merge_index(&self, only_if_due: bool) -> bool {
        let _merging = self.shared.merging.lock();
        self.shared.merge_now(only_if_due)
    }

    /// Starts a merge of the index's segments on a thread of its own if one is due for a put
    /// among asks ([`Load::One`]): how a bulk load ends, whose puts merge less often.
    pub(super) fn merge_if_due(&self) {
        if self.shared.state.read().index.merge_due() {
            self.merge_in_background();
        }
    }

    /// Starts a merge of the index's segments on a thread of its own, unless one is under way
    /// (it leaves the delta segment to the put after it), so that the put that makes a merge
    /// due returns without building it. Merges in this thread if no thread can be started.
    fn merge_in_background(&self) {
        let Some(merging) = self.shared.merging.try_lock_arc() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("fourfold-merge".to_string())
            .spawn(move || {
                shared.merge_now(true);
                drop(merging);
            });
        if spawned.is_err() {
            self.merge_index(true);
        }
    }

    /// Waits for the merge of the index under way, if any.
    #[cfg(test)]
    pub(super) fn wait_for_merge(&self) {
        drop(self.shared.merging.lock());
    }

    /// The current section with id `id`.
    pub fn get_section(&self, id: &str) -> Option<Section> {
        let state = self.shared.state.read();
        let at = *state.by_id.get(id)?;
        Some(state.section(at))
    }

    /// The best canonical sections for `query` that fit in `budget_tokens`.
    pub fn ask(&self, query: &str, budget_tokens: u64) -> Answer {
        self.ask_with(query, &AskOptions::budget(budget_tokens))
    }

    /// [`ContextStore::ask`] with options: how many hits, whether to list copies, and who asks.
    pub fn ask_with(&self, query: &str, options: &AskOptions) -> Answer {
        self.ask_in(query, options, |_, _| false, None)
    }

    /// Has every later ask (the store's, and its sessions') order the search's best `depth`
    /// canonical candidates with `reranker` (a cross-encoder, a hosted rerank API) before the
    /// budget is filled, in its order; `None` goes back to the search's order. The reranker is
    /// called without the store locked; when it fails, an ask keeps the search's order and says
    /// why ([`Answer::rerank_error`]). A `depth` of 0 is taken as 1.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fourfold::context::{ContextStore, RerankCandidate};
    ///
    /// let store = ContextStore::new();
    /// store.put("docs/tokens.md", "# Tokens\n\n## Rotation\n\nTokens rotate every hour.\n")?;
    /// store.put("docs/sessions.md", "# Sessions\n\n## Signing\n\nSession tokens are signed with the vault key.\n")?;
    /// // A cross-encoder would score each (query, text) pair; this one prefers the vault.
    /// let reranker = |_query: &str, candidates: &[RerankCandidate]| -> Result<Vec<f32>, String> {
    ///     Ok(candidates.iter().map(|c| f32::from(u8::from(c.text.contains("vault")))).collect())
    /// };
    /// store.set_reranker(Some(Arc::new(reranker)), 20);
    /// let answer = store.ask("how do tokens work", 800);
    /// assert!(answer.reranked);
    /// assert_eq!(answer.hits[0].key, "docs/sessions.md");
    /// # Ok::<(), fourfold::context::ContextError>(())
    /// ```
    pub fn set_reranker(&self, reranker: Option<Arc<dyn Reranker>>, depth: usize) {
        *self.shared.reranker.write() = reranker.map(|reranker| (reranker, depth.max(1)));
    }

    /// Asks, serving only a pointer for sections `held` says the asker already has unchanged:
    /// `held(section_id, changed_in)`, and, with a `scope`, only the documents it allows.
    pub(super) fn ask_in(
        &self,
        query: &str,
        options: &AskOptions,
        held: impl Fn(&str, u64) -> bool,
        scope: Option<&ReadScope>,
    ) -> Answer {
        let reranker = self.shared.reranker.read().clone();
        let answer = match reranker {
            None => self.shared.state.read().ask(query, options, held, scope),
            Some((reranker, depth)) => {
                self.ask_reranked(query, options, held, scope, &*reranker, depth)
            }
        };
        self.emit(query, options, &answer);
        answer
    }

    /// An ask whose search's best `depth` candidates `reranker` orders: the search under the
    /// state's lock, the reranker without it, then the budget filled in its order from the
    /// candidates that are still current.
    fn ask_reranked(
        &self,
        query: &str,
        options: &AskOptions,
        held: impl Fn(&str, u64) -> bool,
        scope: Option<&ReadScope>,
        reranker: &dyn Reranker,
        depth: usize,
    ) -> Answer {
        let (searched, (versions, candidates)) = {
            let state = self.shared.state.read();
            let searched = state.search(query, options, scope, depth, 0.0);
            let candidates = state.rerank_candidates(&searched.ranked);
            (searched, candidates)
        };
        let scored = match reranker.rerank(query, &candidates) {
            Ok(scores) if scores.len() != candidates.len() => Err(format!(
                "the reranker gave {} scores for {} candidates",
                scores.len(),
                candidates.len()
            )),
            Ok(scores) if scores.iter().any(|score| !score.is_finite()) => {
                Err("the reranker gave a score that is not a finite number".to_string())
            }
            other => other,
        };
        let state = self.shared.state.read();
        // Still current, and still readable: the reranker may have taken seconds (a hosted
        // API), and the policy may have changed meanwhile.
        let servable = |(current, candidate): &(&Current, &RerankCandidate)| {
            state.still_current(current) && scope.is_none_or(|scope| scope(&candidate.key))
        };
        let mut answer = match scored {
            Ok(scores) => {
                let mut ranked: Vec<(u32, f32)> = versions
                    .iter()
                    .zip(&candidates)
                    .zip(scores)
                    .filter(|(found, _)| servable(found))
                    .map(|((current, _), score)| (current.0, score))
                    .collect();
                // Stable: equal scores keep the search's order.
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                let mut answer = state.fill(ranked, options, &held, false);
                answer.reranked = true;
                answer
            }
            Err(error) => {
                let ranked = versions
                    .iter()
                    .zip(&candidates)
                    .filter(servable)
                    .map(|(current, candidate)| (current.0, candidate.score))
                    .take(candidate_limit(options))
                    .collect();
                let mut answer = state.fill(ranked, options, &held, true);
                answer.rerank_error = Some(error);
                answer
            }
        };
        searched.complete(&mut answer);
        answer
    }

    /// The sections in `reads` whose text changed or that were removed since they were read.
    pub fn changed_since(&self, reads: &[SectionRead]) -> Vec<Change> {
        let state = self.shared.state.read();
        reads.iter().filter_map(|read| state.change(read)).collect()
    }

    /// A feed of every change from now on (see [`ChangeFeed`]).
    pub fn subscribe(&self) -> ChangeFeed {
        let (subscriber, feed) = feed::channel();
        self.shared.subscribers.lock().push(subscriber);
        feed
    }

    pub(super) fn notify(&self, change: Option<ContextChange>) {
        let Some(change) = change else { return };
        self.shared
            .subscribers
            .lock()
            .retain(|subscriber| subscriber.send(&change));
    }

    /// Writes back what an agent found (a decision, an incident, what worked) under
    /// `records/<topic>.md`, as a new section of that document, so other agents are served it.
    pub fn record(&self, topic: &str, text: &str) -> Result<DocVersion, ContextError> {
        let _recording = self.shared.recording.lock();
        let (key, body) = self.record_body(topic, text);
        self.put(&key, &body)
    }

    /// The key of `topic`'s record and its next text: the current text (if any) with `text`
    /// appended as a new section headed by its first line.
    pub(super) fn record_body(&self, topic: &str, text: &str) -> (String, String) {
        let slug: String = topic
            .chars()
            .map(|c| {
                if c.is_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .split('-')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let slug = if slug.is_empty() {
            "notes".to_string()
        } else {
            slug
        };
        let key = format!("records/{slug}.md");
        let heading = text
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or(topic);
        let heading: String = heading
            .trim()
            .trim_start_matches('#')
            .trim()
            .chars()
            .take(80)
            .collect();
        let previous = self.get(&key).map(|doc| doc.text);
        let body = match previous {
            Some(previous) => format!(
                "{}\n\n## {heading}\n\n{}\n",
                previous.trim_end(),
                text.trim()
            ),
            None => format!("# {topic}\n\n## {heading}\n\n{}\n", text.trim()),
        };
        (key, body)
    }

    fn emit(&self, query: &str, options: &AskOptions, answer: &Answer) {
        let Some(plugins) = &self.shared.plugins else {
            return;
        };
        if !plugins.listens(EventKindName::Context) {
            return;
        }
        let run_id = options.run_id.clone().unwrap_or_default();
        let event = Event {
            seq: self.shared.sequencer.next(&run_id),
            run_id,
            agent_id: options.agent.clone().unwrap_or_default(),
            task_id: options.task.clone(),
            timestamp_ns: self.shared.clock.now_ns(),
            span_id: None,
            parent_span_id: None,
            kind: EventKind::Context(ContextEvent {
                query: Some(query.to_string()),
                sections: answer
                    .hits
                    .iter()
                    .map(|hit| ServedSection {
                        key: hit.key.clone(),
                        section_id: hit.section_id.clone(),
                        version: hit.version,
                        freshness: hit.freshness.name().to_string(),
                    })
                    .collect(),
                tokens_served: answer.tokens_served,
                tokens_baseline: answer.tokens_baseline,
                withheld: answer.withheld,
            }),
        };
        plugins.emit(&event);
    }
}

impl State {
    pub(super) fn n_live(&self) -> usize {
        self.docs.iter().filter(|doc| doc.current.is_some()).count()
    }

    /// Checks that every reference inside a decoded snapshot points where it should, so that a
    /// forged snapshot is an error rather than a panic later.
    pub(super) fn check(&self) -> Result<(), String> {
        let valid = |at: &SectionRef| {
            self.docs
                .get(at.doc as usize)
                .and_then(|doc| doc.versions.get(at.version as usize))
                .is_some_and(|version| (at.section as usize) < version.sections.len())
        };
        for (key, &idx) in &self.doc_idx {
            if self
                .docs
                .get(idx as usize)
                .is_none_or(|doc| &doc.key != key)
            {
                return Err(format!("the key `{key}` points to no document"));
            }
        }
        if self.doc_idx.len() != self.docs.len() {
            return Err("documents and their keys disagree".to_string());
        }
        for doc in &self.docs {
            if doc
                .current
                .is_some_and(|idx| idx as usize >= doc.versions.len())
            {
                return Err(format!("`{}` has no current version", doc.key));
            }
            for version in &doc.versions {
                for section in &version.sections {
                    if section
                        .slot
                        .is_some_and(|slot| slot as usize >= self.slots.len())
                    {
                        return Err(format!("a section of `{}` has no slot", doc.key));
                    }
                    if version.text.get(section.bytes.clone()).is_none() {
                        return Err(format!(
                            "a section of `{}` lies outside its version's text",
                            doc.key
                        ));
                    }
                }
            }
        }
        if !self.slots.iter().flatten().all(valid) || !self.by_id.values().all(valid) {
            return Err("a section reference points nowhere".to_string());
        }
        Ok(())
    }

    fn document(&self, doc: &DocEntry, version_idx: u32) -> Document {
        let version = &doc.versions[version_idx as usize];
        Document {
            version: version.meta.clone(),
            current: doc.current == Some(version_idx),
            text: version.text.clone(),
            front_matter: version.front_matter.clone(),
            sections: (0..version.sections.len() as u32)
                .map(|section| {
                    self.section(SectionRef {
                        doc: self.doc_idx[&doc.key],
                        version: version_idx,
                        section,
                    })
                })
                .collect(),
        }
    }

    fn entry(&self, at: SectionRef) -> (&DocEntry, &VersionEntry, &SectionEntry) {
        let doc = &self.docs[at.doc as usize];
        let version = &doc.versions[at.version as usize];
        (doc, version, &version.sections[at.section as usize])
    }

    fn section(&self, at: SectionRef) -> Section {
        let (doc, version, section) = self.entry(at);
        Section {
            id: section.id.clone(),
            key: doc.key.clone(),
            version: version.meta.version,
            changed_in: section.changed_in,
            heading_path: section.heading_path.clone(),
            line_start: section.line_start,
            line_end: section.line_end,
            tokens: section.tokens,
            text: version.text_of(section).to_string(),
            marker: section.marker.clone(),
        }
    }

    fn is_current(&self, at: SectionRef) -> bool {
        self.docs[at.doc as usize].current == Some(at.version)
    }

    fn put(
        &mut self,
        prepared: Prepared,
        at_ns: u64,
        source: Option<&str>,
    ) -> (DocVersion, Option<ContextChange>) {
        self.n_ops += 1;
        let op = self.n_ops;
        let doc_idx = match self.doc_idx.get(&prepared.key) {
            Some(&idx) => idx,
            None => {
                self.docs.push(DocEntry {
                    key: prepared.key.clone(),
                    created_op: op,
                    versions: Vec::new(),
                    current: None,
                    source: None,
                });
                let idx = (self.docs.len() - 1) as u32;
                self.doc_idx.insert(prepared.key.clone(), idx);
                idx
            }
        };
        let mut affected = self.retire_current(doc_idx, op);
        let doc = &mut self.docs[doc_idx as usize];
        doc.source = source.map(str::to_string).or(doc.source.take());
        let previous: FxHashMap<String, ([u8; 16], u64)> = doc
            .versions
            .last()
            .map(|last| {
                last.sections
                    .iter()
                    .map(|s| (s.id.clone(), (s.content_hash, s.changed_in)))
                    .collect()
            })
            .unwrap_or_default();
        let number = doc.versions.last().map_or(1, |last| last.meta.version + 1);
        let mut sections = prepared.sections;
        for section in &mut sections {
            section.changed_in = match previous.get(section.id.as_str()) {
                Some((hash, changed_in)) if *hash == section.content_hash => *changed_in,
                _ => number,
            };
        }
        let removed: Vec<String> = previous
            .keys()
            .filter(|id| !sections.iter().any(|section| &section.id == *id))
            .cloned()
            .collect();
        let changed: Vec<String> = sections
            .iter()
            .filter(|section| section.changed_in == number)
            .map(|section| section.id.clone())
            .collect();
        let meta = DocVersion {
            key: prepared.key.clone(),
            version: number,
            hash: prepared.hash,
            at_ns,
            n_sections: sections.len() as u32,
            tokens: prepared.tokens,
        };
        doc.versions.push(VersionEntry {
            meta: meta.clone(),
            text: prepared.text,
            front_matter: prepared.front_matter,
            sections,
            created_op: op,
            retired_op: None,
        });
        let version_idx = (doc.versions.len() - 1) as u32;
        doc.current = Some(version_idx);
        self.add_current(
            doc_idx,
            version_idx,
            prepared.analyzed,
            prepared.renames,
            &mut affected,
        );
        affected.insert(doc_idx);
        self.remark(&affected);
        let change = ContextChange {
            key: prepared.key,
            version: Some(number),
            changed_sections: changed,
            removed_sections: removed,
        };
        (meta, Some(change))
    }

    fn delete(&mut self, key: &str) -> Option<ContextChange> {
        let doc_idx = *self.doc_idx.get(key)?;
        self.docs[doc_idx as usize].current?;
        self.n_ops += 1;
        let removed: Vec<String> = self.docs[doc_idx as usize]
            .current()
            .map(|version| version.sections.iter().map(|s| s.id.clone()).collect())
            .unwrap_or_default();
        let affected = self.retire_current(doc_idx, self.n_ops);
        self.docs[doc_idx as usize].current = None;
        self.remark(&affected);
        Some(ContextChange {
            key: key.to_string(),
            version: None,
            changed_sections: Vec::new(),
            removed_sections: removed,
        })
    }

    /// Takes the current version of `doc_idx` out of the index; returns the documents whose
    /// markers may depend on it.
    fn retire_current(&mut self, doc_idx: u32, op: u64) -> BTreeSet<u32> {
        let mut affected = BTreeSet::new();
        let doc = &mut self.docs[doc_idx as usize];
        let Some(version_idx) = doc.current else {
            return affected;
        };
        let version = &mut doc.versions[version_idx as usize];
        version.retired_op = Some(op);
        for section in &mut version.sections {
            if let Some(slot) = section.slot.take() {
                self.index.remove(slot);
                self.renames.remove(slot);
                self.slots[slot as usize] = None;
                if let Some(canonical) = self.canonical.get_mut(slot as usize) {
                    *canonical = false;
                }
            }
            self.by_id.remove(&section.id);
        }
        for section in &version.sections {
            if let Some(signature) = &section.signature {
                affected.extend(self.lsh.candidates(signature).iter().map(|at| at.doc));
            }
        }
        affected.remove(&doc_idx);
        affected
    }

    /// Makes version `version_idx` of `doc_idx` current in the index, with its sections' terms
    /// and renames as [`ContextStore::prepare`] found them (or found here, if they do not match).
    fn add_current(
        &mut self,
        doc_idx: u32,
        version_idx: u32,
        analyzed: Vec<AnalyzedDocument>,
        renames: Vec<Vec<(String, String)>>,
        affected: &mut BTreeSet<u32>,
    ) {
        let doc = &mut self.docs[doc_idx as usize];
        let key_text = key_words(&doc.key);
        let VersionEntry { text, sections, .. } = &mut doc.versions[version_idx as usize];
        let mut analyzed = (analyzed.len() == sections.len()).then(|| analyzed.into_iter());
        let mut renames = (renames.len() == sections.len()).then(|| renames.into_iter());
        for (section_idx, section) in sections.iter_mut().enumerate() {
            let at = SectionRef {
                doc: doc_idx,
                version: version_idx,
                section: section_idx as u32,
            };
            let slot = self.slots.len() as u32;
            self.slots.push(Some(at));
            section.slot = Some(slot);
            let terms = match analyzed.as_mut().and_then(Iterator::next) {
                Some(terms) => terms,
                None => Index::analyze(&index_fields(
                    &section.heading_path.join(" "),
                    &key_text,
                    section.text_in(text),
                )),
            };
            // The merge this may make due runs once the writer's lock is released.
            self.index.insert_unmerged(slot, terms);
            let stated = match renames.as_mut().and_then(Iterator::next) {
                Some(stated) => stated,
                None => renames::extract(section.text_in(text)),
            };
            self.renames.add(slot, stated);
            self.by_id.entry(section.id.clone()).or_insert(at);
            if let Some(signature) = &section.signature {
                affected.extend(self.lsh.candidates(signature).iter().map(|at| at.doc));
                self.lsh.insert(signature, at);
            }
        }
    }

    /// How many archive folders the state marks by.
    #[cfg(test)]
    pub(super) fn archive_len(&self) -> usize {
        self.archive.len()
    }

    /// Sets the marker of the first section of `key`'s current version, whatever the rules say.
    #[cfg(test)]
    pub(super) fn plant_marker(&mut self, key: &str, marker: Marker) {
        let doc_idx = self.doc_idx[key] as usize;
        let doc = &mut self.docs[doc_idx];
        let current = doc.current.expect("a live document") as usize;
        doc.versions[current].sections[0].marker = marker;
    }

    /// Sets where the text of the first section of `key`'s current version lies, whatever its
    /// text.
    #[cfg(test)]
    pub(super) fn plant_section_bytes(&mut self, key: &str, bytes: Range<usize>) {
        let doc_idx = self.doc_idx[key] as usize;
        let doc = &mut self.docs[doc_idx];
        let current = doc.current.expect("a live document") as usize;
        doc.versions[current].sections[0].bytes = bytes;
    }

    /// The changes that turn the current documents of `self` into those of `next`: one for
    /// each key whose current text differs (a new or changed version, or a delete).
    pub(super) fn changes_to(&self, next: &State) -> Vec<ContextChange> {
        let (before, after) = (self.current_versions(), next.current_versions());
        let keys: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
        let mut changes = Vec::new();
        for key in keys {
            let (old, new) = (before.get(key), after.get(key));
            if old.map(|version| &version.meta.hash) == new.map(|version| &version.meta.hash) {
                continue;
            }
            let sections = |version: Option<&&VersionEntry>| -> Vec<(String, [u8; 16])> {
                version.map_or_else(Vec::new, |version| {
                    version
                        .sections
                        .iter()
                        .map(|section| (section.id.clone(), section.content_hash))
                        .collect()
                })
            };
            let (old_sections, new_sections) = (sections(old), sections(new));
            changes.push(ContextChange {
                key: key.to_string(),
                version: new.map(|version| version.meta.version),
                changed_sections: new_sections
                    .iter()
                    .filter(|section| !old_sections.contains(section))
                    .map(|(id, _)| id.clone())
                    .collect(),
                removed_sections: old_sections
                    .iter()
                    .filter(|(id, _)| !new_sections.iter().any(|(new_id, _)| new_id == id))
                    .map(|(id, _)| id.clone())
                    .collect(),
            });
        }
        changes
    }

    /// The current version of each live document, by key.
    fn current_versions(&self) -> BTreeMap<&str, &VersionEntry> {
        self.docs
            .iter()
            .filter_map(|doc| Some((doc.key.as_str(), doc.current()?)))
            .collect()
    }

    /// The archive folders and pinned keys the state is marked with.
    pub(super) fn marking_config(&self) -> (Vec<String>, Vec<String>) {
        (self.archive.clone(), self.pins.iter().cloned().collect())
    }

    /// Sets every slot's canonical flag from its section's marker (the flags are not saved).
    fn flag_canonical_slots(&mut self) {
        let flags: Vec<bool> = self
            .slots
            .iter()
            .map(|at| {
                at.is_some_and(|at| {
                    self.is_current(at) && self.entry(at).2.marker.freshness == Freshness::Canonical
                })
            })
            .collect();
        self.canonical = flags;
    }

    /// Makes the similarity table from every version's signatures (it is not saved), adding
    /// the versions in the order the puts that made them added them, so that its candidates
    /// come in the order they came in the store that was saved, and markers are chosen alike.
    pub(super) fn index_signatures(&mut self) {
        let mut versions: Vec<(u64, u32, u32)> = Vec::new();
        let mut n_signed = 0;
        for (doc_idx, doc) in self.docs.iter().enumerate() {
            for (version_idx, version) in doc.versions.iter().enumerate() {
                versions.push((version.created_op, doc_idx as u32, version_idx as u32));
                n_signed += version
                    .sections
                    .iter()
                    .filter(|section| section.signature.is_some())
                    .count();
            }
        }
        versions.sort_unstable();
        let mut lsh = Lsh::with_capacity(n_signed);
        for (_, doc, version) in versions {
            let sections = &self.docs[doc as usize].versions[version as usize].sections;
            for (section_idx, section) in sections.iter().enumerate() {
                if let Some(signature) = &section.signature {
                    let at = SectionRef {
                        doc,
                        version,
                        section: section_idx as u32,
                    };
                    lsh.insert(signature, at);
                }
            }
        }
        self.lsh = lsh;
    }

    /// Reads the renames every current section states (they are not saved).
    fn find_renames(&mut self) {
        let mut renames = Renames::default();
        for (slot, at) in self.slots.iter().enumerate() {
            if let Some(at) = at {
                let (_, version, section) = self.entry(*at);
                renames.add(slot as u32, renames::extract(version.text_of(section)));
            }
        }
        self.renames = renames;
    }

    fn remark_all(&mut self) {
        let all: BTreeSet<u32> = (0..self.docs.len() as u32).collect();
        self.remark(&all);
    }

    /// Recomputes the markers of the current versions of `docs`.
    fn remark(&mut self, docs: &BTreeSet<u32>) {
        for &doc_idx in docs {
            let Some(version_idx) = self.docs[doc_idx as usize].current else {
                continue;
            };
            let markers = self.markers(doc_idx, version_idx);
            let version = &mut self.docs[doc_idx as usize].versions[version_idx as usize];
            let mut slots = Vec::with_capacity(markers.len());
            for (section, marker) in version.sections.iter_mut().zip(markers) {
                if let Some(slot) = section.slot {
                    slots.push((slot, marker.freshness == Freshness::Canonical));
                }
                section.marker = marker;
            }
            for (slot, canonical) in slots {
                self.set_canonical(slot, canonical);
            }
        }
    }

    fn set_canonical(&mut self, slot: u32, canonical: bool) {
        let idx = slot as usize;
        if self.canonical.len() <= idx {
            self.canonical.resize(idx + 1, false);
        }
        self.canonical[idx] = canonical;
    }

    /// Whether `slot` holds a current canonical section.
    fn is_canonical(&self, slot: u32) -> bool {
        self.canonical.get(slot as usize).copied().unwrap_or(false)
    }

    /// The order in which two copies' documents are preferred as canonical: pinned, then not
    /// archived, then the older key, then the key.
    fn preference(&self, doc_idx: u32) -> (bool, bool, u64, &str) {
        let doc = &self.docs[doc_idx as usize];
        (
            !self.pins.contains(&doc.key),
            self.archived(&doc.key).is_some(),
            doc.created_op,
            doc.key.as_str(),
        )
    }

    fn archived(&self, key: &str) -> Option<&str> {
        self.archive
            .iter()
            .find(|prefix| key.starts_with(prefix.as_str()))
            .map(String::as_str)
    }

    fn markers(&self, doc_idx: u32, version_idx: u32) -> Vec<Marker> {
        let doc = &self.docs[doc_idx as usize];
        let version = &doc.versions[version_idx as usize];
        let whole = |reason: String, copy_of: Option<String>| {
            vec![
                Marker {
                    freshness: Freshness::Stale,
                    reason: Some(reason),
                    copy_of,
                };
                version.sections.len()
            ]
        };
        if !self.pins.contains(&doc.key) {
            if let Some(prefix) = self.archived(&doc.key) {
                return whole(format!("it is in the archive folder `{prefix}`"), None);
            }
            if let Some(successor) = version.front_matter.get("superseded_by") {
                let reason = format!("its front matter says it is superseded by `{successor}`");
                return whole(reason, Some(successor.clone()));
            }
        }
        let mut markers = Vec::with_capacity(version.sections.len());
        let (mut judged_tokens, mut stale_tokens) = (0u64, 0u64);
        let mut first_stale: Option<Marker> = None;
        for section in &version.sections {
            let Some(signature) = &section.signature else {
                markers.push(Marker::CANONICAL);
                continue;
            };
            judged_tokens += u64::from(section.tokens);
            let marker = self.section_marker(doc_idx, version, signature);
            if marker.freshness == Freshness::Stale {
                stale_tokens += u64::from(section.tokens);
                first_stale.get_or_insert_with(|| marker.clone());
            }
            markers.push(marker);
        }
        if judged_tokens > 0
            && stale_tokens as f64 >= STALE_DOCUMENT_SHARE * judged_tokens as f64
            && !self.pins.contains(&doc.key)
        {
            let first = first_stale.unwrap_or(Marker::CANONICAL);
            let reason = format!(
                "{}% of its text copies replaced text; for example {}",
                stale_tokens * 100 / judged_tokens,
                first.reason.unwrap_or_default()
            );
            return whole(reason, first.copy_of);
        }
        markers
    }

    /// Whether the text of `other_version` moved to document `doc_idx` rather than being replaced:
    /// a delete retired it (no version of its document was put by the operation that did), and
    /// `doc_idx` was live when it was deleted (a page moved to a new path is put there before the
    /// old path is deleted). The later versions of the page at its new path carry the text on;
    /// they are not stale copies of it. Only the history counts, not whether the old path was put
    /// again since, so marking a store from scratch agrees with marking it put by put.
    fn moved_here(&self, doc_idx: u32, other_doc: &DocEntry, other_version: &VersionEntry) -> bool {
        let Some(deleted_at) = other_version.retired_op else {
            return false;
        };
        let replaced = other_doc
            .versions
            .iter()
            .any(|version| version.created_op == deleted_at);
        if replaced {
            return false;
        }
        self.docs[doc_idx as usize].versions.iter().any(|version| {
            version.created_op < deleted_at
                && version
                    .retired_op
                    .is_none_or(|retired| retired >= deleted_at)
        })
    }

    /// A section's marker from the copies of its text: a duplicate if a preferred live document
    /// holds it, stale if it only matches text that had been replaced or deleted before this
    /// version was put.
    fn section_marker(
        &self,
        doc_idx: u32,
        version: &VersionEntry,
        signature: &Signature,
    ) -> Marker {
        let mut duplicate_of: Option<(SectionRef, f32)> = None;
        let mut stale_of: Option<(SectionRef, f32)> = None;
        let mine = self.preference(doc_idx);
        for at in self.lsh.candidates(signature) {
            if at.doc == doc_idx {
                continue;
            }
            let (other_doc, other_version, other) = self.entry(at);
            let Some(other_signature) = &other.signature else {
                continue;
            };
            let similarity = signature.similarity(other_signature);
            if similarity < NEAR_IDENTICAL {
                continue;
            }
            if self.is_current(at) {
                let archived_or_superseded = self.archived(&other_doc.key).is_some()
                    || other_version.front_matter.contains_key("superseded_by");
                if !archived_or_superseded && self.preference(at.doc) < mine {
                    let better = duplicate_of.is_none_or(|(_, best)| similarity > best);
                    if better {
                        duplicate_of = Some((at, similarity));
                    }
                }
            } else if other_version
                .retired_op
                .is_some_and(|retired| retired < version.created_op)
                && !self.moved_here(doc_idx, other_doc, other_version)
                && stale_of.is_none_or(|(_, best)| similarity > best)
            {
                stale_of = Some((at, similarity));
            }
        }
        let live_copy_anywhere = self
            .lsh
            .candidates(signature)
            .into_iter()
            .any(|at| at.doc != doc_idx && self.is_current(at));
        if let Some((at, similarity)) = duplicate_of {
            let (other_doc, _, other) = self.entry(at);
            return Marker {
                freshness: Freshness::Duplicate,
                reason: Some(format!(
                    "near-identical ({:.0}%) to `{}` § {}, the canonical copy",
                    similarity * 100.0,
                    other_doc.key,
                    other.heading_path.join(" > ")
                )),
                copy_of: Some(format!("{}:{}", other_doc.key, other.line_start)),
            };
        }
        if let (Some((at, similarity)), false) = (stale_of, live_copy_anywhere) {
            let (other_doc, other_version, other) = self.entry(at);
            let fate = match other_doc.current() {
                Some(current) => format!("replaced by v{}", current.meta.version),
                None => "since deleted".to_string(),
            };
            return Marker {
                freshness: Freshness::Stale,
                reason: Some(format!(
                    "it matches ({:.0}%) `{}` v{} § {}, {fate}",
                    similarity * 100.0,
                    other_doc.key,
                    other_version.meta.version,
                    other.heading_path.join(" > ")
                )),
                copy_of: Some(format!("{}:{}", other_doc.key, other.line_start)),
            };
        }
        Marker::CANONICAL
    }

    /// The hit for the section at `at`, without its text (which only a served hit needs).
    fn hit(&self, at: SectionRef, score: f32) -> Hit {
        let (doc, version, section) = self.entry(at);
        Hit {
            key: doc.key.clone(),
            section_id: section.id.clone(),
            heading_path: section.heading_path.clone(),
            pointer: format!("{}:{}", doc.key, section.line_start),
            line_start: section.line_start,
            line_end: section.line_end,
            version: version.meta.version,
            changed_in: section.changed_in,
            freshness: section.marker.freshness,
            reason: section.marker.reason.clone(),
            tokens: section.header_tokens + section.tokens,
            text: None,
            truncated: false,
            already_served: false,
            score,
        }
    }

    fn ask(
        &self,
        query: &str,
        options: &AskOptions,
        held: impl Fn(&str, u64) -> bool,
        scope: Option<&ReadScope>,
    ) -> Answer {
        let mut searched = self.search(
            query,
            options,
            scope,
            candidate_limit(options),
            MIN_RELATIVE_SCORE,
        );
        let mut answer = self.fill(std::mem::take(&mut searched.ranked), options, &held, true);
        searched.complete(&mut answer);
        answer
    }

    /// The search of an ask: its best `limit` canonical sections (those scoring at least
    /// `min_relative` of the best), the renames it applied, the matching copies (when asked for)
    /// and the documents `scope` kept out.
    fn search(
        &self,
        query: &str,
        options: &AskOptions,
        scope: Option<&ReadScope>,
        limit: usize,
        min_relative: f32,
    ) -> Searched {
        // What `scope` says of each document met, by document index: asked once per document.
        let judged: RefCell<FxHashMap<u32, bool>> = RefCell::default();
        let readable = |slot: u32| {
            let Some(scope) = scope else {
                return true;
            };
            let Some(at) = self.slots.get(slot as usize).copied().flatten() else {
                return false;
            };
            if let Some(&allowed) = judged.borrow().get(&at.doc) {
                return allowed;
            }
            let allowed = scope(&self.docs[at.doc as usize].key);
            judged.borrow_mut().insert(at.doc, allowed);
            allowed
        };
        let canonical = |slot: u32| self.is_canonical(slot) && readable(slot);
        // A query naming an old name as code searches for what the canonical sections say
        // replaced it as well (`renames`).
        let renamed = self.renames.of_query(query, canonical);
        let expanded;
        let query = if renamed.is_empty() {
            query
        } else {
            let mut text = query.to_string();
            for (_, new, _) in &renamed {
                text.push(' ');
                text.push_str(new);
            }
            expanded = text;
            expanded.as_str()
        };
        // The documents whose canonical sections the search would have taken but `scope` kept out.
        let withheld: RefCell<FxHashSet<u32>> = RefCell::default();
        let ranked = self
            .index
            .search_within(query, limit, min_relative, |slot| {
                if !self.is_canonical(slot) {
                    return false;
                }
                let allowed = readable(slot);
                if !allowed {
                    if let Some(at) = self.slots.get(slot as usize).copied().flatten() {
                        withheld.borrow_mut().insert(at.doc);
                    }
                }
                allowed
            });
        let renames = renamed
            .iter()
            .filter_map(|&(old, new, slot)| {
                let at = self.slots.get(slot as usize).copied().flatten()?;
                let (doc, _, section) = self.entry(at);
                Some(Rename {
                    old: old.to_string(),
                    new: new.to_string(),
                    pointer: format!("{}:{}", doc.key, section.line_start),
                })
            })
            .collect();
        let mut copies = Vec::new();
        if options.with_copies {
            let found = self
                .index
                .search(query, options.max_hits.max(1) * 4, |slot| {
                    !self.is_canonical(slot) && readable(slot)
                });
            for (slot, score) in found.into_iter().take(options.max_hits) {
                if let Some(at) = self.slots.get(slot as usize).copied().flatten() {
                    let mut hit = self.hit(at, score);
                    hit.tokens = 0;
                    copies.push(hit);
                }
            }
        }
        let withheld = withheld.borrow().len() as u64;
        Searched {
            ranked,
            renames,
            copies,
            withheld,
        }
    }

    /// What a reranker is given of each of `ranked`'s sections, and beside it what identifies
    /// the section's version, to check that it is still current once the reranker is done.
    fn rerank_candidates(&self, ranked: &[(u32, f32)]) -> (Vec<Current>, Vec<RerankCandidate>) {
        ranked
            .iter()
            .filter_map(|&(slot, score)| {
                let at = self.slots.get(slot as usize).copied().flatten()?;
                let (doc, version, section) = self.entry(at);
                Some((
                    (slot, section.id.clone(), section.changed_in),
                    RerankCandidate {
                        key: doc.key.clone(),
                        heading_path: section.heading_path.clone(),
                        text: version.text_of(section).to_string(),
                        score,
                    },
                ))
            })
            .unzip()
    }

    /// Whether the section a reranker was given is still the current canonical one at its slot.
    fn still_current(&self, (slot, id, changed_in): &Current) -> bool {
        self.is_canonical(*slot)
            && self
                .slots
                .get(*slot as usize)
                .copied()
                .flatten()
                .is_some_and(|at| {
                    let section = self.entry(at).2;
                    section.id == *id && section.changed_in == *changed_in
                })
    }

    /// Serves `ranked`'s sections, best first, while they fit the budget; with `relative`, only
    /// those scoring at least [`MIN_RELATIVE_SCORE`] of the first.
    fn fill(
        &self,
        ranked: Vec<(u32, f32)>,
        options: &AskOptions,
        held: &impl Fn(&str, u64) -> bool,
        relative: bool,
    ) -> Answer {
        let mut answer = Answer {
            budget_tokens: options.budget_tokens,
            ..Answer::default()
        };
        let top = ranked.first().map_or(0.0, |(_, score)| *score);
        let mut docs_served: BTreeSet<u32> = BTreeSet::new();
        for (slot, score) in ranked {
            if answer.hits.len() >= options.max_hits
                || (relative && score < top * MIN_RELATIVE_SCORE)
            {
                break;
            }
            let Some(at) = self.slots.get(slot as usize).copied().flatten() else {
                continue;
            };
            let left = options.budget_tokens.saturating_sub(answer.tokens_served);
            let (_, version, section) = self.entry(at);
            let is_held = held(&section.id, section.changed_in);
            // Most candidates after the first few do not fit what is left: skip them before
            // building their hits.
            if !is_held
                && !answer.hits.is_empty()
                && u64::from(section.header_tokens.saturating_add(section.tokens)) > left
            {
                continue;
            }
            let mut hit = self.hit(at, score);
            if is_held {
                hit.already_served = true;
                hit.tokens = section.header_tokens;
            } else if u64::from(hit.tokens) > left {
                if !answer.hits.is_empty() {
                    continue;
                }
                if !truncate(
                    &mut hit,
                    version.text_of(section),
                    section.header_tokens,
                    left,
                ) {
                    continue;
                }
            } else {
                hit.text = Some(version.text_of(section).to_string());
            }
            if u64::from(hit.tokens) > left {
                continue;
            }
            answer.tokens_served += u64::from(hit.tokens);
            if docs_served.insert(at.doc) {
                answer.tokens_baseline += self.entry(at).1.meta.tokens;
            }
            answer.hits.push(hit);
        }
        answer
    }

    fn change(&self, read: &SectionRead) -> Option<Change> {
        let unchanged = None;
        let Some(&doc_idx) = self.doc_idx.get(&read.key) else {
            return Some(Change {
                read: read.clone(),
                reason: format!("there is no document `{}`", read.key),
                current_version: None,
                current_pointer: None,
            });
        };
        let doc = &self.docs[doc_idx as usize];
        let Some(current) = doc.current() else {
            return Some(Change {
                read: read.clone(),
                reason: format!("`{}` was deleted", read.key),
                current_version: None,
                current_pointer: None,
            });
        };
        let version = current.meta.version;
        match current
            .sections
            .iter()
            .find(|section| section.id == read.section_id)
        {
            None => Some(Change {
                read: read.clone(),
                reason: format!("the section is gone from `{}` v{version}", read.key),
                current_version: Some(version),
                current_pointer: None,
            }),
            Some(section) if section.changed_in > read.version => Some(Change {
                read: read.clone(),
                reason: format!(
                    "the section changed in v{} (read at v{})",
                    section.changed_in, read.version
                ),
                current_version: Some(version),
                current_pointer: Some(format!("{}:{}", read.key, section.line_start)),
            }),
            Some(_) => unchanged,
        }
    }
}

/// Gives `hit` the first lines of `text` (its section's) that fit in `budget` tokens with its header.
/// Returns false if not even one line fits.
fn truncate(hit: &mut Hit, text: &str, header_tokens: u32, budget: u64) -> bool {
    let mut kept = String::new();
    let mut kept_tokens = header_tokens;
    for line in text.split_inclusive('\n') {
        let line_tokens = count_tokens(line) as u32;
        if u64::from(kept_tokens + line_tokens) > budget {
            break;
        }
        kept.push_str(line);
        kept_tokens += line_tokens;
    }
    if kept.is_empty() {
        return false;
    }
    // Tokens at a line boundary can merge; count the kept text once more to be exact.
    let exact = header_tokens + count_tokens(&kept) as u32;
    if u64::from(exact) > budget {
        return false;
    }
    hit.text = Some(kept);
    hit.tokens = exact;
    hit.truncated = true;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INTRO: &str =
        "# Models\n\nA model is a class with typed fields, validated on creation.\n\
        Fields without a default are required; the rest take their default when left out.\n\n\
        ## Export\n\nA model exports its fields to a dictionary with include and exclude sets, \
        and to JSON with the same options and an indent.\n";
    const EXPORT: &str = "# Export\n\nA model exports its fields to a dictionary with include and \
        exclude sets, and to JSON with the same options and an indent.\n";
    const OTHER: &str = "# Validators\n\nA validator runs before or after a field's own parsing \
        and may change the value it returns.\n";

    #[test]
    fn puts_merge_the_index_once_a_merge_is_due() {
        let store = ContextStore::new();
        let document = |n: usize| -> String {
            let mut text = format!("# Guide {n}\n\n");
            for part in 0..10 {
                text.push_str(&format!("## Part {part}\n\nword{n} part{part} shared\n\n"));
            }
            text
        };
        // 11 sections a document: past 4,096 sections in the delta segment a merge is due, and
        // the put that makes it due starts it on a thread of its own.
        let mut merges = 0;
        for n in 0..400 {
            store.put(&format!("docs/{n}.md"), &document(n)).unwrap();
            let due = store.shared.state.read().index.merge_due();
            store.wait_for_merge();
            if due {
                merges += 1;
            }
            assert!(
                !store.shared.state.read().index.merge_due(),
                "after put {n}"
            );
        }
        assert_eq!(merges, 1, "4,400 sections make one merge due");
        assert!(
            store.compact(),
            "the puts after the last merge stay to be merged"
        );
        assert_eq!(store.ask("word399 part9", 500).hits[0].key, "docs/399.md");
    }

    #[test]
    fn puts_go_on_while_a_merge_is_built_and_none_is_lost() {
        let store = ContextStore::new();
        let document = |n: usize, version: usize| -> String {
            let mut text = format!("# Guide {n}\n\n");
            for part in 0..10 {
                text.push_str(&format!(
                    "## Part {part}\n\nword{n} part{part} version{version} shared\n\n"
                ));
            }
            text
        };
        // Puts go on while merges are built on another thread: new keys, new versions of keys
        // put before the merge began, and deletes. `expected` has each live key's version.
        let mut expected = BTreeMap::new();
        let mut put = |n: usize, version: usize| {
            store
                .put(&format!("docs/{n}.md"), &document(n, version))
                .unwrap();
            expected.insert(n, version);
        };
        for n in 0..1_200 {
            put(n, 1);
            if n % 3 == 0 {
                put(n / 2, 2);
            }
        }
        for n in (0..1_200).step_by(7) {
            store.delete(&format!("docs/{n}.md")).unwrap();
            expected.remove(&n);
        }
        let check = |store: &ContextStore| {
            let keys: Vec<String> = expected.keys().map(|n| format!("docs/{n}.md")).collect();
            let mut live = store.keys();
            live.sort_by_key(|key| key[5..key.len() - 3].parse::<usize>().unwrap());
            assert_eq!(live, keys);
            for (n, version) in &expected {
                let answer = store.ask(&format!("word{n} part3 version{version}"), 500);
                assert_eq!(answer.hits[0].key, format!("docs/{n}.md"));
                assert_eq!(
                    answer.hits[0].heading_path,
                    [format!("Guide {n}"), "Part 3".into()]
                );
            }
            for n in (0..1_200).step_by(7) {
                let answer = store.ask(&format!("word{n} part3"), 500);
                let deleted = format!("docs/{n}.md");
                assert!(
                    answer.hits.iter().all(|hit| hit.key != deleted),
                    "{deleted} served"
                );
            }
        };
        store.wait_for_merge();
        check(&store);
        store.compact();
        check(&store);
    }

    /// Every marker of a store that each marking rule touches, as `key > heading: freshness
    /// (reason)`. If this changes, saved stores would be marked otherwise: bump
    /// [`MARKING_VERSION`] (so that they are re-marked when opened) and update the list.
    #[test]
    fn markers_are_as_marking_version_says() {
        let store = ContextStore::builder()
            .archive("archive/")
            .pin("pinned/export.md")
            .build();
        store.put("docs/models.md", INTRO).unwrap();
        store.put("wiki/export.md", EXPORT).unwrap();
        store.put("pinned/export.md", EXPORT).unwrap();
        store.put("archive/validators.md", OTHER).unwrap();
        store.put("docs/validators.md", OTHER).unwrap();
        let superseded = format!("---\nsuperseded_by: docs/validators.md\n---\n{OTHER}");
        store.put("old/validators.md", &superseded).unwrap();
        let login_v1 = "# Login\n\nCall `login(user, password)` with the account's name and \
            password; it returns a session token valid for an hour, renewed on every request.\n";
        let login_v2 = "# Login\n\nOpen the browser flow with `start_login()`, which returns a \
            device code; poll `finish_login(code)` until the user approves the sign-in.\n";
        store.put("docs/login.md", login_v1).unwrap();
        store.put("docs/login.md", login_v2).unwrap();
        store.put("legacy/login.md", login_v1).unwrap();
        let mut markers = Vec::new();
        for key in store.keys() {
            for section in store.get(&key).unwrap().sections {
                markers.push(format!(
                    "{key} > {}: {:?} ({})",
                    section.heading_path.join(" > "),
                    section.marker.freshness,
                    section.marker.reason.unwrap_or_default()
                ));
            }
        }
        let expected = [
            "archive/validators.md > Validators: Stale (it is in the archive folder `archive/`)",
            "docs/login.md > Login: Canonical ()",
            "docs/models.md > Models: Canonical ()",
            "docs/models.md > Models > Export: Duplicate (near-identical (100%) to `pinned/export.md` § Export, the canonical copy)",
            "docs/validators.md > Validators: Canonical ()",
            "legacy/login.md > Login: Stale (100% of its text copies replaced text; for example it matches (100%) `docs/login.md` v1 § Login, replaced by v2)",
            "old/validators.md > Validators: Stale (its front matter says it is superseded by `docs/validators.md`)",
            "pinned/export.md > Export: Canonical ()",
            "wiki/export.md > Export: Duplicate (near-identical (100%) to `docs/models.md` § Models > Export, the canonical copy)",
        ];
        assert_eq!(
            markers, expected,
            "the markers changed: bump MARKING_VERSION and update this list"
        );
    }

    /// Whether every index slot's canonical flag agrees with the marker of its section.
    fn flags_match_markers(state: &State) -> bool {
        state.slots.iter().enumerate().all(|(slot, at)| {
            let marked =
                at.is_some_and(|at| state.entry(at).2.marker.freshness == Freshness::Canonical);
            state.is_canonical(slot as u32) == marked
        })
    }

    /// Two stores whose clocks never move, so that their versions compare whole.
    fn stores_at_one_time() -> (ContextStore, ContextStore) {
        let store = || {
            ContextStore::builder()
                .clock(Arc::new(crate::event::ManualClock::new(1_000)))
                .build()
        };
        (store(), store())
    }

    /// Every version of every key, with its sections and their markers.
    fn every_version(store: &ContextStore) -> Vec<Document> {
        let state = store.shared.state.read();
        let keys: Vec<String> = state.doc_idx.keys().cloned().collect();
        drop(state);
        let mut documents = Vec::new();
        for key in keys {
            for version in store.history(&key) {
                documents.extend(store.get_version(&key, version.version));
            }
        }
        documents
    }

    #[test]
    fn put_many_checks_every_key_before_it_puts_any() {
        let store = ContextStore::new();
        let error = store
            .put_many(&[("docs/a.md", INTRO), ("", EXPORT), ("docs/b.md", OTHER)])
            .unwrap_err();
        assert!(matches!(error, ContextError::InvalidKey { .. }), "{error}");
        assert!(store.keys().is_empty(), "{:?}", store.keys());
    }

    #[test]
    fn put_many_leaves_the_index_merged_as_a_put_would() {
        let documents = |docs: std::ops::Range<usize>| -> Vec<(String, String)> {
            docs.map(|doc| {
                let text: String = (0..50)
                    .map(|section| format!("## Part {section}\n\nterm{doc}x{section} here.\n\n"))
                    .collect();
                (format!("docs/{doc}.md"), text)
            })
            .collect()
        };
        let store = ContextStore::new();
        store.put_many(&documents(0..100)).unwrap();
        store.compact();
        // 4,500 sections more: fewer than the main segment's 5,000, so the load's puts start no
        // merge, and more than a put among asks leaves in the delta, so the load ends with one.
        store.put_many(&documents(100..190)).unwrap();
        store.wait_for_merge();
        assert!(!store.shared.state.read().index.merge_due());
        let answer = store.ask("term189x49", 800);
        assert_eq!(answer.hits[0].key, "docs/189.md");
        assert_eq!(answer.hits[0].heading_path.last().unwrap(), "Part 49");
    }

    #[test]
    fn put_many_of_many_documents_is_a_loop_of_puts() {
        // Enough documents that other threads prepare them ahead, with keys put again later in
        // the batch, texts put again unchanged, and copies whose markers follow the order.
        let documents: Vec<(String, String)> = (0..200)
            .map(|n| {
                let key = format!("docs/{}.md", n % 70);
                let text = match n % 5 {
                    0 => INTRO.to_string(),
                    1 => EXPORT.to_string(),
                    2 => format!("# Page {}\n\nword{} of the page.\n", n % 70, n % 3),
                    _ => format!("# Page {n}\n\nword{n} and more words.\n"),
                };
                (key, text)
            })
            .collect();
        let (batched, looped) = stores_at_one_time();
        let versions = batched.put_many(&documents).unwrap();
        let expected: Vec<DocVersion> = documents
            .iter()
            .map(|(key, text)| looped.put(key, text).unwrap())
            .collect();
        assert_eq!(versions, expected);
        assert_eq!(every_version(&batched), every_version(&looped));
        assert_eq!(
            batched.ask("model exports fields", 800),
            looped.ask("model exports fields", 800)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn put_many_leaves_what_a_loop_of_puts_leaves(
            before in proptest::collection::vec((0usize..4, 0usize..3), 0..6),
            batch in proptest::collection::vec((0usize..4, 0usize..3), 1..16),
        ) {
            let texts = [INTRO, EXPORT, OTHER];
            let key = |idx: usize| format!("docs/page-{idx}.md");
            let (batched, looped) = stores_at_one_time();
            for (key_idx, text_idx) in before {
                batched.put(&key(key_idx), texts[text_idx]).unwrap();
                looped.put(&key(key_idx), texts[text_idx]).unwrap();
            }
            let batch: Vec<(String, &str)> = batch
                .into_iter()
                .map(|(key_idx, text_idx)| (key(key_idx), texts[text_idx]))
                .collect();
            let versions = batched.put_many(&batch).unwrap();
            let expected: Vec<DocVersion> = batch
                .iter()
                .map(|(key, text)| looped.put(key, text).unwrap())
                .collect();
            prop_assert_eq!(versions, expected);
            prop_assert_eq!(every_version(&batched), every_version(&looped));
            prop_assert!(flags_match_markers(&batched.shared.state.read()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn canonical_flags_follow_every_marker(
            ops in proptest::collection::vec((0usize..4, proptest::option::of(0usize..3)), 1..24),
        ) {
            let texts = [INTRO, EXPORT, OTHER];
            let store = ContextStore::new();
            for (key_idx, text) in ops {
                let key = format!("docs/page-{key_idx}.md");
                match text {
                    Some(text_idx) => drop(store.put(&key, texts[text_idx]).unwrap()),
                    None => drop(store.delete(&key).unwrap()),
                }
                prop_assert!(flags_match_markers(&store.shared.state.read()));
            }
            // As a snapshot opens (the flags are not saved): re-marked, or flagged from the
            // saved markers; the same flags either way.
            for marked in [Marked::Before, Marked::Now] {
                let mut saved = store.shared.state.read().clone();
                saved.canonical.clear();
                let reopened = ContextStore::builder().build_with(saved, marked);
                let state = reopened.shared.state.read();
                prop_assert!(flags_match_markers(&state));
                let original = store.shared.state.read();
                let n_slots = state.canonical.len().max(original.canonical.len()) as u32;
                for slot in 0..n_slots {
                    prop_assert_eq!(state.is_canonical(slot), original.is_canonical(slot));
                }
            }
        }
    }
}
