//! The state as snapshots of format 4 hold it: each section's signature as 64-bit minimums, and
//! the similarity table saved beside them. Format 5 keeps the high 32 bits of each minimum (half
//! the room, in memory and on disk) and makes the table again from the signatures when a store
//! is opened, instead of saving it.
//!
//! [`StateV4`] decodes such a payload (bincode reads fields in order, so it follows [`State`]'s,
//! skipped fields left out alike) and [`StateV4::upgrade`] narrows its signatures; the table it
//! held is read past.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::{DocEntry, SectionEntry, SectionRef, State, VersionEntry};
use crate::context::index::Index;
#[cfg(test)]
use crate::context::similar::Signature;
use crate::context::similar::{SavedLsh, WideSignature};

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(in crate::context) struct StateV4 {
    docs: Vec<DocEntry<WideSignature>>,
    rest: SavedParts,
}

/// What snapshots of formats 1 to 4 saved after the documents, in the order they saved it (a
/// struct within a struct is the same bytes to bincode as its fields in line).
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(super) struct SavedParts {
    doc_idx: FxHashMap<String, u32>,
    slots: Vec<Option<SectionRef>>,
    by_id: FxHashMap<String, SectionRef>,
    index: Index,
    /// The similarity table, read past: it is made again from the signatures.
    _lsh: SavedLsh,
    n_ops: u64,
    pins: BTreeSet<String>,
    archive: Vec<String>,
}

impl SavedParts {
    /// The state of these parts and `docs`, what is derived from them not made yet.
    pub(super) fn with_docs(self, docs: Vec<DocEntry>) -> State {
        State {
            docs,
            doc_idx: self.doc_idx,
            slots: self.slots,
            canonical: Vec::new(),
            by_id: self.by_id,
            renames: Default::default(),
            index: self.index,
            lsh: Default::default(),
            n_ops: self.n_ops,
            pins: self.pins,
            archive: self.archive,
        }
    }

    /// `state`'s parts (with an empty similarity table, which is never read), for tests that
    /// write old snapshots.
    #[cfg(test)]
    pub(super) fn of(state: &State) -> SavedParts {
        SavedParts {
            doc_idx: state.doc_idx.clone(),
            slots: state.slots.clone(),
            by_id: state.by_id.clone(),
            index: state.index.clone(),
            _lsh: SavedLsh,
            n_ops: state.n_ops,
            pins: state.pins.clone(),
            archive: state.archive.clone(),
        }
    }
}

impl StateV4 {
    /// The state in today's form (its similarity table not made yet).
    pub(in crate::context) fn upgrade(self) -> State {
        let docs = self
            .docs
            .into_iter()
            .map(|doc| doc.map_signatures(WideSignature::narrow))
            .collect();
        self.rest.with_docs(docs)
    }
}

impl<S> DocEntry<S> {
    /// The document with each section's signature mapped by `map`.
    fn map_signatures<T>(self, map: impl Fn(S) -> T) -> DocEntry<T> {
        DocEntry {
            key: self.key,
            created_op: self.created_op,
            versions: self
                .versions
                .into_iter()
                .map(|version| VersionEntry {
                    meta: version.meta,
                    text: version.text,
                    front_matter: version.front_matter,
                    sections: version
                        .sections
                        .into_iter()
                        .map(|section| SectionEntry {
                            id: section.id,
                            heading_path: section.heading_path,
                            line_start: section.line_start,
                            line_end: section.line_end,
                            bytes: section.bytes,
                            tokens: section.tokens,
                            header_tokens: section.header_tokens,
                            changed_in: section.changed_in,
                            content_hash: section.content_hash,
                            signature: section.signature.map(&map),
                            marker: section.marker,
                            slot: section.slot,
                        })
                        .collect(),
                    created_op: version.created_op,
                    retired_op: version.retired_op,
                })
                .collect(),
            current: self.current,
            source: self.source,
        }
    }
}

#[cfg(test)]
impl StateV4 {
    /// `state` as format 4 saved it, for tests that write such snapshots.
    pub(in crate::context) fn of(state: &State) -> StateV4 {
        let widen = |signature: Signature| WideSignature::of(&signature);
        StateV4 {
            docs: state
                .docs
                .iter()
                .map(|doc| doc.clone().map_signatures(widen))
                .collect(),
            rest: SavedParts::of(state),
        }
    }
}
