//! The trace file across a crash: a child process writing a trace is killed with SIGKILL, and the
//! file still reads up to its last whole frame, holds everything flushed before the kill, and takes
//! new frames after it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use fourfold::trace::{self, TraceRecord, TraceWriter};
use fourfold::{DecisionEvent, Event, EventKind};

const CHILD_ENV: &str = "FOURFOLD_TRACE_CHILD";

fn record(seq: u64) -> TraceRecord {
    TraceRecord::Event(Event {
        run_id: "crash-run".into(),
        agent_id: "coder".into(),
        task_id: None,
        seq,
        timestamp_ns: seq,
        span_id: None,
        parent_span_id: None,
        kind: EventKind::Decision(DecisionEvent {
            choice: format!("step {seq}"),
            rationale: "x".repeat((seq % 300) as usize),
            alternatives: vec![],
        }),
    })
}

/// The child half of `a_trace_survives_sigkill_mid_write`: writes until killed, and says on stdout
/// how many records it has flushed. Ignored unless run by that test.
#[test]
#[ignore = "run as a child process by a_trace_survives_sigkill_mid_write"]
fn trace_child_writer() {
    let path = std::env::var(CHILD_ENV).expect("run by a_trace_survives_sigkill_mid_write");
    let mut writer = TraceWriter::open(path).unwrap();
    for seq in 1.. {
        writer.append(&record(seq)).unwrap();
        if seq % 64 == 0 {
            writer.flush().unwrap();
            println!("flushed {seq}");
        }
    }
}

#[test]
fn a_trace_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.trace");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "trace::trace_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut n_flushed = 0u64;
    for line in stdout.lines() {
        if let Some(count) = line.unwrap().strip_prefix("flushed ") {
            n_flushed = count.parse().unwrap();
            if n_flushed >= 5_000 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(n_flushed >= 5_000, "the child stopped early");

    let contents = trace::read(&path).unwrap();
    let n_read = contents.records.len() as u64;
    assert!(
        n_read >= n_flushed,
        "{n_read} records read, {n_flushed} flushed before the kill"
    );
    for (record_idx, (_, read_back)) in contents.records.iter().enumerate() {
        assert_eq!(*read_back, record(record_idx as u64 + 1));
    }

    let mut writer = TraceWriter::open(&path).unwrap();
    writer.append(&record(n_read + 1)).unwrap();
    writer.sync().unwrap();
    let verified = trace::verify(&path).unwrap();
    assert_eq!(verified.head.n_frames, n_read + 1);
}
