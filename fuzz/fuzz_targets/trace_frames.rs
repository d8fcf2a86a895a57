//! Any bytes as a trace file: the reader gives records or a typed error, never a panic, and
//! stops (it never loops on the same offset).
#![no_main]

use std::io::Cursor;

use fourfold::trace::TraceReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = TraceReader::new("fuzz.trace", Cursor::new(data)) else {
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
    if let Ok(reader) = TraceReader::new("fuzz.trace", Cursor::new(data)) {
        let _ = reader.runs();
    }
});
