//! The OTLP/JSON Lines file sink.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{OtlpBatch, OtlpExporter, OtlpStats};
use crate::trace::err::TraceError;
use crate::trace::sink::Sink;
use crate::trace::TraceRecord;

/// A [`Sink`] that appends OTLP/JSON Lines to a file, for the Collector's `otlpjsonfile` receiver.
///
/// It writes a line when a run's last open span ends, and on [`Sink::flush`] a line with the
/// spans that ended so far. Spans still open are written, marked unfinished, when the sink is
/// closed or dropped (the Tracer drops its sinks when it closes; errors on drop are lost, so call
/// [`OtlpJsonLinesSink::close`] to see them). If the process dies first, they are only in the
/// trace file, from which `fourfold trace export` recovers them.
pub struct OtlpJsonLinesSink {
    path: PathBuf,
    file: BufWriter<File>,
    exporter: OtlpExporter,
}

impl OtlpJsonLinesSink {
    /// Opens `path` for appending, creating it if needed; batches carry `service.name =
    /// service_name`.
    pub fn open(
        path: impl AsRef<Path>,
        service_name: &str,
    ) -> Result<OtlpJsonLinesSink, TraceError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| TraceError::io(&path, error))?;
        Ok(OtlpJsonLinesSink {
            path,
            file: BufWriter::new(file),
            exporter: OtlpExporter::new(service_name),
        })
    }

    /// Writes every span not written yet, the open ones as unfinished, flushes, and returns what
    /// was exported.
    pub fn close(mut self) -> Result<OtlpStats, TraceError> {
        self.write_remaining()?;
        Ok(self.exporter.stats())
    }

    fn write_batch(&mut self, batch: Option<OtlpBatch>) -> Result<(), TraceError> {
        match batch {
            Some(batch) => batch
                .write_json_line(&mut self.file)
                .map_err(|error| TraceError::io(&self.path, error)),
            None => Ok(()),
        }
    }

    fn write_remaining(&mut self) -> Result<(), TraceError> {
        let batch = self.exporter.finish();
        self.write_batch(batch)?;
        self.file
            .flush()
            .map_err(|error| TraceError::io(&self.path, error))
    }
}

impl Sink for OtlpJsonLinesSink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        let batch = self.exporter.push(record);
        self.write_batch(batch)
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        let batch = self.exporter.take_ended();
        self.write_batch(batch)?;
        self.file
            .flush()
            .map_err(|error| TraceError::io(&self.path, error))
    }
}

impl Drop for OtlpJsonLinesSink {
    fn drop(&mut self) {
        // A drop cannot report a failure; `close` is the way to see one.
        let _ = self.write_remaining();
    }
}
