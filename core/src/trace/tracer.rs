//! The Tracer: runs, spans and events recorded from agent threads, written by a writer thread.
//!
//! Recording never waits on disk. The caller's thread masks secrets ([`Redactor`]), stamps the
//! event (sequence, time) and hands it to a bounded `crossbeam-channel`; one writer thread owns the
//! sinks. When the queue is full, [`Overflow`] decides: `Drop` (the default) drops the event and
//! counts it, and the writer records the count in the trace as a `Dropped` record, so the trace
//! says it is incomplete and by how much; gate events (policy decisions and approvals) are never
//! dropped, they wait for room. `Block` makes every event wait for room.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;

use super::err::TraceError;
use super::redact::Redactor;
use super::sink::Sink;
use super::{SpanKind, TraceRecord};
use crate::event::{random_id, Clock, Event, EventKind, Sequencer, SystemClock};
use crate::plugin::Plugin;

/// What recording does when the writer's queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the event and count it; the trace records the count. Gate events still wait.
    #[default]
    Drop,
    /// Wait for room: nothing is ever dropped, and a slow sink slows the agent.
    Block,
}

enum Command {
    // INVARIANT: boxed, because the bounded channel preallocates every slot: unboxed, 65,536 slots
    // of ~300 bytes would hold 20 MB whether or not anything is queued.
    Record(Box<TraceRecord>),
    Flush(Sender<Result<(), TraceError>>),
    Shutdown,
}

/// Configures a [`Tracer`].
pub struct TracerBuilder {
    sinks: Vec<Box<dyn Sink>>,
    capacity: usize,
    overflow: Overflow,
    redactor: Redactor,
    clock: Arc<dyn Clock>,
}

impl TracerBuilder {
    /// Adds a sink; records go to every sink, in the order added.
    pub fn sink(mut self, sink: impl Sink + 'static) -> TracerBuilder {
        self.sinks.push(Box::new(sink));
        self
    }

    /// The writer queue's capacity, in records (default 65,536).
    pub fn capacity(mut self, capacity: usize) -> TracerBuilder {
        self.capacity = capacity.max(1);
        self
    }

    /// What to do when the queue is full (default: [`Overflow::Drop`]).
    pub fn overflow(mut self, overflow: Overflow) -> TracerBuilder {
        self.overflow = overflow;
        self
    }

    /// How secrets are masked (default: API keys, bearer tokens, e-mail addresses and
    /// `password=`-style values).
    pub fn redactor(mut self, redactor: Redactor) -> TracerBuilder {
        self.redactor = redactor;
        self
    }

    /// The clock for timestamps (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> TracerBuilder {
        self.clock = clock;
        self
    }

    /// Starts the writer thread.
    pub fn build(self) -> Result<Tracer, TraceError> {
        let (sender, receiver) = bounded(self.capacity);
        let n_dropped_unrecorded = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            sinks: self.sinks,
            receiver,
            n_dropped_unrecorded: Arc::clone(&n_dropped_unrecorded),
            clock: Arc::clone(&self.clock),
            failure: None,
        };
        let handle = std::thread::Builder::new()
            .name("fourfold-trace-writer".to_string())
            .spawn(move || writer.run())
            .map_err(|error| TraceError::Sink {
                reason: format!("cannot start the writer thread: {error}"),
            })?;
        Ok(Tracer {
            shared: Arc::new(Shared {
                sender,
                overflow: self.overflow,
                redactor: self.redactor,
                clock: self.clock,
                sequencer: Sequencer::new(),
                next_span_id: AtomicU64::new(1),
                n_dropped_unrecorded,
                n_dropped: AtomicU64::new(0),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }
}

struct Shared {
    sender: Sender<Command>,
    overflow: Overflow,
    redactor: Redactor,
    clock: Arc<dyn Clock>,
    sequencer: Sequencer,
    next_span_id: AtomicU64,
    n_dropped_unrecorded: Arc<AtomicU64>,
    n_dropped: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    fn shutdown(&self) {
        if let Some(handle) = self.writer.lock().take() {
            let _ = self.sender.send(Command::Shutdown);
            let _ = handle.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Records what agents decide, do, spend and are allowed. Cheap to clone; clones share one writer.
#[derive(Clone)]
pub struct Tracer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("overflow", &self.shared.overflow)
            .field("n_dropped", &self.n_dropped())
            .finish_non_exhaustive()
    }
}

impl Tracer {
    /// Starts configuring a tracer with no sink.
    pub fn builder() -> TracerBuilder {
        TracerBuilder {
            sinks: Vec::new(),
            capacity: 65_536,
            overflow: Overflow::default(),
            redactor: Redactor::default_patterns(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Starts a run of `agent` on `task`: a root span that events and child spans hang from.
    pub fn start_run(&self, agent: &str, task: Option<&str>) -> Run {
        let run_id = random_id("run", self.shared.clock.now_ns());
        let root = self.start_span(&run_id, agent, task, None, agent, SpanKind::Run);
        Run { root }
    }

    fn start_span(
        &self,
        run_id: &str,
        agent: &str,
        task: Option<&str>,
        parent_span_id: Option<u64>,
        name: &str,
        kind: SpanKind,
    ) -> Span {
        let span_id = self.shared.next_span_id.fetch_add(1, Ordering::Relaxed);
        self.send(
            TraceRecord::SpanStart {
                run_id: run_id.to_string(),
                agent_id: agent.to_string(),
                task_id: task.map(str::to_string),
                span_id,
                parent_span_id,
                name: self.shared.redactor.redact(name).into_owned(),
                kind,
                at_ns: self.shared.clock.now_ns(),
            },
            false,
        );
        Span {
            tracer: self.clone(),
            run_id: run_id.to_string(),
            agent: agent.to_string(),
            task: task.map(str::to_string),
            span_id,
            parent_span_id,
            ended: false,
        }
    }

    /// Records `event` as given, after masking secrets and giving it the next sequence number of its
    /// run and, if it has none, the current time.
    pub fn record(&self, mut event: Event) {
        self.shared.redactor.redact_event(&mut event);
        event.seq = self.shared.sequencer.next(&event.run_id);
        if event.timestamp_ns == 0 {
            event.timestamp_ns = self.shared.clock.now_ns();
        }
        let is_gate = matches!(event.kind, EventKind::Gate(_));
        self.send(TraceRecord::Event(event), is_gate);
    }

    fn send(&self, record: TraceRecord, must_not_drop: bool) {
        let command = Command::Record(Box::new(record));
        let sent = match self.shared.overflow {
            Overflow::Block => self.shared.sender.send(command).is_ok(),
            Overflow::Drop if must_not_drop => self.shared.sender.send(command).is_ok(),
            Overflow::Drop => match self.shared.sender.try_send(command) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => false,
                Err(TrySendError::Disconnected(_)) => false,
            },
        };
        if !sent {
            self.shared.n_dropped.fetch_add(1, Ordering::Relaxed);
            self.shared
                .n_dropped_unrecorded
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every record handed over before this call is written and flushed by every
    /// sink. Returns the first sink failure since the previous flush, if any.
    pub fn flush(&self) -> Result<(), TraceError> {
        let (reply_sender, reply) = bounded(1);
        self.shared
            .sender
            .send(Command::Flush(reply_sender))
            .map_err(|_| TraceError::Closed)?;
        reply.recv().map_err(|_| TraceError::Closed)?
    }

    /// How many events were dropped because the queue was full, since the tracer started.
    pub fn n_dropped(&self) -> u64 {
        self.shared.n_dropped.load(Ordering::Relaxed)
    }

    /// Flushes and stops the writer thread. Records handed over later are counted as dropped.
    pub fn close(&self) -> Result<(), TraceError> {
        let flushed = self.flush();
        self.shared.shutdown();
        flushed
    }
}

impl Plugin for Tracer {
    fn name(&self) -> &str {
        "tracer"
    }

    /// Records every event the controls emit, such as each policy decision and approval.
    fn on_event(&self, event: &Event) {
        self.record(event.clone());
    }
}

/// A run of one agent: the root span of its events and spans. Ends when dropped.
#[derive(Debug)]
pub struct Run {
    root: Span,
}

impl Run {
    /// The run's id.
    pub fn id(&self) -> &str {
        &self.root.run_id
    }

    /// The run's root span.
    pub fn root(&self) -> &Span {
        &self.root
    }

    /// Starts a span directly under the run.
    pub fn span(&self, name: &str, kind: SpanKind) -> Span {
        self.root.child(name, kind)
    }

    /// Records an event of the run itself (not of a span under it).
    pub fn record(&self, kind: EventKind) {
        self.root.record(kind);
    }

    /// Ends the run, with the error it failed with, if any.
    pub fn end(self, error: Option<&str>) {
        self.root.end(error);
    }
}

/// A span: a step, a model call or a tool call, possibly nested. Ends when dropped.
#[derive(Debug)]
pub struct Span {
    tracer: Tracer,
    run_id: String,
    agent: String,
    task: Option<String>,
    span_id: u64,
    parent_span_id: Option<u64>,
    ended: bool,
}

impl Span {
    /// The span's id.
    pub fn id(&self) -> u64 {
        self.span_id
    }

    /// Starts a span nested in this one.
    pub fn child(&self, name: &str, kind: SpanKind) -> Span {
        self.tracer.start_span(
            &self.run_id,
            &self.agent,
            self.task.as_deref(),
            Some(self.span_id),
            name,
            kind,
        )
    }

    /// Records an event in this span.
    pub fn record(&self, kind: EventKind) {
        self.tracer.record(Event {
            run_id: self.run_id.clone(),
            agent_id: self.agent.clone(),
            task_id: self.task.clone(),
            seq: 0,
            timestamp_ns: 0,
            span_id: Some(self.span_id),
            parent_span_id: self.parent_span_id,
            kind,
        });
    }

    /// Ends the span, with the error it failed with, if any.
    pub fn end(mut self, error: Option<&str>) {
        self.finish(error);
    }

    fn finish(&mut self, error: Option<&str>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let shared = &self.tracer.shared;
        self.tracer.send(
            TraceRecord::SpanEnd {
                run_id: self.run_id.clone(),
                span_id: self.span_id,
                at_ns: shared.clock.now_ns(),
                error: error.map(|error| shared.redactor.redact(error).into_owned()),
            },
            false,
        );
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.finish(None);
    }
}

/// The writer thread: takes records off the queue and hands them to every sink.
struct Writer {
    sinks: Vec<Box<dyn Sink>>,
    receiver: Receiver<Command>,
    n_dropped_unrecorded: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
    failure: Option<String>,
}

impl Writer {
    fn run(mut self) {
        loop {
            match self.receiver.recv_timeout(Duration::from_millis(20)) {
                Ok(Command::Record(record)) => {
                    self.record_drops();
                    self.write(&record);
                }
                Ok(Command::Flush(reply)) => {
                    self.record_drops();
                    let _ = reply.send(self.flush());
                }
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.record_drops();
                    let _ = self.flush();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.record_drops();
                    for sink in &mut self.sinks {
                        if let Err(error) = sink.tick() {
                            self.failure.get_or_insert(error.to_string());
                        }
                    }
                }
            }
        }
    }

    /// Writes a `Dropped` record for events dropped since the last one.
    fn record_drops(&mut self) {
        let n_events = self.n_dropped_unrecorded.swap(0, Ordering::Relaxed);
        if n_events > 0 {
            let at_ns = self.clock.now_ns();
            self.write(&TraceRecord::Dropped { n_events, at_ns });
        }
    }

    fn write(&mut self, record: &TraceRecord) {
        for sink in &mut self.sinks {
            if let Err(error) = sink.write(record) {
                self.failure.get_or_insert(error.to_string());
            }
        }
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        for sink in &mut self.sinks {
            if let Err(error) = sink.flush() {
                self.failure.get_or_insert(error.to_string());
            }
        }
        match self.failure.take() {
            Some(reason) => Err(TraceError::Sink { reason }),
            None => Ok(()),
        }
    }
}
