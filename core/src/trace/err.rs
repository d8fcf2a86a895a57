//! Errors of reading, writing and verifying trace files. Every error about the file's content names
//! the byte offset where the problem starts.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A trace file that could not be read, written or verified.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Reading or writing the file failed.
    #[error("trace i/o failed on `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the trace header: it is not a fourfold trace.
    #[error("`{}` is not a fourfold trace file (bad header at byte 0)", path.display())]
    NotATrace {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer format version.
    #[error("`{}` is trace format version {version}; this fourfold reads version 1", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u8,
    },
    /// A frame is damaged or out of place.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A sink of the Tracer's writer thread failed; the records after the failure may be missing
    /// from that sink.
    #[error("trace sink failed: {reason}")]
    Sink {
        /// What the sink reported.
        reason: String,
    },
    /// The Tracer was closed, or its writer thread stopped.
    #[error("the tracer is closed")]
    Closed,
}

/// What is wrong with one frame of a trace file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameProblem {
    /// The frame's checksum does not match its bytes: they were altered or damaged.
    Checksum,
    /// The frame does not follow the one before it in the hash chain: a frame was removed,
    /// reordered or replaced before it.
    ChainBroken,
    /// The frame's length field is impossible.
    BadLength,
    /// The frame's payload does not decode as a record.
    Undecodable,
    /// The file holds fewer frames than its head file recorded at the last sync: frames were
    /// removed from the end.
    Truncated,
    /// The frame differs from the one the head file recorded at the last sync.
    HeadMismatch,
}

impl FrameProblem {
    fn describe(self) -> &'static str {
        match self {
            FrameProblem::Checksum => "checksum mismatch (altered or damaged bytes)",
            FrameProblem::ChainBroken => {
                "hash chain broken (a frame before it was removed, reordered or replaced)"
            }
            FrameProblem::BadLength => "impossible frame length",
            FrameProblem::Undecodable => "payload does not decode",
            FrameProblem::Truncated => "frames missing at the end (fewer than the head recorded)",
            FrameProblem::HeadMismatch => "frame differs from the one the head recorded",
        }
    }
}

/// A damaged or misplaced frame, with where it is.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("`{}`: frame {frame_idx} at byte {offset}: {}{}", path.display(), problem.describe(), detail_suffix(detail))]
pub struct FrameError {
    path: PathBuf,
    offset: u64,
    frame_idx: u64,
    problem: FrameProblem,
    detail: Option<String>,
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map_or(String::new(), |detail| format!(": {detail}"))
}

impl FrameError {
    pub(crate) fn new(
        path: &Path,
        offset: u64,
        frame_idx: u64,
        problem: FrameProblem,
        detail: Option<String>,
    ) -> FrameError {
        FrameError {
            path: path.to_path_buf(),
            offset,
            frame_idx,
            problem,
            detail,
        }
    }

    /// The byte offset where the frame starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The index of the frame, counting from 0.
    pub fn frame_idx(&self) -> u64 {
        self.frame_idx
    }

    /// What is wrong.
    pub fn problem(&self) -> FrameProblem {
        self.problem
    }
}

impl TraceError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> TraceError {
        TraceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
