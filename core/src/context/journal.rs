//! The journal of a store opened from a backing store: each put and delete is written there as
//! one record before it is applied, so that it outlives the process without a snapshot of the
//! whole store being written for it.
//!
//! A journal entry is the record `journal-<seq>` (20 digits, so that the backing store's sorted
//! keys are in order) in the snapshots' namespace: `FFCTXJ` and a format byte, then the payload
//! framed as a format-1 snapshot's (its length, its BLAKE3 hash, itself): the operation in
//! bincode. A snapshot names the last entry it holds; opening it applies the entries after it,
//! in order, as they were applied the first time (a put with its original timestamp).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::err::ContextError;
use super::snapshot::{decode_payload, frame, unframe};

const MAGIC: &[u8; 7] = b"FFCTXJ\x01";
const PREFIX: &str = "journal-";
/// The most bytes an entry's decoder may claim, so a forged length cannot exhaust memory.
const DECODE_LIMIT: usize = 1 << 32;

/// How many bytes of journal since the last snapshot make the next write save a snapshot. An
/// open applies the entries again (splitting and tokenising their text, as an ingest does), so
/// this bounds what reopening costs beyond reading the snapshot.
pub(super) const SNAPSHOT_AFTER_BYTES: u64 = 16 << 20;

/// One change, as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Op<'a> {
    /// A put of a new version.
    Put {
        key: Cow<'a, str>,
        text: Cow<'a, str>,
        /// The folder an ingest read it from.
        source: Option<Cow<'a, str>>,
        /// When it was first applied: the version's timestamp.
        at_ns: u64,
    },
    /// A delete of a live document.
    Delete { key: Cow<'a, str> },
}

/// The key of entry `seq`.
pub(super) fn entry_key(seq: u64) -> String {
    format!("{PREFIX}{seq:020}")
}

/// The sequence number of a journal entry's key; `None` for any other key.
pub(super) fn seq_of(key: &str) -> Option<u64> {
    let digits = key.strip_prefix(PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The bytes of an entry for `op`.
pub(super) fn encode(op: &Op<'_>) -> Vec<u8> {
    // INVARIANT: `Op` is plain serde data (strings, options, integers), which bincode always
    // encodes.
    let payload =
        bincode::serde::encode_to_vec(op, bincode::config::standard()).unwrap_or_default();
    frame(MAGIC, &payload)
}

/// The operation in entry `key`'s `bytes`, checked whole.
pub(super) fn decode(key: &str, bytes: &[u8]) -> Result<Op<'static>, ContextError> {
    unframe(MAGIC, bytes)
        .and_then(decode_payload::<_, DECODE_LIMIT>)
        .map_err(|reason| ContextError::CorruptSnapshot {
            key: key.to_string(),
            reason: format!("as a journal entry, {reason}"),
        })
}

/// Where a store's journal stands.
#[derive(Debug)]
pub(super) struct Journal {
    /// The last entry written or found (0: none).
    pub(super) last_seq: u64,
    /// Every entry up to this one is in the store's state (unless `foreign`).
    pub(super) applied: u64,
    /// Whether another process wrote entries this store skipped over.
    pub(super) foreign: bool,
    /// Which snapshot was the latest when this store opened it or last saved.
    pub(super) snapshot_id: [u8; 32],
    /// Which head record (a copy of the latest snapshot's header) was there then: what a
    /// refresh compares, without reading the snapshot.
    pub(super) head_id: [u8; 32],
    /// Bytes of the entries after the last snapshot.
    pub(super) since_snapshot: u64,
    /// [`SNAPSHOT_AFTER_BYTES`], but for tests.
    pub(super) snapshot_after: u64,
}

impl Journal {
    /// Whether the store lacks entries another process wrote: some of `entries` (the folder's)
    /// come after the last it applied, or one of its claims skipped another's.
    pub(super) fn lacks(&self, entries: &[u64]) -> bool {
        self.foreign || entries.iter().any(|&seq| seq > self.applied)
    }

    /// Whether the entries since the last snapshot are worth folding into a new one.
    pub(super) fn snapshot_due(&self) -> bool {
        self.since_snapshot > self.snapshot_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_any_damage_is_a_typed_error() {
        let op = Op::Put {
            key: Cow::Borrowed("docs/a.md"),
            text: Cow::Borrowed("# A\n\nText.\n"),
            source: Some(Cow::Borrowed("/repo")),
            at_ns: 42,
        };
        let bytes = encode(&op);
        assert_eq!(decode("journal-1", &bytes).unwrap(), op);
        for cut in 0..bytes.len() {
            let error = decode("journal-1", &bytes[..cut]).unwrap_err();
            assert!(
                matches!(error, ContextError::CorruptSnapshot { .. }),
                "{error}"
            );
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(decode("journal-1", &flipped).is_err(), "byte {at}");
        }
    }

    #[test]
    fn entry_keys_sort_in_sequence_and_only_they_parse() {
        assert!(entry_key(9) < entry_key(10));
        assert_eq!(seq_of(&entry_key(u64::MAX)), Some(u64::MAX));
        assert_eq!(seq_of("snapshot"), None);
        assert_eq!(seq_of("journal-12"), None);
        assert_eq!(seq_of("journal-0000000000000000001x"), None);
        assert_eq!(seq_of("journal-99999999999999999999"), None, "over u64");
    }
}
