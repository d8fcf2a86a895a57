//! Snapshots: the whole store, with its index, saved through the [`Store`] trait.
//!
//! A snapshot is `FFCTXS` and a format byte, the payload's length (u64, little-endian), the
//! payload's BLAKE3 hash (32 bytes), then the payload: the store's state in bincode, index
//! included, so reopening does not split or tokenise anything again. Saving moves the previous
//! snapshot to `snapshot-previous` first (each write is atomic in every backend), so a snapshot that
//! turns out damaged leaves the one before it usable through
//! [`ContextStoreBuilder::open_previous`]. Loading a damaged snapshot is an error and changes nothing.

use std::sync::Arc;

use super::err::ContextError;
use super::store::{ContextStore, ContextStoreBuilder, State};
use crate::store::Store;

const MAGIC: &[u8; 7] = b"FFCTXS\x01";
const HEADER_LEN: usize = MAGIC.len() + 8 + 32;
const NAMESPACE: &str = "context";
const CURRENT: &str = "snapshot";
const PREVIOUS: &str = "snapshot-previous";
/// The most bytes a snapshot's decoder may claim, so a forged length cannot exhaust memory.
const DECODE_LIMIT: usize = 1 << 34;

/// Where a store saves its snapshots.
#[derive(Clone)]
pub(super) struct Persist {
    store: Arc<dyn Store>,
}

/// What [`ContextStore::save`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot's size in bytes.
    pub n_bytes: u64,
    /// Live documents saved.
    pub n_documents: u64,
}

fn encode(state: &State) -> Vec<u8> {
    // INVARIANT: the state is plain serde data (no untagged enums, no skipped fields), which
    // bincode always encodes.
    let payload =
        bincode::serde::encode_to_vec(state, bincode::config::standard()).unwrap_or_default();
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

fn decode(key: &str, bytes: &[u8]) -> Result<State, ContextError> {
    let corrupt = |reason: String| ContextError::CorruptSnapshot {
        key: key.to_string(),
        reason,
    };
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(
            "it does not start with a context snapshot header".to_string(),
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + 8]);
    let len = u64::from_le_bytes(len);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(corrupt(format!(
            "the header says {len} bytes of payload, there are {} (truncated?)",
            payload.len()
        )));
    }
    if blake3::hash(payload).as_bytes() != &bytes[MAGIC.len() + 8..HEADER_LEN] {
        return Err(corrupt(
            "its checksum does not match its content".to_string(),
        ));
    }
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let (state, used): (State, usize) = bincode::serde::decode_from_slice(payload, config)
        .map_err(|error| corrupt(format!("it does not decode: {error}")))?;
    if used != payload.len() {
        return Err(corrupt(format!("{} trailing bytes", payload.len() - used)));
    }
    state
        .check()
        .map_err(|reason| corrupt(format!("it is inconsistent: {reason}")))?;
    Ok(state)
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
        let state = match store.get(NAMESPACE, key)? {
            Some(bytes) => decode(key, &bytes)?,
            None => State::default(),
        };
        Ok(self.persist(Persist { store }).build_with(state))
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
    /// aside). A store built without one has nowhere to save: [`ContextError::NoBackingStore`].
    pub fn save(&self) -> Result<SnapshotInfo, ContextError> {
        let Some(persist) = &self.shared.persist else {
            return Err(ContextError::NoBackingStore);
        };
        let (bytes, n_documents) = {
            let state = self.shared.state.read();
            (encode(&state), state.n_live() as u64)
        };
        if let Some(previous) = persist.store.get(NAMESPACE, CURRENT)? {
            persist.store.put(NAMESPACE, PREVIOUS, &previous)?;
        }
        persist.store.put(NAMESPACE, CURRENT, &bytes)?;
        Ok(SnapshotInfo {
            n_bytes: bytes.len() as u64,
            n_documents,
        })
    }
}
