//! Where the Tracer's writer thread puts records: the trace file, JSON Lines, or memory.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::err::TraceError;
use super::file::TraceWriter;
use super::TraceRecord;
use crate::event::EventKind;

/// A destination for trace records. Sinks run on the Tracer's writer thread, never on an agent's.
pub trait Sink: Send {
    /// Takes one record.
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError>;

    /// Takes records in order: what the writer thread found queued at once. The default writes
    /// them one by one and returns the first failure, after trying every record.
    fn write_batch(&mut self, records: &[TraceRecord]) -> Result<(), TraceError> {
        let mut first_error = None;
        for record in records {
            if let Err(error) = self.write(record) {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Hands everything written so far to the operating system (or wherever the sink keeps it).
    fn flush(&mut self) -> Result<(), TraceError>;

    /// Called when the writer thread has been idle for a while, so time-based durability can act.
    fn tick(&mut self) -> Result<(), TraceError> {
        Ok(())
    }
}

/// When a trace file is synced to disk (beyond [`Sink::flush`], which every sink does on request).
///
/// The writer thread hands records to the sink in batches of what it found queued (up to 8,192),
/// and the file sink checks these conditions after each batch: a sync that a record calls for
/// comes after the whole batch and covers it. When records come slowly a batch holds one or a few
/// of them; under load, one sync covers up to a batch, so `every_n_records` is then a floor rather
/// than an exact count, and the file takes more records per second than the disk takes syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    /// Sync after this many records.
    pub every_n_records: Option<u64>,
    /// Sync when this much time has passed since the last sync and something was written.
    pub every: Option<Duration>,
    /// Sync after every gate event (a policy decision or an approval).
    pub on_gate: bool,
}

impl Default for Durability {
    /// Every gate event, every 1,000 records, and every 100 ms.
    fn default() -> Durability {
        Durability {
            every_n_records: Some(1_000),
            every: Some(Duration::from_millis(100)),
            on_gate: true,
        }
    }
}

/// The trace file sink: checksummed, hash-chained frames (see `docs/trace-format.md`).
pub struct TraceFileSink {
    writer: TraceWriter,
    durability: Durability,
    n_unsynced: u64,
    last_sync: Instant,
}

impl TraceFileSink {
    /// Opens (or creates, or appends to) the trace file at `path`.
    pub fn open(
        path: impl Into<PathBuf>,
        durability: Durability,
    ) -> Result<TraceFileSink, TraceError> {
        Ok(TraceFileSink {
            writer: TraceWriter::open(path)?,
            durability,
            n_unsynced: 0,
            last_sync: Instant::now(),
        })
    }

    fn sync(&mut self) -> Result<(), TraceError> {
        self.writer.sync()?;
        self.n_unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn interval_elapsed(&self) -> bool {
        self.n_unsynced > 0
            && self
                .durability
                .every
                .is_some_and(|every| self.last_sync.elapsed() >= every)
    }
}

impl Sink for TraceFileSink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        self.write_batch(std::slice::from_ref(record))
    }

    fn write_batch(&mut self, records: &[TraceRecord]) -> Result<(), TraceError> {
        if records.is_empty() {
            return Ok(());
        }
        let appended = self.writer.append_batch(records);
        self.n_unsynced += records.len() as u64;
        let has_gate = self.durability.on_gate
            && records.iter().any(|record| {
                matches!(record, TraceRecord::Event(event) if matches!(event.kind, EventKind::Gate(_)))
            });
        let count_reached = self
            .durability
            .every_n_records
            .is_some_and(|n| self.n_unsynced >= n);
        if has_gate || count_reached || self.interval_elapsed() {
            self.sync()?;
        }
        appended
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        self.writer.flush()
    }

    fn tick(&mut self) -> Result<(), TraceError> {
        if self.interval_elapsed() {
            self.sync()?;
        }
        Ok(())
    }
}

/// One JSON object per line: the records as serde writes them, for `jq` and log shippers.
pub struct JsonLinesSink {
    path: PathBuf,
    file: BufWriter<File>,
}

impl JsonLinesSink {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonLinesSink, TraceError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| TraceError::io(&path, error))?;
        Ok(JsonLinesSink {
            path,
            file: BufWriter::new(file),
        })
    }
}

impl Sink for JsonLinesSink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        let line = serde_json::to_string(record)
            .map_err(|error| TraceError::io(&self.path, std::io::Error::other(error)))?;
        writeln!(self.file, "{line}").map_err(|error| TraceError::io(&self.path, error))
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        self.file
            .flush()
            .map_err(|error| TraceError::io(&self.path, error))
    }
}

/// Keeps records in memory, for tests and for reading a run back in-process.
#[derive(Clone, Default)]
pub struct MemorySink {
    records: Arc<Mutex<Vec<TraceRecord>>>,
}

impl MemorySink {
    /// An empty sink; clones share the same records.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// The records written so far.
    pub fn records(&self) -> Vec<TraceRecord> {
        self.records.lock().clone()
    }
}

impl Sink for MemorySink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        self.records.lock().push(record.clone());
        Ok(())
    }

    fn write_batch(&mut self, records: &[TraceRecord]) -> Result<(), TraceError> {
        self.records.lock().extend_from_slice(records);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        Ok(())
    }
}
