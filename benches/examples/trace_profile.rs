//! A profiling harness for one `Run::record` on the caller's thread, the `event` case of the
//! `trace_record` bench: records `N` Action events into a trace file and prints the time per
//! record. Wall-clock figures here are rough (no warm-up); under callgrind,
//! `--toggle-collect='trace_profile::measure'` counts the caller's instructions only (the writer
//! thread never runs inside `measure`), which do not depend on the machine's load.
//!
//! `cargo run --release -p fourfold-benches --example trace_profile [N] [none]` (`none`: without
//! redaction).

use std::hint::black_box;
use std::time::Instant;

use fourfold::trace::{Durability, Overflow, Redactor, Run, TraceFileSink, Tracer};
use fourfold::{ActionEvent, EventKind};

/// The bench's arguments: nothing the default redactor masks.
const ARGUMENTS_JSON: &str = r#"{"command":"cargo test -p core --lib","cwd":"/work/project"}"#;

#[inline(never)]
fn measure(run: &Run, n_records: u64) {
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n_records: u64 = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let redactor = match args.next().as_deref() {
        Some("none") => Redactor::none(),
        _ => Redactor::default_patterns(),
    };
    let dir = tempfile::tempdir()?;
    let tracer = Tracer::builder()
        .sink(TraceFileSink::open(
            dir.path().join("profile.trace"),
            Durability::default(),
        )?)
        .capacity(1 << 18)
        .overflow(Overflow::Drop)
        .redactor(redactor)
        .build()?;
    let run = tracer.start_run("agent", Some("task"));
    let started = Instant::now();
    measure(&run, n_records);
    let elapsed = started.elapsed();
    run.end(None);
    tracer.close()?;
    println!(
        "{n_records} records, {:.0} ns each, {} dropped",
        elapsed.as_nanos() as f64 / n_records as f64,
        tracer.n_dropped()
    );
    Ok(())
}
