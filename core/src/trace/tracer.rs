//! The Tracer: runs, spans and events recorded from agent threads, written by a writer thread.
//!
//! Recording never waits on disk. The caller's thread masks secrets ([`Redactor`]), stamps the
//! event (sequence, time) and hands it to a bounded `crossbeam-channel`; one writer thread owns the
//! sinks. When the queue is full, [`Overflow`] decides: `Drop` (the default) drops the event and
//! counts it, and the writer records the count in the trace as a `Dropped` record, so the trace
//! says it is incomplete and by how much; gate events (policy decisions and approvals) are never
//! dropped, they wait for room. `Block` makes every event wait for room.
//!
//! The writer takes records off the queue in batches of what it finds there, up to 8,192, and hands
//! each batch to every sink at once (the trace file sink encodes a batch into one buffer and writes
//! it with one call, and checks its [`Durability`](super::Durability) once per batch). Between
//! batches it sleeps for up to a millisecond, so that an agent recording fast does not pay for
//! waking it on every record; a flush, a full queue or a long quiet spell (after which a record
//! wakes it) cut that short. A record can so wait in the queue for about a millisecond before any
//! sink sees it.
//!
//! Once written, each record goes back to the recording threads in the box it came in, strings
//! and all, 64 records at a time: the thread that takes the box frees the record's strings when it
//! puts its next record there, so that a string is freed on a recording thread, where it was
//! allocated, and never on the writer's (see `recycle.rs`).
//!
//! The records of a [`Run`]'s spans carry the run's ids without copying them on the caller's
//! thread: the writer keeps the ids of every run that has spans left, and fills them in. A run
//! numbers its events with a counter of its own, which [`Tracer::record`] shares for events that
//! name the run. Starting a run, and the end of its last span, are never dropped from a full queue:
//! they wait for room, as gate events do.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::err::TraceError;
use super::recycle::{string_capacity, MAX_REUSED_BYTES};
use super::redact::Redactor;
use super::sink::Sink;
use super::{SpanKind, TraceRecord};
use crate::event::{random_id, ActionRef, Clock, Event, EventKind, FastClock, Sequencer};
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

/// The most records the writer hands to its sinks at once.
const MAX_BATCH_LEN: usize = 8_192;

/// How long the writer sleeps when it finds the queue empty, before it looks again.
const IDLE_POLL: Duration = Duration::from_millis(1);

/// How many empty looks in a row before the writer waits to be woken instead (about 10 ms).
const N_IDLE_POLLS: u32 = 10;

/// How often a writer that waits to be woken wakes anyway, so sinks can sync on time.
const TICK: Duration = Duration::from_millis(20);

/// How many emptied record boxes the writer hands back to recording threads at once.
const SPARE_BATCH_LEN: usize = 64;

/// How many batches of spare boxes wait for a recording thread to take them, at most: as many
/// as a full batch of records fills, so that a thread recording fast gets back as many boxes as it
/// sends while the writer keeps up.
const N_SPARE_BATCHES: usize = MAX_BATCH_LEN / SPARE_BATCH_LEN;

/// Written records in their boxes, for recording threads to reuse. The boxes are what is reused,
/// so they stay boxed inside the `Vec`.
#[allow(clippy::vec_box)]
type SpareBoxes = Vec<Box<TraceRecord>>;

thread_local! {
    /// Written records in their boxes, handed back by a writer thread for this thread's next
    /// records.
    ///
    /// A box or a string allocated on a recording thread and freed on the writer's makes glibc's
    /// allocator take the recording thread's arena lock on both threads, for every record, and
    /// they contend for it; and the recording thread's own allocations, never served from its
    /// thread cache, take the slow path. Handing the written records back, 64 at a time, lets
    /// recording reuse the box and free the record's strings itself, into its thread cache, from
    /// which the strings of its next records come. A thread that records keeps at most 64 records
    /// (under 60 KB, see `recycle.rs`) for its lifetime.
    static SPARE_BOXES: RefCell<SpareBoxes> = const { RefCell::new(Vec::new()) };
}

enum Command {
    // INVARIANT: boxed, because the bounded channel preallocates every slot: unboxed, 65,536 slots
    // of ~300 bytes would hold 20 MB whether or not anything is queued.
    Record(Box<TraceRecord>),
    /// A run began: the writer keeps its ids, under its key, until `ForgetRun`.
    StartRun(u64, Box<RunIds>),
    /// A record of a run's span, built without the run's ids: the writer fills them in from the
    /// run with this key, so that recording copies none of them.
    InRun(u64, Box<TraceRecord>),
    /// The run's last span is gone: nothing more will name its key.
    ForgetRun(u64),
    Flush(Sender<Result<(), TraceError>>),
    Shutdown,
}

/// What every record of a run names, kept by the writer thread.
#[derive(Debug)]
struct RunIds {
    run_id: String,
    agent_id: String,
    task_id: Option<String>,
}

/// What the spans of a run share on the callers' side. When the last of them is dropped, it tells
/// the writer to forget the run's ids.
#[derive(Debug)]
struct RunShared {
    tracer: Tracer,
    /// The run's key in the writer's table of runs, unique in the tracer.
    key: u64,
    run_id: String,
    /// The last sequence number of the run, shared with the tracer's [`Sequencer`].
    seq: Arc<AtomicU64>,
}

impl Drop for RunShared {
    fn drop(&mut self) {
        self.tracer
            .shared
            .send_waiting(Command::ForgetRun(self.key));
    }
}

impl RunIds {
    /// Puts the run's ids into a record built without them, in strings from `strings`.
    fn fill_in(&self, record: &mut TraceRecord, strings: &mut StringPool) {
        match record {
            TraceRecord::Event(event) => {
                event.run_id = strings.copy(&self.run_id);
                event.agent_id = strings.copy(&self.agent_id);
                event.task_id = self.task_id.as_deref().map(|task| strings.copy(task));
            }
            TraceRecord::SpanStart {
                run_id,
                agent_id,
                task_id,
                ..
            } => {
                *run_id = strings.copy(&self.run_id);
                *agent_id = strings.copy(&self.agent_id);
                *task_id = self.task_id.as_deref().map(|task| strings.copy(task));
            }
            TraceRecord::SpanEnd { run_id, .. } => *run_id = strings.copy(&self.run_id),
            TraceRecord::Dropped { .. } => {}
        }
    }
}

/// The writer's spare strings for the run ids it fills in: taken back from each written batch, so
/// that filling in ids allocates nothing in the long run.
#[derive(Default)]
struct StringPool {
    strings: Vec<String>,
}

impl StringPool {
    /// At most this many spare strings are kept: the ids of three batches.
    const MAX_LEN: usize = 3 * MAX_BATCH_LEN;

    fn copy(&mut self, text: &str) -> String {
        let mut string = self.strings.pop().unwrap_or_default();
        string.clear();
        string.push_str(text);
        string
    }

    fn keep(&mut self, string: String) {
        if self.strings.len() < StringPool::MAX_LEN && string.capacity() > 0 {
            self.strings.push(string);
        }
    }

    /// Takes back the id strings of a written record, which the writer filled in, leaving them
    /// empty.
    fn keep_ids(&mut self, record: &mut TraceRecord) {
        match record {
            TraceRecord::Event(Event {
                run_id,
                agent_id,
                task_id,
                ..
            })
            | TraceRecord::SpanStart {
                run_id,
                agent_id,
                task_id,
                ..
            } => {
                self.keep(std::mem::take(run_id));
                self.keep(std::mem::take(agent_id));
                if let Some(task_id) = task_id.take() {
                    self.keep(task_id);
                }
            }
            TraceRecord::SpanEnd { run_id, .. } => self.keep(std::mem::take(run_id)),
            TraceRecord::Dropped { .. } => {}
        }
    }
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

    /// The clock for timestamps (default: [`FastClock`], the system clock read
    /// through the time-stamp counter).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> TracerBuilder {
        self.clock = clock;
        self
    }

    /// Starts the writer thread.
    pub fn build(self) -> Result<Tracer, TraceError> {
        let (sender, receiver) = bounded(self.capacity);
        let (spare_sender, spares) = bounded(N_SPARE_BATCHES);
        let n_dropped_unrecorded = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            sinks: self.sinks,
            receiver,
            n_dropped_unrecorded: Arc::clone(&n_dropped_unrecorded),
            clock: Arc::clone(&self.clock),
            failure: None,
            batch: Vec::new(),
            batch_boxes: Vec::new(),
            runs: FxHashMap::default(),
            strings: StringPool::default(),
            spares: Vec::with_capacity(SPARE_BATCH_LEN),
            spare_sender,
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
                next_run_key: AtomicU64::new(0),
                n_dropped_unrecorded,
                n_dropped: AtomicU64::new(0),
                writer_thread: handle.thread().clone(),
                spares,
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
    next_run_key: AtomicU64,
    n_dropped_unrecorded: Arc<AtomicU64>,
    n_dropped: AtomicU64,
    writer_thread: Thread,
    /// Batches of record boxes the writer has emptied, for recording threads to reuse.
    spares: Receiver<SpareBoxes>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// Sends a command that must not be dropped, waking the writer if the queue is full, and
    /// returns whether the writer is still there to take it.
    fn send_waiting(&self, command: Command) -> bool {
        match self.sender.try_send(command) {
            Ok(()) => true,
            Err(TrySendError::Full(command)) => {
                self.writer_thread.unpark();
                self.sender.send(command).is_ok()
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Sends a command that asks for an answer, and wakes the writer to give it at once.
    fn send_urgent(&self, command: Command) -> bool {
        let sent = self.send_waiting(command);
        self.writer_thread.unpark();
        sent
    }

    fn shutdown(&self) {
        if let Some(handle) = self.writer.lock().take() {
            self.send_urgent(Command::Shutdown);
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
            clock: Arc::new(FastClock::new()),
        }
    }

    /// Starts a run of `agent` on `task`: a root span that events and child spans hang from.
    pub fn start_run(&self, agent: &str, task: Option<&str>) -> Run {
        let run_id = random_id("run", self.shared.clock.now_ns());
        let key = self.shared.next_run_key.fetch_add(1, Ordering::Relaxed);
        let ids = RunIds {
            run_id: run_id.clone(),
            agent_id: agent.to_string(),
            task_id: task.map(str::to_string),
        };
        // Never dropped, even when the queue is full: the run's records need its ids.
        self.shared
            .send_waiting(Command::StartRun(key, Box::new(ids)));
        let run = Arc::new(RunShared {
            tracer: self.clone(),
            key,
            seq: self.shared.sequencer.run_counter(&run_id),
            run_id,
        });
        let root = self.start_span(run, None, agent, SpanKind::Run);
        Run { root }
    }

    fn start_span(
        &self,
        run: Arc<RunShared>,
        parent_span_id: Option<u64>,
        name: &str,
        kind: SpanKind,
    ) -> Span {
        let span_id = self.shared.next_span_id.fetch_add(1, Ordering::Relaxed);
        self.send_in_run(
            &run,
            TraceRecord::SpanStart {
                run_id: String::new(),
                agent_id: String::new(),
                task_id: None,
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
            run,
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
        self.send(
            Command::Record(self.boxed(TraceRecord::Event(event))),
            is_gate,
        );
    }

    /// Sends a record of a run's span, built with empty ids, for the writer to fill them in.
    fn send_in_run(&self, run: &RunShared, record: TraceRecord, must_not_drop: bool) {
        self.send(Command::InRun(run.key, self.boxed(record)), must_not_drop);
    }

    /// Boxes `record` in the box of a written record, if this thread holds one or can take a
    /// batch of them, and in a new box otherwise. The written record is freed here, on a
    /// recording thread, where its strings were allocated.
    fn boxed(&self, record: TraceRecord) -> Box<TraceRecord> {
        match self.spare_box() {
            Some(mut spare) => {
                *spare = record;
                spare
            }
            None => Box::new(record),
        }
    }

    /// Boxes an event of a run's span, built with empty ids, as [`Tracer::boxed`] does. A spare
    /// that held an event gets the new one's fields in place: no whole record is built on the
    /// stack and then copied into the box.
    fn boxed_span_event(&self, fields: SpanEventFields, kind: EventKind) -> Box<TraceRecord> {
        let SpanEventFields {
            seq,
            timestamp_ns,
            span_id,
            parent_span_id,
        } = fields;
        match self.spare_box() {
            Some(mut spare) => {
                if let TraceRecord::Event(event) = &mut *spare {
                    // A record recorded with its ids (`Tracer::record`) keeps them when written;
                    // a span's record must go with none, for the writer to fill in.
                    if event.run_id.capacity() != 0 {
                        event.run_id = String::new();
                    }
                    if event.agent_id.capacity() != 0 {
                        event.agent_id = String::new();
                    }
                    event.task_id = None;
                    event.seq = seq;
                    event.timestamp_ns = timestamp_ns;
                    event.span_id = Some(span_id);
                    event.parent_span_id = parent_span_id;
                    event.kind = kind;
                } else {
                    *spare = TraceRecord::Event(fields.into_event(kind));
                }
                spare
            }
            None => Box::new(TraceRecord::Event(fields.into_event(kind))),
        }
    }

    /// A box of a written record that this thread holds, or takes from a batch the writer
    /// handed back, if any.
    fn spare_box(&self) -> Option<Box<TraceRecord>> {
        SPARE_BOXES
            .try_with(|spares| {
                let mut spares = spares.try_borrow_mut().ok()?;
                if spares.is_empty() {
                    *spares = self.shared.spares.try_recv().ok()?;
                }
                spares.pop()
            })
            .ok()
            .flatten()
    }

    fn send(&self, command: Command, must_not_drop: bool) {
        let shared = &self.shared;
        let sent = match shared.overflow {
            Overflow::Drop if !must_not_drop => match shared.sender.try_send(command) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    shared.writer_thread.unpark();
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            },
            Overflow::Drop | Overflow::Block => shared.send_waiting(command),
        };
        if !sent {
            shared.n_dropped.fetch_add(1, Ordering::Relaxed);
            shared.n_dropped_unrecorded.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every record handed over before this call is written and flushed by every
    /// sink. Returns the first sink failure since the previous flush, if any.
    pub fn flush(&self) -> Result<(), TraceError> {
        let (reply_sender, reply) = bounded(1);
        if !self.shared.send_urgent(Command::Flush(reply_sender)) {
            return Err(TraceError::Closed);
        }
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

/// The fields of a span's event besides its kind; its ids are the writer's to fill in.
#[derive(Clone, Copy)]
struct SpanEventFields {
    seq: u64,
    timestamp_ns: u64,
    span_id: u64,
    parent_span_id: Option<u64>,
}

impl SpanEventFields {
    fn into_event(self, kind: EventKind) -> Event {
        Event {
            run_id: String::new(),
            agent_id: String::new(),
            task_id: None,
            seq: self.seq,
            timestamp_ns: self.timestamp_ns,
            span_id: Some(self.span_id),
            parent_span_id: self.parent_span_id,
            kind,
        }
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
        &self.root.run.run_id
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

    /// Records an action of the run itself from borrowed fields (see [`Span::record_action`]).
    pub fn record_action(&self, action: ActionRef<'_>) {
        self.root.record_action(action);
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
    run: Arc<RunShared>,
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
        self.tracer
            .start_span(Arc::clone(&self.run), Some(self.span_id), name, kind)
    }

    /// Records an event in this span: masks its secrets, and gives it the run's next sequence
    /// number and the current time.
    pub fn record(&self, mut kind: EventKind) {
        let shared = &self.tracer.shared;
        shared.redactor.redact_kind(&mut kind);
        let is_gate = matches!(kind, EventKind::Gate(_));
        let fields = SpanEventFields {
            seq: self.run.seq.fetch_add(1, Ordering::Relaxed) + 1,
            timestamp_ns: shared.clock.now_ns(),
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
        };
        let boxed = self.tracer.boxed_span_event(fields, kind);
        self.tracer
            .send(Command::InRun(self.run.key, boxed), is_gate);
    }

    /// Records an action in this span from borrowed fields: the same record as [`Span::record`]
    /// of an [`EventKind::Action`], for callers that hold the tool and its arguments as `&str`.
    ///
    /// It copies the fields into a new event. Copying them into the strings of a written record
    /// that the writer hands back, to allocate nothing, was tried: fewer instructions, but no
    /// faster on the caller's thread (`docs/benchmarks.md`, "Trace recording").
    pub fn record_action(&self, action: ActionRef<'_>) {
        self.record(EventKind::Action(action.to_event()));
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
        self.tracer.send_in_run(
            &self.run,
            TraceRecord::SpanEnd {
                run_id: String::new(),
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
    /// The records taken off the queue and not yet handed to the sinks.
    batch: Vec<TraceRecord>,
    /// The boxes the batch's records came in, in the same order, and whether the writer filled in
    /// the record's ids; the `Dropped` record at a batch's end has none.
    #[allow(clippy::vec_box)]
    batch_boxes: Vec<(Box<TraceRecord>, bool)>,
    /// The ids of the runs that have spans left, by key.
    runs: FxHashMap<u64, RunIds>,
    strings: StringPool,
    /// Emptied record boxes, until there are enough to hand back.
    spares: SpareBoxes,
    spare_sender: Sender<SpareBoxes>,
}

impl Writer {
    fn run(mut self) {
        let mut n_idle_polls = 0;
        loop {
            let command = match self.receiver.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Disconnected) => return self.stop(),
                Err(TryRecvError::Empty) => {
                    self.write_batch();
                    self.tick();
                    if n_idle_polls < N_IDLE_POLLS {
                        // Sleep without asking to be woken, so recording costs no wake-up.
                        n_idle_polls += 1;
                        std::thread::park_timeout(IDLE_POLL);
                        continue;
                    }
                    match self.receiver.recv_timeout(TICK) {
                        Ok(command) => command,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return self.stop(),
                    }
                }
            };
            n_idle_polls = 0;
            if !self.take(command) {
                return;
            }
            while self.batch.len() < MAX_BATCH_LEN {
                match self.receiver.try_recv() {
                    Ok(command) => {
                        if !self.take(command) {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            self.write_batch();
        }
    }

    /// Takes the record out of its box, leaving a placeholder without heap data.
    fn unbox(&self, boxed: &mut TraceRecord) -> TraceRecord {
        std::mem::replace(
            boxed,
            TraceRecord::Dropped {
                n_events: 0,
                at_ns: 0,
            },
        )
    }

    /// Keeps a written record in its box, and hands a batch of them back to recording threads
    /// when it has one; a batch that finds no room is freed. The strings of a record that holds
    /// more than `MAX_REUSED_BYTES` are freed, so that the records kept for reuse stay small.
    fn recycle(&mut self, mut boxed: Box<TraceRecord>) {
        if string_capacity(&mut boxed) > MAX_REUSED_BYTES {
            *boxed = TraceRecord::Dropped {
                n_events: 0,
                at_ns: 0,
            };
        }
        self.spares.push(boxed);
        if self.spares.len() >= SPARE_BATCH_LEN {
            let spares = std::mem::replace(&mut self.spares, Vec::with_capacity(SPARE_BATCH_LEN));
            let _ = self.spare_sender.try_send(spares);
        }
    }

    /// Acts on one command; returns false once the writer has stopped.
    fn take(&mut self, command: Command) -> bool {
        match command {
            Command::Record(mut record) => {
                self.batch.push(self.unbox(&mut record));
                self.batch_boxes.push((record, false));
            }
            Command::StartRun(key, ids) => {
                self.runs.insert(key, *ids);
            }
            Command::InRun(key, mut boxed) => {
                let mut record = self.unbox(&mut boxed);
                if let Some(ids) = self.runs.get(&key) {
                    ids.fill_in(&mut record, &mut self.strings);
                }
                self.batch.push(record);
                self.batch_boxes.push((boxed, true));
            }
            Command::ForgetRun(key) => {
                self.runs.remove(&key);
            }
            Command::Flush(reply) => {
                self.write_batch();
                let _ = reply.send(self.flush());
            }
            Command::Shutdown => {
                self.stop();
                return false;
            }
        }
        true
    }

    fn stop(&mut self) {
        self.write_batch();
        let _ = self.flush();
    }

    /// Hands the batch to every sink, after a `Dropped` record for events dropped since the last
    /// one, if any.
    fn write_batch(&mut self) {
        if self.n_dropped_unrecorded.load(Ordering::Relaxed) > 0 {
            let n_events = self.n_dropped_unrecorded.swap(0, Ordering::Relaxed);
            let at_ns = self.clock.now_ns();
            self.batch.push(TraceRecord::Dropped { n_events, at_ns });
        }
        if self.batch.is_empty() {
            return;
        }
        for sink in &mut self.sinks {
            if let Err(error) = sink.write_batch(&self.batch) {
                self.failure.get_or_insert(error.to_string());
            }
        }
        // Each written record goes back into its box, without the ids the writer filled in,
        // for a recording thread to reuse.
        let mut batch = std::mem::take(&mut self.batch);
        let mut batch_boxes = std::mem::take(&mut self.batch_boxes);
        let mut boxes = batch_boxes.drain(..);
        for mut record in batch.drain(..) {
            let Some((mut boxed, has_filled_in_ids)) = boxes.next() else {
                continue;
            };
            if has_filled_in_ids {
                self.strings.keep_ids(&mut record);
            }
            *boxed = record;
            self.recycle(boxed);
        }
        drop(boxes);
        self.batch = batch;
        self.batch_boxes = batch_boxes;
    }

    fn tick(&mut self) {
        for sink in &mut self.sinks {
            if let Err(error) = sink.tick() {
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
