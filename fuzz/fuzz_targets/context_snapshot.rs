//! Any bytes as a context store's snapshot: opening gives a store or a typed error, never a panic,
//! and a store that opens answers asks and saves again.
//!
//! Input that does not start with the snapshot's magic is taken as a payload and given a valid
//! header (its length and BLAKE3 hash), so that the fuzzer reaches the decoder and the state's
//! consistency check instead of stopping at the checksum (see core/src/context/snapshot.rs for
//! the format).
#![no_main]

use std::sync::Arc;

use fourfold::context::ContextStore;
use fourfold::{MemoryStore, Store};
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8; 7] = b"FFCTXS\x01";

fuzz_target!(|data: &[u8]| {
    let bytes = if data.starts_with(b"FFCTXS") {
        data.to_vec()
    } else {
        let mut bytes = MAGIC.to_vec();
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
