//! Any bytes as a context store's snapshot: opening gives a store or a typed error, never a panic,
//! and a store that opens answers asks and saves again.
//!
//! Input that does not start with the snapshot's magic is taken as a payload and given a valid
//! header (its length and BLAKE3 hash), so that the fuzzer reaches the decoder and the state's
//! consistency check instead of stopping at the checksum (see core/src/context/snapshot.rs for
//! the format): after `5:`, a header of format 5 (each section a range of its version's text,
//! with a 32-bit signature); after `4:`, one of format 4 (64-bit signatures, and the similarity
//! table saved); otherwise one of format 1, whose payload is of format 3 (each section with its
//! own text).
#![no_main]

use std::sync::Arc;

use fourfold::context::ContextStore;
use fourfold::{MemoryStore, Store};
use libfuzzer_sys::fuzz_target;

const MAGIC_V1: &[u8; 7] = b"FFCTXS\x01";

/// `payload` behind a valid header of `format` (4 or 5, which have the same fields): the marking
/// version (one the core never used, so the store is marked again), no journal entries held, the
/// payload's length and the hash of the fields after the magic with the payload.
fn framed(format: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = b"FFCTXS".to_vec();
    bytes.push(format);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let mut hasher = blake3::Hasher::new();
    hasher.update(&bytes[MAGIC_V1.len()..]);
    hasher.update(payload);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(hasher.finalize().as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fuzz_target!(|data: &[u8]| {
    let bytes = if data.starts_with(b"FFCTXS") {
        data.to_vec()
    } else if let Some(payload) = data.strip_prefix(b"5:") {
        framed(5, payload)
    } else if let Some(payload) = data.strip_prefix(b"4:") {
        framed(4, payload)
    } else {
        let mut bytes = MAGIC_V1.to_vec();
        bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
        bytes.extend_from_slice(blake3::hash(data).as_bytes());
        bytes.extend_from_slice(data);
        bytes
    };
    let store = Arc::new(MemoryStore::new());
    store
        .put("context", "snapshot", &bytes)
        .expect("the memory store takes any bytes");
    if let Ok(context) = ContextStore::open(store) {
        let _ = context.ask("how do I validate a field", 500);
        let _ = context.ask("model", 50);
        for key in context.keys() {
            let _ = context.get(&key);
        }
        let _ = context.save();
    }
});
