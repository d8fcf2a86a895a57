//! Trace recording cost: fourfold's Tracer against `tracing` and `opentelemetry_sdk`, in the same
//! run and on the same small tool-call record.
//!
//! `trace_record_caller` times what recording costs the caller's thread, with the writer on a
//! thread of its own: fourfold's `Run::record` of an Action event (with the default redactor and
//! without any), its span start and end, a `tracing::info!` event and an `info_span!` entered and
//! dropped (JSON lines through `tracing-appender`'s non-blocking writer), and an OpenTelemetry SDK
//! span with and without two attributes (batch span processor). Each criterion sample records into
//! an empty queue that holds the whole sample, and the writers drain it outside the timed part, so
//! the caller neither waits nor drops; drops are counted per call and printed all the same (the
//! largest warm-up calls can overflow a queue).
//!
//! `trace_sustained` times one thread handing over 200,000 records and waiting until all of them
//! are written to the file, and reports records per second. Once, outside timing, fourfold's trace
//! file is then read back and verified record by record.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use fourfold::trace::{
    self, Durability, Overflow, Redactor, SpanKind, TraceFileSink, TraceRecord, Tracer,
};
use fourfold::{ActionEvent, EventKind};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::format::FmtSpan;

/// The tool call's arguments: 60 bytes of JSON with nothing the default redactor masks.
const ARGUMENTS_JSON: &str = r#"{"command":"cargo test -p core --lib","cwd":"/work/project"}"#;

/// The queue capacity of every recorder in `trace_record_caller`: more than a sample records, so
/// the caller never finds the queue full.
const CALLER_QUEUE_CAPACITY: usize = 1 << 18;

/// The Tracer's default queue capacity, which `trace_sustained` keeps.
const DEFAULT_QUEUE_CAPACITY: usize = 65_536;

const N_SUSTAINED_RECORDS: u64 = 200_000;

/// The peers' files are emptied (on their writer threads) once they grow past this, to bound the
/// disk a run uses; fourfold gets a new trace file per sample instead.
const PEER_FILE_LIMIT_BYTES: u64 = 256 << 20;

fn trace_record(criterion: &mut Criterion) {
    let bench_dir = tempfile::tempdir().expect("a temporary directory");
    check_arguments_are_not_redacted();
    let mut tracing_peer = TracingPeer::install(&bench_dir.path().join("tracing.jsonl"));
    let opentelemetry_peer = OpenTelemetryPeer::new(&bench_dir.path().join("opentelemetry.txt"));
    if std::env::args().any(|arg| arg == "--bench") {
        single_call_latency(bench_dir.path(), &mut tracing_peer, &opentelemetry_peer);
    }

    let mut group = criterion.benchmark_group("trace_record_caller");
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));
    bench_fourfold_caller(&mut group, bench_dir.path());
    bench_tracing_caller(&mut group, &mut tracing_peer);
    bench_opentelemetry_caller(&mut group, &opentelemetry_peer);
    group.finish();

    let mut group = criterion.benchmark_group("trace_sustained");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(N_SUSTAINED_RECORDS));
    bench_fourfold_sustained(&mut group, bench_dir.path());
    bench_tracing_sustained(&mut group, &mut tracing_peer);
    bench_opentelemetry_sustained(&mut group, &opentelemetry_peer);
    group.finish();

    opentelemetry_peer.shut_down();
}

/// The Action event of every fourfold case: the API takes owned strings, so building it (two
/// small allocations) is part of what the caller pays.
fn action(arguments_json: &str) -> EventKind {
    EventKind::Action(ActionEvent {
        tool: "bash".to_string(),
        arguments_json: arguments_json.to_string(),
        result_digest: None,
        duration_ns: None,
        error: None,
    })
}

/// The redactor must find nothing to mask, or the with- and without-redaction cases would not
/// write the same record.
fn check_arguments_are_not_redacted() {
    let redacted = Redactor::default_patterns()
        .redact(ARGUMENTS_JSON)
        .into_owned();
    assert_eq!(
        redacted, ARGUMENTS_JSON,
        "the default redactor masks part of the arguments"
    );
}

/// Durability without periodic syncs: the writer flushes to the operating system when asked, as
/// the peers do, and never calls `fsync` (there are no gate events here).
fn no_periodic_sync() -> Durability {
    Durability {
        every_n_records: None,
        every: None,
        on_gate: true,
    }
}

fn build_tracer(
    path: &Path,
    durability: Durability,
    capacity: usize,
    overflow: Overflow,
    redactor: Redactor,
) -> Tracer {
    Tracer::builder()
        .sink(TraceFileSink::open(path, durability).expect("the trace file opens"))
        .capacity(capacity)
        .overflow(overflow)
        .redactor(redactor)
        .build()
        .expect("the tracer starts")
}

fn remove_trace(path: &Path) {
    for file in [path.to_path_buf(), trace::head_path(path)] {
        if let Err(error) = fs::remove_file(&file) {
            assert_eq!(
                error.kind(),
                io::ErrorKind::NotFound,
                "cannot remove {file:?}"
            );
        }
    }
}

#[derive(Clone, Copy)]
enum FourfoldRecord {
    Event,
    Span,
}

fn bench_fourfold_caller(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    dir: &Path,
) {
    let cases = [
        ("event", FourfoldRecord::Event, Redactor::default_patterns()),
        (
            "event_no_redaction",
            FourfoldRecord::Event,
            Redactor::none(),
        ),
        ("span", FourfoldRecord::Span, Redactor::default_patterns()),
    ];
    let path = dir.join("caller.trace");
    for (case_name, fourfold_record, redactor) in cases {
        let mut drop_log = DropLog::default();
        group.bench_function(BenchmarkId::new("fourfold", case_name), |bencher| {
            bencher.iter_custom(|n_iters| {
                // A new tracer and trace file per sample, built and closed outside the timed part,
                // so each sample starts with an empty queue and the file stays small.
                let tracer = build_tracer(
                    &path,
                    Durability::default(),
                    CALLER_QUEUE_CAPACITY,
                    Overflow::Drop,
                    redactor.clone(),
                );
                let run = tracer.start_run("agent", Some("task"));
                let started = Instant::now();
                match fourfold_record {
                    FourfoldRecord::Event => {
                        for _ in 0..n_iters {
                            run.record(action(black_box(ARGUMENTS_JSON)));
                        }
                    }
                    FourfoldRecord::Span => {
                        for _ in 0..n_iters {
                            run.span(black_box("bash"), SpanKind::ToolCall).end(None);
                        }
                    }
                }
                let elapsed = started.elapsed();
                run.end(None);
                tracer.close().expect("the trace file is written");
                let n_records_per_iter = match fourfold_record {
                    FourfoldRecord::Event => 1,
                    FourfoldRecord::Span => 2,
                };
                drop_log.add(n_iters, n_records_per_iter * n_iters, tracer.n_dropped());
                remove_trace(&path);
                elapsed
            })
        });
        drop_log.report(&format!("fourfold/{case_name}"));
    }
}

fn bench_fourfold_sustained(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    dir: &Path,
) {
    let path = dir.join("sustained.trace");
    for (case_name, durability) in [
        ("default_durability", Durability::default()),
        ("no_periodic_sync", no_periodic_sync()),
    ] {
        let mut verified = false;
        group.bench_function(BenchmarkId::new("fourfold", case_name), |bencher| {
            bencher.iter_custom(|n_iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..n_iters {
                    let tracer = build_tracer(
                        &path,
                        durability,
                        DEFAULT_QUEUE_CAPACITY,
                        Overflow::Block,
                        Redactor::default_patterns(),
                    );
                    let run = tracer.start_run("agent", Some("task"));
                    let started = Instant::now();
                    for _ in 0..N_SUSTAINED_RECORDS {
                        run.record(action(black_box(ARGUMENTS_JSON)));
                    }
                    tracer.flush().expect("the trace file is written");
                    elapsed += started.elapsed();
                    run.end(None);
                    tracer.close().expect("the trace file is written");
                    if !verified {
                        check_sustained_trace(&path);
                        verified = true;
                    }
                    remove_trace(&path);
                }
                elapsed
            })
        });
    }
}

/// Reads a sustained run's trace file back: the run's start, every event in order with nothing
/// dropped or altered, the run's end; and the frames, checksums and hash chain verify.
fn check_sustained_trace(path: &Path) {
    let verified = trace::verify(path).expect("the trace file verifies");
    let contents = trace::read(path).expect("the trace file reads");
    let records: Vec<&TraceRecord> = contents.records.iter().map(|(_, record)| record).collect();
    let n_records = N_SUSTAINED_RECORDS as usize + 2;
    assert_eq!(records.len(), n_records, "records in the trace file");
    assert_eq!(
        verified.head.n_frames, n_records as u64,
        "frames in the trace file"
    );
    assert!(matches!(records[0], TraceRecord::SpanStart { .. }));
    assert!(matches!(
        records[n_records - 1],
        TraceRecord::SpanEnd { .. }
    ));
    for (event_idx, record) in records[1..n_records - 1].iter().enumerate() {
        let TraceRecord::Event(event) = record else {
            panic!("record {} is not an event: {record:?}", event_idx + 1);
        };
        assert_eq!(
            event.seq,
            event_idx as u64 + 1,
            "sequence of event {event_idx}"
        );
        assert_eq!(event.kind, action(ARGUMENTS_JSON), "event {event_idx}");
    }
}

/// Counts the records dropped because a queue was full, per call of a timed closure, so the report
/// tells criterion's warm-up calls (1, 2, 4, ... iterations) from its samples (all of one size).
#[derive(Default)]
struct DropLog {
    n_records: u64,
    n_dropped: u64,
    calls_with_drops: Vec<(u64, u64)>,
    n_calls_by_n_iters: std::collections::BTreeMap<u64, u64>,
}

impl DropLog {
    fn add(&mut self, n_iters: u64, n_records: u64, n_dropped: u64) {
        self.n_records += n_records;
        self.n_dropped += n_dropped;
        if n_dropped > 0 {
            self.calls_with_drops.push((n_iters, n_dropped));
        }
        *self.n_calls_by_n_iters.entry(n_iters).or_default() += 1;
    }

    fn report(&self, name: &str) {
        let sample_n_iters = self
            .n_calls_by_n_iters
            .iter()
            .max_by_key(|(_, n_calls)| **n_calls)
            .map_or(0, |(n_iters, _)| *n_iters);
        let calls_with_drops: Vec<String> = self
            .calls_with_drops
            .iter()
            .map(|(n_iters, n_dropped)| format!("{n_dropped} in a call of {n_iters} iterations"))
            .collect();
        eprintln!(
            "{name}: {} of {} records dropped ({}); samples were of {sample_n_iters} iterations",
            self.n_dropped,
            self.n_records,
            if calls_with_drops.is_empty() {
                "none".to_string()
            } else {
                calls_with_drops.join(", ")
            },
        );
    }
}

/// `tracing` with `tracing-subscriber`'s JSON formatter, installed as the global subscriber (the
/// usual setup), writing through `tracing-appender`'s non-blocking writer to a buffered file.
struct TracingPeer {
    n_lines_written: Arc<AtomicU64>,
    n_lines_expected: u64,
    error_counter: ErrorCounter,
    _worker_guard: WorkerGuard,
}

impl TracingPeer {
    fn install(path: &Path) -> TracingPeer {
        let n_lines_written = Arc::new(AtomicU64::new(0));
        let file = LineCountingFile::create(path, Arc::clone(&n_lines_written));
        // Not lossy, like `Overflow::Block`; in `trace_record_caller` no sample fills the buffer.
        let (non_blocking, worker_guard) = NonBlockingBuilder::default()
            .lossy(false)
            .buffered_lines_limit(CALLER_QUEUE_CAPACITY)
            .finish(file);
        let error_counter = non_blocking.error_counter();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_writer(non_blocking)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        TracingPeer {
            n_lines_written,
            n_lines_expected: 0,
            error_counter,
            _worker_guard: worker_guard,
        }
    }

    /// Waits until the worker thread has written (or dropped) every line so far, after
    /// `n_new_lines` more were handed over.
    fn wait_until_written(&mut self, n_new_lines: u64) {
        self.n_lines_expected += n_new_lines;
        loop {
            let n_dropped = self.error_counter.dropped_lines() as u64;
            if self.n_lines_written.load(Ordering::Acquire) + n_dropped >= self.n_lines_expected {
                return;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

/// A buffered file that counts the lines it has handed to the operating system, and empties
/// itself once it grows past `PEER_FILE_LIMIT_BYTES`. It runs on the peer's writer thread.
struct LineCountingFile {
    file: BufWriter<File>,
    n_bytes: u64,
    n_lines_buffered: u64,
    n_lines_written: Arc<AtomicU64>,
}

impl std::fmt::Debug for LineCountingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineCountingFile")
            .field("n_bytes", &self.n_bytes)
            .finish_non_exhaustive()
    }
}

impl LineCountingFile {
    fn create(path: &Path, n_lines_written: Arc<AtomicU64>) -> LineCountingFile {
        LineCountingFile {
            file: BufWriter::new(File::create(path).expect("the peer's file opens")),
            n_bytes: 0,
            n_lines_buffered: 0,
            n_lines_written,
        }
    }
}

impl Write for LineCountingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n_bytes = self.file.write(buf)?;
        self.n_bytes += n_bytes as u64;
        self.n_lines_buffered +=
            buf[..n_bytes].iter().filter(|&&byte| byte == b'\n').count() as u64;
        Ok(n_bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.n_lines_written
            .fetch_add(self.n_lines_buffered, Ordering::Release);
        self.n_lines_buffered = 0;
        if self.n_bytes > PEER_FILE_LIMIT_BYTES {
            self.file.get_mut().set_len(0)?;
            self.file.get_mut().seek(SeekFrom::Start(0))?;
            self.n_bytes = 0;
        }
        Ok(())
    }
}

fn bench_tracing_caller(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    tracing_peer: &mut TracingPeer,
) {
    group.bench_function(BenchmarkId::new("tracing", "event"), |bencher| {
        bencher.iter_custom(|n_iters| {
            let started = Instant::now();
            for _ in 0..n_iters {
                tracing::info!(
                    tool = "bash",
                    arguments = black_box(ARGUMENTS_JSON),
                    "action"
                );
            }
            let elapsed = started.elapsed();
            tracing_peer.wait_until_written(n_iters);
            elapsed
        })
    });
    group.bench_function(BenchmarkId::new("tracing", "span"), |bencher| {
        bencher.iter_custom(|n_iters| {
            let started = Instant::now();
            for _ in 0..n_iters {
                drop(tracing::info_span!("bash", kind = "tool_call").entered());
            }
            let elapsed = started.elapsed();
            // One line when the span is created and one when it closes.
            tracing_peer.wait_until_written(2 * n_iters);
            elapsed
        })
    });
}

fn bench_tracing_sustained(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    tracing_peer: &mut TracingPeer,
) {
    group.bench_function(BenchmarkId::new("tracing", "no_periodic_sync"), |bencher| {
        bencher.iter_custom(|n_iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..n_iters {
                let started = Instant::now();
                for _ in 0..N_SUSTAINED_RECORDS {
                    tracing::info!(
                        tool = "bash",
                        arguments = black_box(ARGUMENTS_JSON),
                        "action"
                    );
                }
                tracing_peer.wait_until_written(N_SUSTAINED_RECORDS);
                elapsed += started.elapsed();
            }
            elapsed
        })
    });
}

/// The OpenTelemetry SDK with a batch span processor (its dedicated export thread) and a minimal
/// exporter that writes one text line per span to a buffered file.
struct OpenTelemetryPeer {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    n_spans_exported: Arc<AtomicU64>,
}

impl OpenTelemetryPeer {
    fn new(path: &Path) -> OpenTelemetryPeer {
        let n_spans_exported = Arc::new(AtomicU64::new(0));
        let exporter = LineFileExporter {
            file: Mutex::new(LineCountingFile::create(
                path,
                Arc::clone(&n_spans_exported),
            )),
        };
        let batch_config = BatchConfigBuilder::default()
            .with_max_queue_size(CALLER_QUEUE_CAPACITY)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch_config)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("fourfold-bench");
        OpenTelemetryPeer {
            provider,
            tracer,
            n_spans_exported,
        }
    }

    /// How many spans were exported so far.
    fn n_exported(&self) -> u64 {
        self.n_spans_exported.load(Ordering::Acquire)
    }

    /// Waits until every span ended so far is exported or dropped, and returns how many of the
    /// `n_new_spans` ended since `n_exported_before` the processor dropped because its queue was
    /// full.
    fn flush(&self, n_exported_before: u64, n_new_spans: u64) -> u64 {
        self.provider.force_flush().expect("the spans are exported");
        n_new_spans - (self.n_exported() - n_exported_before)
    }

    fn shut_down(self) {
        self.provider.shutdown().expect("the provider shuts down");
    }
}

#[derive(Debug)]
struct LineFileExporter {
    file: Mutex<LineCountingFile>,
}

impl SpanExporter for LineFileExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut file = self.file.lock().expect("the exporter's file lock");
        let mut line = String::new();
        for span in &batch {
            line.clear();
            let _ = write!(
                line,
                "{} {} {} {} {}",
                span.name,
                span.span_context.trace_id(),
                span.span_context.span_id(),
                unix_ns(span.start_time),
                unix_ns(span.end_time),
            );
            for attribute in &span.attributes {
                let _ = write!(line, " {}={}", attribute.key, attribute.value);
            }
            line.push('\n');
            file.write_all(line.as_bytes()).map_err(export_error)?;
        }
        file.flush().map_err(export_error)
    }
}

fn unix_ns(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn export_error(error: io::Error) -> OTelSdkError {
    OTelSdkError::InternalFailure(error.to_string())
}

fn bench_opentelemetry_caller(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    opentelemetry_peer: &OpenTelemetryPeer,
) {
    let tracer = &opentelemetry_peer.tracer;
    let mut drop_log = DropLog::default();
    group.bench_function(BenchmarkId::new("opentelemetry", "event"), |bencher| {
        bencher.iter_custom(|n_iters| {
            let n_exported_before = opentelemetry_peer.n_exported();
            let started = Instant::now();
            for _ in 0..n_iters {
                opentelemetry_span_with_attributes(tracer);
            }
            let elapsed = started.elapsed();
            let n_dropped = opentelemetry_peer.flush(n_exported_before, n_iters);
            drop_log.add(n_iters, n_iters, n_dropped);
            elapsed
        })
    });
    drop_log.report("opentelemetry/event");
    let mut drop_log = DropLog::default();
    group.bench_function(BenchmarkId::new("opentelemetry", "span"), |bencher| {
        bencher.iter_custom(|n_iters| {
            let n_exported_before = opentelemetry_peer.n_exported();
            let started = Instant::now();
            for _ in 0..n_iters {
                tracer
                    .span_builder(black_box("bash"))
                    .with_kind(opentelemetry::trace::SpanKind::Internal)
                    .start(tracer)
                    .end();
            }
            let elapsed = started.elapsed();
            let n_dropped = opentelemetry_peer.flush(n_exported_before, n_iters);
            drop_log.add(n_iters, n_iters, n_dropped);
            elapsed
        })
    });
    drop_log.report("opentelemetry/span");
}

/// A tool call the OpenTelemetry way (an `execute_tool` span): one span with the tool and its
/// arguments as attributes. The arguments are copied into an owned string, as fourfold's are.
fn opentelemetry_span_with_attributes(tracer: &SdkTracer) {
    opentelemetry_span(tracer, opentelemetry_attributes());
}

/// The attributes of [`opentelemetry_span_with_attributes`]: the tool, and its arguments copied.
fn opentelemetry_attributes() -> [KeyValue; 2] {
    [
        KeyValue::new("tool", "bash"),
        KeyValue::new("arguments", black_box(ARGUMENTS_JSON).to_string()),
    ]
}

/// An `execute_tool` span with `attributes`, started and ended.
fn opentelemetry_span(tracer: &SdkTracer, attributes: [KeyValue; 2]) {
    tracer
        .span_builder("execute_tool")
        .with_kind(opentelemetry::trace::SpanKind::Internal)
        .with_attributes(attributes)
        .start(tracer)
        .end();
}

fn bench_opentelemetry_sustained(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    opentelemetry_peer: &OpenTelemetryPeer,
) {
    let tracer = &opentelemetry_peer.tracer;
    group.bench_function(
        BenchmarkId::new("opentelemetry", "no_periodic_sync"),
        |bencher| {
            bencher.iter_custom(|n_iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..n_iters {
                    let n_exported_before = opentelemetry_peer.n_exported();
                    let started = Instant::now();
                    for _ in 0..N_SUSTAINED_RECORDS {
                        opentelemetry_span_with_attributes(tracer);
                    }
                    let n_dropped =
                        opentelemetry_peer.flush(n_exported_before, N_SUSTAINED_RECORDS);
                    elapsed += started.elapsed();
                    // The queue holds more than a run's spans, so none may be dropped here.
                    assert_eq!(
                        n_dropped, 0,
                        "opentelemetry dropped spans in the sustained run"
                    );
                }
                elapsed
            })
        },
    );
}

/// Rounds of the single-call timing loop; in each, every case records `N_LATENCY_CALLS` times.
const N_LATENCY_ROUNDS: usize = 200;

const N_LATENCY_CALLS: usize = 500;

/// The cases of the single-call timing loop.
#[derive(Clone, Copy, Debug)]
enum LatencyCase {
    /// Two reads of the clock around nothing: what timing one call adds to it.
    Timer,
    FourfoldEvent,
    /// The event's owned strings allocated before the call is timed: the `record` call alone.
    FourfoldRecord,
    FourfoldSpan,
    TracingEvent,
    OpenTelemetryEvent,
    /// The span's attributes built before the call is timed, as for `FourfoldRecord`.
    OpenTelemetrySpan,
}

impl LatencyCase {
    const ALL: [LatencyCase; 7] = [
        LatencyCase::Timer,
        LatencyCase::FourfoldEvent,
        LatencyCase::FourfoldRecord,
        LatencyCase::FourfoldSpan,
        LatencyCase::TracingEvent,
        LatencyCase::OpenTelemetryEvent,
        LatencyCase::OpenTelemetrySpan,
    ];

    fn name(self) -> &'static str {
        match self {
            LatencyCase::Timer => "timer empty",
            LatencyCase::FourfoldEvent => "fourfold event",
            LatencyCase::FourfoldRecord => "fourfold event built before",
            LatencyCase::FourfoldSpan => "fourfold span",
            LatencyCase::TracingEvent => "tracing event",
            LatencyCase::OpenTelemetryEvent => "opentelemetry event",
            LatencyCase::OpenTelemetrySpan => "opentelemetry event built before",
        }
    }
}

/// Times single calls, each with its own two clock reads, at the pace of an agent whose writer
/// keeps up: every case records `N_LATENCY_CALLS` times, then waits (untimed) until its writer has
/// written them all, and the next case goes; the case that goes first rotates each round. Prints
/// the p50, p99 and mean of the single calls of each case as `trace_latency` lines, and the same
/// for two clock reads around nothing, which every other case's figures include.
///
/// criterion's figures time a burst instead: a sample's records all handed over while the writer
/// catches up, so that most of them are built in new memory.
fn single_call_latency(
    dir: &Path,
    tracing_peer: &mut TracingPeer,
    opentelemetry_peer: &OpenTelemetryPeer,
) {
    let path = dir.join("latency.trace");
    let tracer = build_tracer(
        &path,
        Durability::default(),
        DEFAULT_QUEUE_CAPACITY,
        Overflow::Drop,
        Redactor::default_patterns(),
    );
    let run = tracer.start_run("agent", Some("task"));
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); LatencyCase::ALL.len()];
    let timed = |call: &mut dyn FnMut()| -> Vec<u64> {
        (0..N_LATENCY_CALLS)
            .map(|_| {
                let started = Instant::now();
                call();
                started.elapsed().as_nanos() as u64
            })
            .collect()
    };
    for round in 0..N_LATENCY_ROUNDS {
        for case_idx in 0..LatencyCase::ALL.len() {
            let case_idx = (case_idx + round) % LatencyCase::ALL.len();
            let times = match LatencyCase::ALL[case_idx] {
                LatencyCase::Timer => timed(&mut || black_box(())),
                LatencyCase::FourfoldEvent => {
                    let times = timed(&mut || run.record(action(black_box(ARGUMENTS_JSON))));
                    tracer.flush().expect("the trace file is written");
                    times
                }
                LatencyCase::FourfoldRecord => {
                    let mut events = (0..N_LATENCY_CALLS)
                        .map(|_| action(black_box(ARGUMENTS_JSON)))
                        .collect::<Vec<_>>()
                        .into_iter();
                    let times = timed(&mut || {
                        run.record(events.next().expect("an event a call"));
                    });
                    tracer.flush().expect("the trace file is written");
                    times
                }
                LatencyCase::FourfoldSpan => {
                    let times =
                        timed(&mut || run.span(black_box("bash"), SpanKind::ToolCall).end(None));
                    tracer.flush().expect("the trace file is written");
                    times
                }
                LatencyCase::TracingEvent => {
                    let times = timed(&mut || {
                        tracing::info!(
                            tool = "bash",
                            arguments = black_box(ARGUMENTS_JSON),
                            "action"
                        )
                    });
                    tracing_peer.wait_until_written(N_LATENCY_CALLS as u64);
                    times
                }
                LatencyCase::OpenTelemetryEvent => {
                    let n_exported_before = opentelemetry_peer.n_exported();
                    let times = timed(&mut || {
                        opentelemetry_span_with_attributes(&opentelemetry_peer.tracer)
                    });
                    let n_dropped =
                        opentelemetry_peer.flush(n_exported_before, N_LATENCY_CALLS as u64);
                    assert_eq!(
                        n_dropped, 0,
                        "opentelemetry dropped spans in the latency loop"
                    );
                    times
                }
                LatencyCase::OpenTelemetrySpan => {
                    let n_exported_before = opentelemetry_peer.n_exported();
                    let mut attributes = (0..N_LATENCY_CALLS)
                        .map(|_| opentelemetry_attributes())
                        .collect::<Vec<_>>()
                        .into_iter();
                    let times = timed(&mut || {
                        opentelemetry_span(
                            &opentelemetry_peer.tracer,
                            attributes.next().expect("attributes a call"),
                        )
                    });
                    let n_dropped =
                        opentelemetry_peer.flush(n_exported_before, N_LATENCY_CALLS as u64);
                    assert_eq!(
                        n_dropped, 0,
                        "opentelemetry dropped spans in the latency loop"
                    );
                    times
                }
            };
            samples[case_idx].extend(times);
        }
    }
    assert_eq!(
        tracer.n_dropped(),
        0,
        "fourfold dropped records in the latency loop"
    );
    run.end(None);
    tracer.close().expect("the trace file is written");
    remove_trace(&path);
    for (case, mut times) in LatencyCase::ALL.into_iter().zip(samples) {
        times.sort_unstable();
        let percentile = |fraction: f64| times[((times.len() - 1) as f64 * fraction) as usize];
        let mean = times.iter().sum::<u64>() as f64 / times.len() as f64;
        println!(
            "trace_latency {} p50_ns={} p99_ns={} mean_ns={mean:.0} calls={}",
            case.name(),
            percentile(0.50),
            percentile(0.99),
            times.len()
        );
    }
}

criterion_group!(benches, trace_record);
criterion_main!(benches);
