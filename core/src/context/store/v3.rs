//! The state as snapshots of formats 1 to 3 hold it, where each section keeps a copy of its text.
//! Format 4 keeps only where that text lies in its version's text, which holds it already: the
//! same bytes were in a snapshot, and in memory, twice.
//!
//! These types decode such a snapshot's payload (bincode reads fields in order, so they follow
//! [`State`]'s, skipped fields left out alike), and [`StateV3::upgrade`] finds each section's text
//! in its version's and narrows its signature, as [`super::v4`] does.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::v4::SavedParts;
use super::{DocEntry, SectionEntry, State, VersionEntry};
use crate::context::model::{DocVersion, Marker};
use crate::context::similar::WideSignature;

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(in crate::context) struct StateV3 {
    docs: Vec<DocEntryV3>,
    rest: SavedParts,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct DocEntryV3 {
    key: String,
    created_op: u64,
    versions: Vec<VersionEntryV3>,
    current: Option<u32>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct VersionEntryV3 {
    meta: DocVersion,
    text: String,
    front_matter: BTreeMap<String, String>,
    sections: Vec<SectionEntryV3>,
    created_op: u64,
    retired_op: Option<u64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct SectionEntryV3 {
    id: String,
    heading_path: Vec<String>,
    line_start: u32,
    line_end: u32,
    text: String,
    tokens: u32,
    header_tokens: u32,
    changed_in: u64,
    content_hash: [u8; 16],
    signature: Option<WideSignature>,
    marker: Marker,
    slot: Option<u32>,
}

impl StateV3 {
    /// The state in today's form (its similarity table not made yet); an error names a section
    /// whose text is not in its version's.
    pub(in crate::context) fn upgrade(self) -> Result<State, String> {
        let docs = self
            .docs
            .into_iter()
            .map(|doc| {
                let versions = doc
                    .versions
                    .into_iter()
                    .map(|version| version.upgrade(&doc.key))
                    .collect::<Result<_, _>>()?;
                Ok(DocEntry {
                    key: doc.key,
                    created_op: doc.created_op,
                    versions,
                    current: doc.current,
                    source: doc.source,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(self.rest.with_docs(docs))
    }
}

impl VersionEntryV3 {
    fn upgrade(self, key: &str) -> Result<VersionEntry, String> {
        // The byte offset at which each line starts: a section starts at its first line.
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(self.text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        let sections = self
            .sections
            .into_iter()
            .map(|section| {
                let at_line = (section.line_start as usize)
                    .checked_sub(1)
                    .and_then(|line| line_starts.get(line).copied());
                let start = at_line
                    .filter(|&start| self.text[start..].starts_with(section.text.as_str()))
                    .or_else(|| self.text.find(section.text.as_str()))
                    .ok_or_else(|| {
                        format!(
                            "the text of section {} of `{key}` version {} is not in the version's",
                            section.id, self.meta.version
                        )
                    })?;
                Ok(SectionEntry {
                    bytes: start..start + section.text.len(),
                    id: section.id,
                    heading_path: section.heading_path,
                    line_start: section.line_start,
                    line_end: section.line_end,
                    tokens: section.tokens,
                    header_tokens: section.header_tokens,
                    changed_in: section.changed_in,
                    content_hash: section.content_hash,
                    signature: section.signature.map(WideSignature::narrow),
                    marker: section.marker,
                    slot: section.slot,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(VersionEntry {
            meta: self.meta,
            text: self.text,
            front_matter: self.front_matter,
            sections,
            created_op: self.created_op,
            retired_op: self.retired_op,
        })
    }
}

#[cfg(test)]
impl StateV3 {
    /// `state` as formats 1 to 3 saved it, for tests that write such snapshots.
    pub(in crate::context) fn of(state: &State) -> StateV3 {
        let docs = state
            .docs
            .iter()
            .map(|doc| DocEntryV3 {
                key: doc.key.clone(),
                created_op: doc.created_op,
                versions: doc
                    .versions
                    .iter()
                    .map(|version| VersionEntryV3 {
                        meta: version.meta.clone(),
                        text: version.text.clone(),
                        front_matter: version.front_matter.clone(),
                        sections: version
                            .sections
                            .iter()
                            .map(|section| SectionEntryV3 {
                                id: section.id.clone(),
                                heading_path: section.heading_path.clone(),
                                line_start: section.line_start,
                                line_end: section.line_end,
                                text: version.text_of(section).to_string(),
                                tokens: section.tokens,
                                header_tokens: section.header_tokens,
                                changed_in: section.changed_in,
                                content_hash: section.content_hash,
                                signature: section.signature.as_ref().map(WideSignature::of),
                                marker: section.marker.clone(),
                                slot: section.slot,
                            })
                            .collect(),
                        created_op: version.created_op,
                        retired_op: version.retired_op,
                    })
                    .collect(),
                current: doc.current,
                source: doc.source.clone(),
            })
            .collect();
        StateV3 {
            docs,
            rest: SavedParts::of(state),
        }
    }
}
