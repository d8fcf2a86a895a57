//! The journal of a store opened from a backing store: each put and delete is written there as
//! one record before it is applied, so that it outlives the process without a snapshot of the
//! whole store being written for it.
//!
//! A journal entry is the record `journal-<seq>-<writer>` (the sequence number in 20 digits and
//! the writing store's random id in 16 hex digits, so that the backing store's sorted keys are
//! in order) in the snapshots' namespace: `FFCTXJ` and a format byte, then the payload framed as
//! a format-1 snapshot's (its length, its BLAKE3 hash, itself): the operation in bincode. Entries
//! written before writers had ids are `journal-<seq>`, writer 0. A store numbers an entry by the
//! system clock in nanoseconds, or after the last entry it has seen if that is later, so each
//! writer's numbers rise, and an entry written after another on one machine comes after it; a
//! snapshot names, for each writer, the last of its entries it holds, and opening it applies the
//! entries it does not hold, in order, as they were applied the first time (a put with its
//! original timestamp).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::err::ContextError;
use super::snapshot::{decode_payload, frame, unframe};

const MAGIC: &[u8; 7] = b"FFCTXJ\x01";
const PREFIX: &str = "journal-";

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

/// A journal entry: its sequence number and its writer (0 for an entry written before writers
/// had ids). Entries apply in this order, which is their keys' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct EntryId {
    pub(super) seq: u64,
    pub(super) writer: u64,
}

/// For each writer, the last of its entries a state holds.
pub(super) type Held = BTreeMap<u64, u64>;

/// Whether `held` holds entry `id`: a writer's numbers rise, so it holds every entry of that
/// writer up to the last.
pub(super) fn holds(held: &Held, id: EntryId) -> bool {
    held.get(&id.writer).is_some_and(|&last| id.seq <= last)
}

/// The key of entry `id`.
pub(super) fn entry_key(id: EntryId) -> String {
    if id.writer == 0 {
        format!("{PREFIX}{:020}", id.seq)
    } else {
        format!("{PREFIX}{:020}-{:016x}", id.seq, id.writer)
    }
}

/// The entry a journal entry's key names; `None` for any other key.
pub(super) fn entry_of(key: &str) -> Option<EntryId> {
    let rest = key.strip_prefix(PREFIX)?;
    let (digits, writer) = match rest.split_once('-') {
        Some((digits, hex)) => {
            if hex.len() != 16
                || !hex
                    .bytes()
                    .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
            {
                return None;
            }
            (
                digits,
                u64::from_str_radix(hex, 16)
                    .ok()
                    .filter(|&writer| writer != 0)?,
            )
        }
        None => (rest, 0),
    };
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(EntryId {
        seq: digits.parse().ok()?,
        writer,
    })
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
        .and_then(decode_payload)
        .map_err(|reason| ContextError::CorruptSnapshot {
            key: key.to_string(),
            reason: format!("as a journal entry, {reason}"),
        })
}

/// Where a store's journal stands.
#[derive(Debug)]
pub(super) struct Journal {
    /// This store's id as a writer: random, never 0.
    pub(super) writer: u64,
    /// The last entry number written or found (0: none); the next entry takes the one after.
    pub(super) last_seq: u64,
    /// The entries in the store's state: for each writer, the last.
    pub(super) applied: Held,
    /// How many times the store took the folder's state in place of its own: an ingest, whose
    /// changes are not journaled, looks at it to tell whether they were dropped.
    pub(super) reloads: u64,
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
    /// are not in its state.
    pub(super) fn lacks(&self, entries: &[EntryId]) -> bool {
        entries.iter().any(|&id| !holds(&self.applied, id))
    }

    /// Whether the entries since the last snapshot are worth folding into a new one.
    pub(super) fn snapshot_due(&self) -> bool {
        self.since_snapshot > self.snapshot_after
    }

    /// Whether they have grown past twice that: the saves started on threads of their own have
    /// not been finishing (a process that exits right after its writes ends its save with it),
    /// so the next write saves before it returns, and the journal every open replays stays
    /// bounded.
    pub(super) fn snapshot_overdue(&self) -> bool {
        self.since_snapshot > self.snapshot_after.saturating_mul(2)
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
    fn entry_keys_sort_in_sequence_then_writer_and_only_they_parse() {
        let id = |seq, writer| EntryId { seq, writer };
        let ids = [
            id(9, 0),
            id(9, 1),
            id(9, u64::MAX),
            id(10, 0),
            id(10, 0xabc),
            id(u64::MAX, u64::MAX),
        ];
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(entry_key(pair[0]) < entry_key(pair[1]), "{pair:?}");
        }
        for id in ids {
            assert_eq!(entry_of(&entry_key(id)), Some(id));
        }
        assert_eq!(
            entry_key(id(2, 0xabc)),
            "journal-00000000000000000002-0000000000000abc"
        );
        assert_eq!(entry_of("snapshot"), None);
        assert_eq!(entry_of("journal-12"), None);
        assert_eq!(entry_of("journal-0000000000000000001x"), None);
        assert_eq!(entry_of("journal-99999999999999999999"), None, "over u64");
        assert_eq!(
            entry_of("journal-00000000000000000001-00000000000000AB"),
            None
        );
        assert_eq!(
            entry_of("journal-00000000000000000001-0000000000000000"),
            None
        );
        assert_eq!(entry_of("journal-00000000000000000001-abc"), None);
        assert_eq!(entry_of("journal-00000000000000000001-"), None);
    }

    #[test]
    fn a_writer_holds_its_entries_up_to_its_last() {
        let held = Held::from([(0, 4), (7, 10)]);
        let id = |seq, writer| EntryId { seq, writer };
        assert!(holds(&held, id(4, 0)) && holds(&held, id(1, 0)));
        assert!(!holds(&held, id(5, 0)));
        assert!(holds(&held, id(10, 7)) && !holds(&held, id(11, 7)));
        assert!(!holds(&held, id(1, 8)), "a writer it does not name");
    }
}
