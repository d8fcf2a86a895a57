//! Any bytes as a trace file: the reader gives records or a typed error, never a panic, and
//! stops (it never loops on the same offset).
//!
//! Input that does not start with the trace header's `FFTRACE` is taken as payloads and given
//! a header and valid frames (each payload's length, checksum and the previous frame's hash),
//! so that the fuzzer reaches the record decoder instead of stopping at the checksums (see
//! docs/trace-format.md): its first byte picks the format (odd 2, even 3), then each payload
//! is a length (two bytes, little-endian) followed by that many bytes (fewer at the end).
#![no_main]

use std::io::Cursor;

use fourfold::trace::TraceReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = if data.starts_with(b"FFTRACE") {
        data.to_vec()
    } else {
        framed(data)
    };
    let Ok(mut reader) = TraceReader::new("fuzz.trace", Cursor::new(&bytes)) else {
        return;
    };
    let _ = reader.head();
    let _ = reader.torn_tail();
    let mut last_offset = None;
    while let Ok(Some((offset, _record))) = reader.next_record() {
        assert!(
            last_offset.is_none_or(|last| offset > last),
            "the reader went back"
        );
        last_offset = Some(offset);
    }
    // Rebuilding the runs from the same bytes must not panic either.
    if let Ok(reader) = TraceReader::new("fuzz.trace", Cursor::new(&bytes)) {
        let _ = reader.runs();
    }
});

/// A trace file whose frames hold the payloads `data` describes, each with a valid checksum
/// and chained to the one before.
fn framed(data: &[u8]) -> Vec<u8> {
    let Some((format, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut bytes = b"FFTRACE".to_vec();
    bytes.push(if format % 2 == 1 { 2 } else { 3 });
    let mut prev_hash = [0u8; 32];
    while !rest.is_empty() {
        let (len, after) = rest.split_at(rest.len().min(2));
        let len = len.iter().rev().fold(0, |len, byte| len << 8 | usize::from(*byte));
        let (payload, next) = after.split_at(len.min(after.len()));
        let start = bytes.len();
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&prev_hash);
        crc.update(payload);
        bytes.extend_from_slice(&crc.finalize().to_le_bytes());
        bytes.extend_from_slice(&prev_hash);
        bytes.extend_from_slice(payload);
        prev_hash = *blake3::hash(&bytes[start..]).as_bytes();
        rest = next;
    }
    bytes
}
