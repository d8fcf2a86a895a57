//! Tracer: a tamper-evident record of what agents decided, did, spent and were allowed.
//!
//! This module holds the trace file: an append-only file of checksummed, hash-chained frames
//! ([`TraceWriter`], [`read`], [`verify`]) that survives crashes (a reader stops at the last whole
//! frame and reports the torn tail; a writer that reopens the file appends after it) and shows any
//! altered, removed, reordered or truncated frame. The format is in `docs/trace-format.md`.

mod err;
mod file;

pub use err::{FrameError, FrameProblem, TraceError};
pub use file::{
    decode, head_path, read, read_head, verify, FrameHash, TornTail, TraceContents, TraceHead,
    TraceWriter, Verified, HEADER, MAX_PAYLOAD_LEN,
};

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// One record of a trace file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TraceRecord {
    /// An event of any of the five kinds.
    Event(Event),
    /// Events that were dropped because the writer could not keep up, so that the trace itself
    /// says that it is incomplete, and by how much.
    Dropped {
        /// How many events were dropped since the previous record of this kind.
        n_events: u64,
        /// When the drop was recorded, in nanoseconds since the Unix epoch.
        at_ns: u64,
    },
}
