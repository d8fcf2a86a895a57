//! A profiling harness for one `Run::record` on the caller's thread, the `event` case of the
//! `trace_record` bench: records Action events into a trace file and prints the time per record.
//! Wall-clock figures here are rough; under callgrind, `--toggle-collect='trace_profile::measure'`
//! counts the instructions of `measure` alone, which do not depend on the machine's load.
//!
//! `cargo run --release -p fourfold-benches --example trace_profile [N] [none] [flat|held]`
//!
//! - `N` (default 100,000): how many records `measure` times.
//! - `none`: without redaction (the default redactor otherwise).
//! - By default (paced), `measure` records 1,000 records at a time, and the tracer is flushed
//!   between two calls: the writer keeps up, as it does when an agent records at any pace the
//!   writer sustains, and hands the written records back for reuse. A first 20,000 records, not
//!   measured, warm it up.
//! - `flat`: `measure` records all `N` at once while the writer runs, as the criterion bench does.
//!   Under callgrind, which runs one thread at a time, how many written records come back in time
//!   depends on its scheduling.
//! - `held`: the writer thread is held at a barrier until `measure` returns, so it writes nothing
//!   and hands nothing back: every record is built in new memory.
//!
//! To count the caller's instructions only, run callgrind with `--separate-threads=yes` and read
//! the main thread's file (the one ending in `-01`): the writer's instructions go to another.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use fourfold::trace::{
    Durability, Overflow, Redactor, Run, Sink, TraceError, TraceFileSink, TraceRecord, Tracer,
};
use fourfold::{ActionEvent, EventKind};

/// The bench's arguments: nothing the default redactor masks.
const ARGUMENTS_JSON: &str = r#"{"command":"cargo test -p core --lib","cwd":"/work/project"}"#;

/// How many records come before `measure`, when the writer runs.
const N_WARM_UP_RECORDS: u64 = 20_000;

/// How many records one call of `measure` makes, when paced.
const N_PACED_RECORDS: u64 = 1_000;

#[inline(never)]
fn measure(run: &Run, n_records: u64) {
    record(run, n_records);
}

fn record(run: &Run, n_records: u64) {
    for _ in 0..n_records {
        run.record(EventKind::Action(ActionEvent {
            tool: "bash".to_string(),
            arguments_json: black_box(ARGUMENTS_JSON).to_string(),
            result_digest: None,
            duration_ns: None,
            error: None,
        }));
    }
}

/// The trace file sink, behind a barrier that its first write waits at.
struct HeldSink {
    sink: TraceFileSink,
    barrier: Option<Arc<Barrier>>,
}

impl Sink for HeldSink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        self.write_batch(std::slice::from_ref(record))
    }

    fn write_batch(&mut self, records: &[TraceRecord]) -> Result<(), TraceError> {
        if let Some(barrier) = self.barrier.take() {
            barrier.wait();
        }
        self.sink.write_batch(records)
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        self.sink.flush()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n_records: u64 = args
        .iter()
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(100_000);
    let redactor = match args.iter().any(|arg| arg == "none") {
        true => Redactor::none(),
        false => Redactor::default_patterns(),
    };
    let is_held = args.iter().any(|arg| arg == "held");
    let is_flat = args.iter().any(|arg| arg == "flat");
    let dir = tempfile::tempdir()?;
    let barrier = Arc::new(Barrier::new(2));
    let sink = HeldSink {
        sink: TraceFileSink::open(dir.path().join("profile.trace"), Durability::default())?,
        barrier: is_held.then(|| Arc::clone(&barrier)),
    };
    let tracer = Tracer::builder()
        .sink(sink)
        .capacity(1 << 18)
        .overflow(Overflow::Drop)
        .redactor(redactor)
        .build()?;
    let run = tracer.start_run("agent", Some("task"));
    if !is_held {
        record(&run, N_WARM_UP_RECORDS);
        tracer.flush()?;
    }
    let mut elapsed = std::time::Duration::ZERO;
    if is_held || is_flat {
        let started = Instant::now();
        measure(&run, n_records);
        elapsed = started.elapsed();
    } else {
        let mut n_left = n_records;
        while n_left > 0 {
            let n_now = n_left.min(N_PACED_RECORDS);
            let started = Instant::now();
            measure(&run, n_now);
            elapsed += started.elapsed();
            tracer.flush()?;
            n_left -= n_now;
        }
    }
    if is_held {
        barrier.wait();
    }
    run.end(None);
    tracer.close()?;
    println!(
        "{n_records} records, {:.0} ns each, {} dropped",
        elapsed.as_nanos() as f64 / n_records as f64,
        tracer.n_dropped()
    );
    Ok(())
}
