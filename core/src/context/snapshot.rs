//! Snapshots: the whole store, with its index, saved through the [`Store`] trait, and the journal
//! of the changes since.
//!
//! A snapshot is `FFCTXS` and a format byte (2), the version of the marking rules its markers
//! were made by (u32, little-endian), the last journal entry it holds (u64), the payload's length
//! (u64), the BLAKE3 hash of those 12 bytes and the payload (32 bytes), then the payload: the
//! store's state in bincode, index included, so reopening does not split, tokenise or re-mark
//! anything again (unless the marking rules, archive folders or pins changed since). Format 1,
//! written before the journal, has neither field and hashes the payload alone; it still opens,
//! re-marked. Saving moves the previous snapshot to `snapshot-previous` first (each write is
//! atomic in every backend), so a snapshot that turns out damaged leaves the one before it
//! usable through [`ContextStoreBuilder::open_previous`], then writes a copy of the new header
//! to `snapshot-head`, which [`ContextStore::refresh`] reads. Loading a damaged snapshot or
//! journal entry is an error and changes nothing.
//!
//! Between snapshots, each put and delete is appended to the journal ([`super::journal`]) before
//! it is applied; opening a snapshot applies the entries after it. Saving deletes the entries
//! the previous snapshot already held, so either snapshot with the journal gives the latest state.

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::err::ContextError;
use super::journal::{self, Journal, Op};
use super::store::{ContextStore, ContextStoreBuilder, Journaled, Marked, State, MARKING_VERSION};
use crate::event::{random_u64, Clock, SystemClock};
use crate::store::Store;

const MAGIC_V1: &[u8; 7] = b"FFCTXS\x01";
const MAGIC: &[u8; 7] = b"FFCTXS\x02";
const MARKING_AT: usize = MAGIC.len();
const THROUGH_AT: usize = MARKING_AT + 4;
const LEN_AT: usize = THROUGH_AT + 8;
const HASH_AT: usize = LEN_AT + 8;
const HEADER_LEN: usize = HASH_AT + 32;
const NAMESPACE: &str = "context";
const CURRENT: &str = "snapshot";
const PREVIOUS: &str = "snapshot-previous";
/// A copy of the latest snapshot's header, written after it: what [`ContextStore::refresh`]
/// reads to tell whether another process saved, without reading the whole snapshot.
const HEAD: &str = "snapshot-head";
/// The most bytes a snapshot's decoder may claim, so a forged length cannot exhaust memory.
const DECODE_LIMIT: usize = 1 << 34;
/// How many times a journal write looks for the next free entry before it gives up (another
/// process writing to the same folder takes them).
const MAX_CLAIMS: u32 = 64;

/// How many times a save reloads what other processes wrote before it gives up (each reload
/// rebuilds the state, so a save under a stream of other writers ends with an error instead).
const MAX_SAVE_RELOADS: u32 = 8;

/// How many of a journal write's claims try the next number straight away before it lists the
/// folder to find the last one taken.
const PROBES: u32 = 4;

/// The longest pause between two claims of a journal write: each lost claim waits a random
/// time up to twice as long as the one before (from 20 us), so that a process that has to list
/// the folder between claims is not starved by one that claims the next number straight away.
const MAX_CLAIM_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// A random pause of up to `20 us * 2^attempt`, at most [`MAX_CLAIM_BACKOFF`].
fn claim_backoff(attempt: u32) {
    let ceiling = std::time::Duration::from_micros(20u64 << attempt.min(10)).min(MAX_CLAIM_BACKOFF);
    let fraction = random_u64(SystemClock.now_ns()) as f64 / u64::MAX as f64;
    std::thread::sleep(ceiling.mul_f64(fraction));
}

/// The journal entry after `seq`; an error when a damaged head record or a stray entry has
/// used up the numbers, rather than an overflow.
fn next_seq(seq: u64) -> Result<u64, ContextError> {
    seq.checked_add(1)
        .ok_or_else(|| ContextError::CorruptSnapshot {
            key: HEAD.to_string(),
            reason: "it or an entry names the last possible journal entry, so no later one can be written"
                .to_string(),
        })
}

/// The journal, held while a journaled change is applied.
pub(super) type JournalGuard<'a> = MutexGuard<'a, Journal>;

/// Where a store saves its snapshots and journal.
pub(super) struct Persist {
    store: Arc<dyn Store>,
    /// Held while an entry is written and its change applied, so that the journal's order is
    /// the order of the changes; and while a snapshot's state is encoded, so that it names the
    /// last entry it holds.
    journal: Mutex<Journal>,
    /// One save at a time, so that an older state never replaces a newer one.
    saving: Mutex<()>,
}

/// What [`ContextStore::save`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot's size in bytes.
    pub n_bytes: u64,
    /// Live documents saved.
    pub n_documents: u64,
}

fn encode(state: &State, through: u64) -> Vec<u8> {
    // INVARIANT: the state is plain serde data (no untagged enums, no skipped fields), which
    // bincode always encodes.
    let payload =
        bincode::serde::encode_to_vec(state, bincode::config::standard()).unwrap_or_default();
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&MARKING_VERSION.to_le_bytes());
    bytes.extend_from_slice(&through.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let hash = hash_v2(&bytes[MARKING_AT..LEN_AT], &payload);
    bytes.extend_from_slice(hash.as_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

/// A format-2 snapshot's hash: of its marking version and journal fields, then its payload.
fn hash_v2(fields: &[u8], payload: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(fields);
    hasher.update(payload);
    hasher.finalize()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The last journal entry a snapshot holds, read from its header alone (0 if it has none).
fn through_of(bytes: &[u8]) -> u64 {
    if bytes.len() >= HEADER_LEN && &bytes[..MAGIC.len()] == MAGIC {
        u64_at(bytes, THROUGH_AT)
    } else {
        0
    }
}

/// What tells one snapshot from another: a hash of its header, which holds the hash of its
/// payload (all zeros for none).
fn id_of(snapshot: Option<&[u8]>) -> [u8; 32] {
    snapshot.map_or([0; 32], |bytes| {
        *blake3::hash(&bytes[..bytes.len().min(HEADER_LEN)]).as_bytes()
    })
}

/// The sequence numbers of the journal entries in `store`, in order.
fn journal_seqs(store: &dyn Store) -> Result<Vec<u64>, ContextError> {
    // Keys list sorted, and entry keys have a fixed width: in sequence order.
    Ok(store
        .list(NAMESPACE)?
        .iter()
        .filter_map(|entry| journal::seq_of(entry))
        .collect())
}

/// The state in a snapshot, the last journal entry it holds, and whether its markers are the
/// current marking rules'.
fn decode(key: &str, bytes: &[u8]) -> Result<(State, u64, Marked), ContextError> {
    let corrupt = |reason: String| ContextError::CorruptSnapshot {
        key: key.to_string(),
        reason,
    };
    let magic = bytes.get(..MAGIC.len());
    let (through, marked, payload) = if magic == Some(MAGIC) && bytes.len() >= HEADER_LEN {
        let mut marking = [0u8; 4];
        marking.copy_from_slice(&bytes[MARKING_AT..THROUGH_AT]);
        let marked = if u32::from_le_bytes(marking) == MARKING_VERSION {
            Marked::Now
        } else {
            Marked::Before
        };
        let len = u64_at(bytes, LEN_AT);
        let payload = &bytes[HEADER_LEN..];
        check_len(len, payload).map_err(corrupt)?;
        if hash_v2(&bytes[MARKING_AT..LEN_AT], payload).as_bytes() != &bytes[HASH_AT..HEADER_LEN] {
            return Err(corrupt(
                "its checksum does not match its content".to_string(),
            ));
        }
        (u64_at(bytes, THROUGH_AT), marked, payload)
    } else if magic == Some(MAGIC_V1) {
        (
            0,
            Marked::Before,
            unframe(MAGIC_V1, bytes).map_err(corrupt)?,
        )
    } else {
        return Err(corrupt(
            "it does not start with a context snapshot header".to_string(),
        ));
    };
    let state: State = decode_payload::<_, DECODE_LIMIT>(payload).map_err(corrupt)?;
    state
        .check()
        .map_err(|reason| corrupt(format!("it is inconsistent: {reason}")))?;
    Ok((state, through, marked))
}

/// The framing of journal entries and of format-1 snapshots: `magic`, the payload's length
/// (u64, little-endian), its BLAKE3 hash (32 bytes), then the payload.
pub(super) fn frame(magic: &[u8; 7], payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(magic.len() + 8 + 32 + payload.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(blake3::hash(payload).as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The payload [`frame`] put in `bytes` with `magic`, checked whole; or why not.
pub(super) fn unframe<'a>(magic: &[u8; 7], bytes: &'a [u8]) -> Result<&'a [u8], String> {
    let header_len = magic.len() + 8 + 32;
    if bytes.len() < header_len || &bytes[..magic.len()] != magic {
        return Err("it does not start with the header it should".to_string());
    }
    let payload = &bytes[header_len..];
    check_len(u64_at(bytes, magic.len()), payload)?;
    if blake3::hash(payload).as_bytes() != &bytes[magic.len() + 8..header_len] {
        return Err("its checksum does not match its content".to_string());
    }
    Ok(payload)
}

/// The value bincode encoded in the whole of `payload`, which may claim at most `LIMIT` bytes
/// (so a forged length cannot exhaust memory); or why not.
pub(super) fn decode_payload<T: serde::de::DeserializeOwned, const LIMIT: usize>(
    payload: &[u8],
) -> Result<T, String> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(payload, config)
        .map_err(|error| format!("it does not decode: {error}"))?;
    if used != payload.len() {
        return Err(format!("{} trailing bytes", payload.len() - used));
    }
    Ok(value)
}

fn check_len(len: u64, payload: &[u8]) -> Result<(), String> {
    if payload.len() as u64 == len {
        Ok(())
    } else {
        Err(format!(
            "the header says {len} bytes of payload, there are {} (truncated?)",
            payload.len()
        ))
    }
}

impl ContextStoreBuilder {
    /// Opens the store saved in `store` (empty if nothing was saved yet); [`ContextStore::save`]
    /// saves it there. A damaged snapshot is an error, and the previous one stays loadable.
    pub fn open(self, store: Arc<dyn Store>) -> Result<ContextStore, ContextError> {
        self.open_key(store, CURRENT)
    }

    /// Opens the snapshot saved before the latest one, for when the latest is damaged.
    pub fn open_previous(self, store: Arc<dyn Store>) -> Result<ContextStore, ContextError> {
        self.open_key(store, PREVIOUS)
    }

    fn open_key(self, store: Arc<dyn Store>, key: &str) -> Result<ContextStore, ContextError> {
        let snapshot = store.get(NAMESPACE, key)?;
        let saved = Saved::read(&*store, key, snapshot.as_deref())?;
        // Which the latest snapshot is, so that a save can tell whether another process saved
        // since (opening the previous one, the latest is taken as it is, even damaged: a save
        // replaces it).
        let latest = if key == CURRENT {
            id_of(snapshot.as_deref())
        } else {
            id_of(store.get(NAMESPACE, CURRENT)?.as_deref())
        };
        let head = id_of(store.get(NAMESPACE, HEAD)?.as_deref());
        let persist = Persist {
            store,
            journal: Mutex::new(Journal {
                last_seq: saved.last_seq,
                applied: saved.last_seq,
                foreign: false,
                snapshot_id: latest,
                head_id: head,
                since_snapshot: saved.since_snapshot,
                snapshot_after: journal::SNAPSHOT_AFTER_BYTES,
            }),
            saving: Mutex::new(()),
        };
        let context = self.persist(persist).build_with(saved.state, saved.marked);
        for op in saved.entries {
            context.replay(op)?;
        }
        Ok(context)
    }
}

/// A snapshot as read, with the journal entries after it, checked but not applied yet.
struct Saved {
    state: State,
    marked: Marked,
    entries: Vec<Op<'static>>,
    /// The last entry found, or the snapshot's last if it is later.
    last_seq: u64,
    since_snapshot: u64,
}

impl Saved {
    /// The snapshot `key`, whose bytes are `snapshot`, and the journal after it.
    fn read(store: &dyn Store, key: &str, snapshot: Option<&[u8]>) -> Result<Saved, ContextError> {
        let (state, through, marked) = match snapshot {
            Some(bytes) => decode(key, bytes)?,
            None => (State::default(), 0, Marked::Now),
        };
        // Every entry after the snapshot, read and checked before anything is applied.
        let mut entries = Vec::new();
        let mut last_seq = through;
        let mut since_snapshot = 0;
        for seq in journal_seqs(store)? {
            last_seq = last_seq.max(seq);
            if seq <= through {
                continue;
            }
            let entry = journal::entry_key(seq);
            // An entry deleted since the listing was folded into a newer snapshot by another
            // process; this one opens without it, as that process's save found it.
            let Some(bytes) = store.get(NAMESPACE, &entry)? else {
                continue;
            };
            since_snapshot += bytes.len() as u64;
            entries.push(journal::decode(&entry, &bytes)?);
        }
        Ok(Saved {
            state,
            marked,
            entries,
            last_seq,
            since_snapshot,
        })
    }
}

impl ContextStore {
    /// Opens the store saved in `store` with default settings; see [`ContextStoreBuilder::open`].
    pub fn open(store: Arc<dyn Store>) -> Result<ContextStore, ContextError> {
        ContextStore::builder().open(store)
    }

    /// [`ContextStore::save`] when the store was opened from a backing store; `None`, with
    /// nothing written, for a store kept only in memory.
    pub fn save_if_backed(&self) -> Result<Option<SnapshotInfo>, ContextError> {
        match self.save() {
            Ok(info) => Ok(Some(info)),
            Err(ContextError::NoBackingStore) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Saves a snapshot to the store it was opened from (after moving the previous snapshot
    /// aside), and deletes the journal entries both snapshots hold. A store built without one
    /// has nowhere to save: [`ContextError::NoBackingStore`].
    pub fn save(&self) -> Result<SnapshotInfo, ContextError> {
        let Some(persist) = &self.shared.persist else {
            return Err(ContextError::NoBackingStore);
        };
        let _saving = persist.saving.lock();
        let mut attempts = 0;
        let (previous, entries, bytes, n_documents, through, folded) = loop {
            let previous = persist.store.get(NAMESPACE, CURRENT)?;
            let entries = journal_seqs(&*persist.store)?;
            {
                // Checked under the same hold of the journal as the state is encoded: a claim
                // of this store's that skipped another process's entry after the listing sets
                // `foreign`, and none can come in between.
                let journal = persist.journal.lock();
                let foreign =
                    journal.lacks(&entries) || id_of(previous.as_deref()) != journal.snapshot_id;
                if !foreign {
                    let state = self.shared.state.read();
                    break (
                        previous,
                        entries,
                        encode(&state, journal.last_seq),
                        state.n_live() as u64,
                        journal.last_seq,
                        journal.since_snapshot,
                    );
                }
            }
            attempts += 1;
            if attempts > MAX_SAVE_RELOADS {
                return Err(ContextError::SaveContended {
                    reloads: MAX_SAVE_RELOADS,
                });
            }
            self.reload(persist, previous.as_deref())?;
        };
        // Writes go on meanwhile: their entries come after this snapshot's.
        if let Some(previous) = &previous {
            persist.store.put(NAMESPACE, PREVIOUS, previous)?;
        }
        persist.store.put(NAMESPACE, CURRENT, &bytes)?;
        let head = &bytes[..bytes.len().min(HEADER_LEN)];
        persist.store.put(NAMESPACE, HEAD, head)?;
        {
            let mut journal = persist.journal.lock();
            journal.since_snapshot = journal.since_snapshot.saturating_sub(folded);
            journal.snapshot_id = id_of(Some(&bytes));
            journal.head_id = id_of(Some(head));
        }
        // The entries the previous snapshot holds are in both now; the later ones stay, so
        // that the previous snapshot with the journal still gives the latest state.
        // (Never past this snapshot's own: a damaged previous header may claim any number.)
        let held_by_both = previous.as_deref().map_or(0, through_of).min(through);
        for seq in entries.into_iter().filter(|&seq| seq <= held_by_both) {
            persist.store.delete(NAMESPACE, &journal::entry_key(seq))?;
        }
        Ok(SnapshotInfo {
            n_bytes: bytes.len() as u64,
            n_documents,
        })
    }

    /// Takes in what other processes wrote to the folder since this store last did (a snapshot
    /// one saved, or journal entries past this store's own) by reloading the folder, as a save
    /// does first; subscribers hear of each document that differs. Returns whether it
    /// reloaded; a store kept only in memory has nothing to take in. Cheap when nothing
    /// changed: it lists the folder and reads the latest snapshot's header.
    pub fn refresh(&self) -> Result<bool, ContextError> {
        let Some(persist) = &self.shared.persist else {
            return Ok(false);
        };
        let _saving = persist.saving.lock();
        let head = persist.store.get(NAMESPACE, HEAD)?;
        let entries = journal_seqs(&*persist.store)?;
        let foreign = {
            let journal = persist.journal.lock();
            // The head record is rewritten by every save; a folder saved only by builds before
            // it has none, and its snapshot is compared at the next save.
            journal.lacks(&entries) || id_of(head.as_deref()) != journal.head_id
        };
        if foreign {
            let current = persist.store.get(NAMESPACE, CURRENT)?;
            self.reload(persist, current.as_deref())?;
        }
        Ok(foreign)
    }

    /// Appends `op` to the journal when `journaled` says so and the store has one, and holds
    /// the journal until the returned guard drops: the caller applies the change meanwhile, so
    /// that changes are applied in the journal's order. Nothing is written for a store kept
    /// only in memory.
    pub(super) fn journal(
        &self,
        journaled: Journaled,
        op: &Op<'_>,
    ) -> Result<Option<JournalGuard<'_>>, ContextError> {
        let Some(persist) = self
            .shared
            .persist
            .as_ref()
            .filter(|_| journaled == Journaled::Yes)
        else {
            return Ok(None);
        };
        let bytes = journal::encode(op);
        let mut journal = persist.journal.lock();
        // Above the last entry the latest snapshot holds, too: a save deletes entries up to
        // the previous snapshot's, and a number this store last saw before that deletion is
        // free again, but an entry written there would be taken as held by the snapshot.
        let held = |store: &dyn Store| -> Result<u64, ContextError> {
            Ok(store.get(NAMESPACE, HEAD)?.as_deref().map_or(0, through_of))
        };
        let mut seq = next_seq(journal.last_seq.max(held(&*persist.store)?))?;
        for attempt in 0..MAX_CLAIMS {
            // Claimed, not overwritten: another process writing to this folder may have taken
            // the number, and then the next free one is after the last it took.
            if persist.store.compare_and_swap(
                NAMESPACE,
                &journal::entry_key(seq),
                None,
                Some(&bytes),
            )? {
                if seq != journal.applied + 1 {
                    // Another process wrote the entries between: this store lacks them.
                    journal.foreign = true;
                }
                journal.applied = seq;
                journal.last_seq = seq;
                journal.since_snapshot += bytes.len() as u64;
                return Ok(Some(journal));
            }
            if attempt < PROBES {
                // Most likely another process took just this number: try the next one at
                // once, before it has prepared its next change (listing the folder first would
                // lose that race to it every time).
                seq = next_seq(seq)?;
                continue;
            }
            claim_backoff(attempt - PROBES);
            // After a pause saves may have folded every entry listed before, so the listing
            // alone may be empty: the snapshot's last entry bounds the number again.
            let taken = journal_seqs(&*persist.store)?;
            let last = taken.last().map_or(seq, |&last| last.max(seq));
            seq = next_seq(last.max(held(&*persist.store)?))?;
        }
        Err(ContextError::JournalContended {
            key: journal::entry_key(seq),
            attempts: MAX_CLAIMS,
        })
    }

    /// Replaces the state with the one the folder holds (its snapshot `snapshot` and the journal
    /// after it), for when another process wrote there: this store's own changes are in the
    /// journal too, so the reloaded state has them, in the order every later open applies them.
    /// Subscribers hear of each document that differs.
    fn reload(&self, persist: &Persist, snapshot: Option<&[u8]>) -> Result<(), ContextError> {
        let mut journal = persist.journal.lock();
        let saved = Saved::read(&*persist.store, CURRENT, snapshot)?;
        let (archive, pins) = self.shared.state.read().marking_config();
        let mut builder = ContextStore::builder();
        for prefix in &archive {
            builder = builder.archive(prefix);
        }
        for key in &pins {
            builder = builder.pin(key);
        }
        let fresh = builder.build_with(saved.state, saved.marked);
        for op in saved.entries {
            fresh.replay(op)?;
        }
        let fresh = std::mem::take(&mut *fresh.shared.state.write());
        let changes = {
            let mut state = self.shared.state.write();
            let changes = state.changes_to(&fresh);
            *state = fresh;
            changes
        };
        journal.last_seq = saved.last_seq.max(journal.last_seq);
        journal.applied = journal.last_seq;
        journal.foreign = false;
        journal.snapshot_id = id_of(snapshot);
        journal.head_id = id_of(persist.store.get(NAMESPACE, HEAD)?.as_deref());
        journal.since_snapshot = saved.since_snapshot;
        drop(journal);
        for change in changes {
            self.notify(Some(change));
        }
        Ok(())
    }

    /// Saves a snapshot when the journal since the last one has grown past
    /// [`journal::SNAPSHOT_AFTER_BYTES`]. A failed save is tried again at the next write: the
    /// change that triggered it is in the journal already.
    pub(super) fn save_if_journal_due(&self) {
        let due = self
            .shared
            .persist
            .as_ref()
            .is_some_and(|persist| persist.journal.lock().snapshot_due());
        if due {
            let _ = self.save();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Freshness, Marker};
    use crate::store::MemoryStore;

    fn journal_len(backing: &Arc<dyn Store>) -> usize {
        journal_seqs(&**backing).unwrap().len()
    }

    #[test]
    fn a_head_that_names_the_last_possible_entry_is_an_error_not_an_overflow() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        store.save().unwrap();
        let mut head = backing.get(NAMESPACE, HEAD).unwrap().unwrap();
        head[THROUGH_AT..LEN_AT].copy_from_slice(&u64::MAX.to_le_bytes());
        backing.put(NAMESPACE, HEAD, &head).unwrap();
        let entries = journal_len(&backing);
        let error = store
            .put("docs/b.md", "# B\n\nThe second page.\n")
            .unwrap_err();
        assert!(
            matches!(&error, ContextError::CorruptSnapshot { key, .. } if key == HEAD),
            "{error}"
        );
        assert!(store.get("docs/b.md").is_none());
        assert_eq!(journal_len(&backing), entries);
    }

    #[test]
    fn a_snapshot_of_the_first_format_opens_and_the_journal_after_it_applies() {
        let store = ContextStore::new();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        let payload =
            bincode::serde::encode_to_vec(&*store.shared.state.read(), bincode::config::standard())
                .unwrap();
        let v1 = frame(MAGIC_V1, &payload);
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        backing.put(NAMESPACE, CURRENT, &v1).unwrap();
        let opened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(opened.get("docs/a.md").unwrap().version.version, 1);
        opened
            .put("docs/b.md", "# B\n\nThe second page.\n")
            .unwrap();
        let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(reopened.keys(), vec!["docs/a.md", "docs/b.md"]);
        // Its first save writes the new format, and the first one becomes the previous.
        reopened.save().unwrap();
        let saved = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        assert_eq!(&saved[..MAGIC.len()], MAGIC);
        assert_eq!(through_of(&saved), 1);
        let previous = ContextStore::builder()
            .open_previous(Arc::clone(&backing))
            .unwrap();
        assert_eq!(previous.keys(), vec!["docs/a.md", "docs/b.md"]);
        let mut flipped = v1.clone();
        flipped[MAGIC_V1.len()] ^= 1;
        backing.put(NAMESPACE, CURRENT, &flipped).unwrap();
        assert!(matches!(
            ContextStore::open(Arc::clone(&backing)),
            Err(ContextError::CorruptSnapshot { .. })
        ));
    }

    #[test]
    fn a_journal_grown_past_its_limit_is_folded_into_a_snapshot_by_the_next_write() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        let persist = store.shared.persist.as_ref().unwrap();
        persist.journal.lock().snapshot_after = 1_000;
        store.put("docs/a.md", "# A\n\nShort.\n").unwrap();
        assert_eq!(journal_len(&backing), 1);
        assert_eq!(backing.get(NAMESPACE, CURRENT).unwrap(), None);
        let long = format!("# B\n\n{}\n", "A longer page. ".repeat(80));
        store.put("docs/b.md", &long).unwrap();
        // Past 1,000 bytes: saved; the entries stay for the previous snapshot, which does not
        // exist, so the first save deletes none.
        let saved = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        assert_eq!(through_of(&saved), 2);
        assert_eq!(persist.journal.lock().since_snapshot, 0);
        let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(reopened.keys(), vec!["docs/a.md", "docs/b.md"]);
    }

    #[test]
    fn a_snapshot_marked_by_the_current_rules_is_not_marked_again() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        // A marker no rule gives, so that whether the store was marked again shows.
        let planted = Marker {
            freshness: Freshness::Stale,
            reason: Some("planted".to_string()),
            copy_of: None,
        };
        store
            .shared
            .state
            .write()
            .plant_marker("docs/a.md", planted.clone());
        store.save().unwrap();
        let first_marker =
            |store: &ContextStore| store.get("docs/a.md").unwrap().sections[0].marker.clone();
        assert_eq!(
            first_marker(&ContextStore::open(Arc::clone(&backing)).unwrap()),
            planted
        );
        // A new archive folder or pin: marked again.
        let archived = ContextStore::builder()
            .archive("old/")
            .open(Arc::clone(&backing))
            .unwrap();
        assert_eq!(first_marker(&archived).freshness, Freshness::Canonical);
        // Saved with that folder, it is opened with it again unmarked: the folder is known.
        archived
            .shared
            .state
            .write()
            .plant_marker("docs/a.md", planted.clone());
        archived.save().unwrap();
        let again = ContextStore::builder()
            .archive("old/")
            .open(Arc::clone(&backing))
            .unwrap();
        assert_eq!(first_marker(&again), planted);
        assert_eq!(again.shared.state.read().archive_len(), 1);
        let pinned = ContextStore::builder()
            .pin("docs/a.md")
            .open(Arc::clone(&backing))
            .unwrap();
        assert_eq!(first_marker(&pinned).freshness, Freshness::Canonical);
        // Other marking rules: marked again.
        let mut bytes = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        bytes[MARKING_AT..THROUGH_AT].copy_from_slice(&(MARKING_VERSION + 1).to_le_bytes());
        let hash = hash_v2(&bytes[MARKING_AT..LEN_AT], &bytes[HEADER_LEN..]);
        bytes[HASH_AT..HEADER_LEN].copy_from_slice(hash.as_bytes());
        backing.put(NAMESPACE, CURRENT, &bytes).unwrap();
        let remarked = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(first_marker(&remarked).freshness, Freshness::Canonical);
    }
}
