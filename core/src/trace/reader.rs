//! Reading a trace back: streaming records, queries, and each run's tree of spans.
//!
//! [`TraceReader`] reads a trace file frame by frame (it never holds the whole file), checking each
//! frame's checksum and place in the hash chain as it goes, and stops at a torn tail. [`Query`]
//! selects events by run, agent, task, kind, gate outcome and time range. [`Runs`] rebuilds each
//! run's tree of spans, with every event in the span it happened in.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::err::{FrameError, FrameProblem, TraceError};
use super::file::{
    checksum, decode_record, Format, FrameHash, TornTail, TraceHead, FRAME_HEADER_LEN, HEADER,
    MAX_PAYLOAD_LEN,
};
use super::{SpanKind, TraceRecord};
use crate::event::{Event, EventKind, GateEventOutcome};

/// Reads a trace file one frame at a time, checking checksums and the hash chain.
///
/// Iterating yields each record with the byte offset of its frame. Damage ends the iteration with
/// an error naming the frame and its offset; a partial last frame (a write cut short by a crash)
/// ends it quietly and is reported by [`TraceReader::torn_tail`].
pub struct TraceReader<R = BufReader<File>> {
    path: PathBuf,
    input: R,
    format: Format,
    at: u64,
    head: TraceHead,
    torn_tail: Option<TornTail>,
    finished: bool,
    payload: Vec<u8>,
}

impl TraceReader<BufReader<File>> {
    /// Opens the trace file at `path` and checks its header.
    pub fn open(path: impl AsRef<Path>) -> Result<TraceReader<BufReader<File>>, TraceError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|error| TraceError::io(path, error))?;
        TraceReader::new(path, BufReader::with_capacity(1 << 16, file))
    }
}

impl<R: Read> TraceReader<R> {
    /// Reads a trace from `input`; `path` names it in errors. Checks the header.
    pub fn new(path: impl Into<PathBuf>, mut input: R) -> Result<TraceReader<R>, TraceError> {
        let path = path.into();
        let mut header = [0u8; HEADER.len()];
        let n_read =
            read_fully(&mut input, &mut header).map_err(|error| TraceError::io(&path, error))?;
        let format = Format::of_header(&path, &header[..n_read])?;
        Ok(TraceReader {
            path,
            input,
            format,
            at: HEADER.len() as u64,
            head: TraceHead::EMPTY,
            torn_tail: None,
            finished: false,
            payload: Vec::new(),
        })
    }

    /// The head after the frames read so far: their count and the last one's hash.
    pub fn head(&self) -> TraceHead {
        self.head
    }

    /// The partial frame at the end of the file, once the reader has reached it.
    pub fn torn_tail(&self) -> Option<TornTail> {
        self.torn_tail
    }

    /// The next record and its frame's offset, `None` at the end (or at a torn tail).
    pub fn next_record(&mut self) -> Result<Option<(u64, TraceRecord)>, TraceError> {
        if self.finished {
            return Ok(None);
        }
        let result = self.read_frame();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result
    }

    fn read_frame(&mut self) -> Result<Option<(u64, TraceRecord)>, TraceError> {
        let offset = self.at;
        let frame_idx = self.head.n_frames;
        let error = |path: &Path, problem, detail| {
            TraceError::from(FrameError::new(path, offset, frame_idx, problem, detail))
        };
        let mut header = [0u8; FRAME_HEADER_LEN];
        let n_read = read_fully(&mut self.input, &mut header)
            .map_err(|error| TraceError::io(&self.path, error))?;
        if n_read == 0 {
            return Ok(None);
        }
        if n_read < FRAME_HEADER_LEN {
            self.torn_tail = Some(TornTail {
                offset,
                n_bytes: n_read as u64,
            });
            return Ok(None);
        }
        let payload_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if payload_len > MAX_PAYLOAD_LEN {
            let detail = Some(format!("{payload_len} bytes"));
            return Err(error(&self.path, FrameProblem::BadLength, detail));
        }
        self.payload.resize(payload_len as usize, 0);
        let n_payload = read_fully(&mut self.input, &mut self.payload)
            .map_err(|error| TraceError::io(&self.path, error))?;
        if n_payload < self.payload.len() {
            self.torn_tail = Some(TornTail {
                offset,
                n_bytes: (FRAME_HEADER_LEN + n_payload) as u64,
            });
            return Ok(None);
        }
        let stored_checksum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut prev_hash: FrameHash = [0; 32];
        prev_hash.copy_from_slice(&header[8..FRAME_HEADER_LEN]);
        if checksum(&prev_hash, &self.payload) != stored_checksum {
            return Err(error(&self.path, FrameProblem::Checksum, None));
        }
        if prev_hash != self.head.last_hash {
            return Err(error(&self.path, FrameProblem::ChainBroken, None));
        }
        let record = decode_record(&self.payload, self.format)
            .map_err(|detail| error(&self.path, FrameProblem::Undecodable, Some(detail)))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&header);
        hasher.update(&self.payload);
        self.head = TraceHead {
            n_frames: frame_idx + 1,
            last_hash: *hasher.finalize().as_bytes(),
        };
        self.at += (FRAME_HEADER_LEN + self.payload.len()) as u64;
        Ok(Some((offset, record)))
    }

    /// The events that `query` selects, in file order.
    pub fn events(self, query: Query) -> impl Iterator<Item = Result<Event, TraceError>> {
        self.filter_map(move |item| match item {
            Ok((_, TraceRecord::Event(event))) if query.matches(&event) => Some(Ok(event)),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        })
    }

    /// Reads the rest of the trace and rebuilds every run's tree of spans.
    pub fn runs(mut self) -> Result<Runs, TraceError> {
        let mut builder = RunsBuilder::new();
        while let Some((_, record)) = self.next_record()? {
            builder.push(record);
        }
        let mut runs = builder.finish();
        runs.torn_tail = self.torn_tail;
        Ok(runs)
    }
}

impl<R: Read> Iterator for TraceReader<R> {
    type Item = Result<(u64, TraceRecord), TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

impl<R> fmt::Debug for TraceReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .field("at", &self.at)
            .field("head", &self.head)
            .field("torn_tail", &self.torn_tail)
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_fully(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n_read = 0;
    while n_read < buf.len() {
        match input.read(&mut buf[n_read..]) {
            Ok(0) => break,
            Ok(n) => n_read += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(n_read)
}

/// The five kinds of event, without their contents, for queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKindName {
    /// [`EventKind::Decision`].
    Decision,
    /// [`EventKind::Action`].
    Action,
    /// [`EventKind::Gate`].
    Gate,
    /// [`EventKind::Cost`].
    Cost,
    /// [`EventKind::Context`].
    Context,
}

impl EventKindName {
    /// The kind of `kind`.
    pub fn of(kind: &EventKind) -> EventKindName {
        match kind {
            EventKind::Decision(_) => EventKindName::Decision,
            EventKind::Action(_) => EventKindName::Action,
            EventKind::Gate(_) => EventKindName::Gate,
            EventKind::Cost(_) => EventKindName::Cost,
            EventKind::Context(_) => EventKindName::Context,
        }
    }

    /// Every kind.
    pub const ALL: [EventKindName; 5] = [
        EventKindName::Decision,
        EventKindName::Action,
        EventKindName::Gate,
        EventKindName::Cost,
        EventKindName::Context,
    ];

    /// The name as written in traces and on the command line: `decision`, `action`, ...
    pub fn name(self) -> &'static str {
        match self {
            EventKindName::Decision => "decision",
            EventKindName::Action => "action",
            EventKindName::Gate => "gate",
            EventKindName::Cost => "cost",
            EventKindName::Context => "context",
        }
    }
}

/// A name that is not one of a fixed set, such as an unknown event kind or gate outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`; expected one of: {expected}")]
pub struct UnknownName {
    /// What was being named: `event kind` or `gate outcome`.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names accepted, comma-separated.
    pub expected: String,
}

fn parse_name<T: Copy>(
    what: &'static str,
    name: &str,
    all: &[T],
    name_of: impl Fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|candidate| name_of(*candidate) == name)
        .ok_or_else(|| UnknownName {
            what,
            name: name.to_string(),
            expected: all
                .iter()
                .map(|item| name_of(*item))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl FromStr for EventKindName {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<EventKindName, UnknownName> {
        parse_name("event kind", name, &EventKindName::ALL, EventKindName::name)
    }
}

impl FromStr for GateEventOutcome {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<GateEventOutcome, UnknownName> {
        const ALL: [GateEventOutcome; 7] = [
            GateEventOutcome::Allowed,
            GateEventOutcome::Denied,
            GateEventOutcome::Pending,
            GateEventOutcome::Approved,
            GateEventOutcome::Rejected,
            GateEventOutcome::Expired,
            GateEventOutcome::Consumed,
        ];
        parse_name("gate outcome", name, &ALL, GateEventOutcome::name)
    }
}

/// Which events to select: every condition given must hold; a query with none selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    run_id: Option<String>,
    agent_id: Option<String>,
    task_id: Option<String>,
    kinds: Vec<EventKindName>,
    gate_outcomes: Vec<GateEventOutcome>,
    since_ns: Option<u64>,
    until_ns: Option<u64>,
}

impl Query {
    /// A query that selects every event.
    pub fn all() -> Query {
        Query::default()
    }

    /// Only events of run `run_id`.
    pub fn run(mut self, run_id: &str) -> Query {
        self.run_id = Some(run_id.to_string());
        self
    }

    /// Only events of agent `agent_id`.
    pub fn agent(mut self, agent_id: &str) -> Query {
        self.agent_id = Some(agent_id.to_string());
        self
    }

    /// Only events of task `task_id`.
    pub fn task(mut self, task_id: &str) -> Query {
        self.task_id = Some(task_id.to_string());
        self
    }

    /// Only events of this kind (call again to allow several kinds).
    pub fn kind(mut self, kind: EventKindName) -> Query {
        self.kinds.push(kind);
        self
    }

    /// Only gate events with this outcome (call again to allow several outcomes).
    pub fn gate_outcome(mut self, outcome: GateEventOutcome) -> Query {
        self.gate_outcomes.push(outcome);
        self
    }

    /// Only events at or after `since_ns` (nanoseconds since the Unix epoch).
    pub fn since(mut self, since_ns: u64) -> Query {
        self.since_ns = Some(since_ns);
        self
    }

    /// Only events before `until_ns` (nanoseconds since the Unix epoch).
    pub fn until(mut self, until_ns: u64) -> Query {
        self.until_ns = Some(until_ns);
        self
    }

    /// Whether `event` is selected.
    pub fn matches(&self, event: &Event) -> bool {
        let same = |wanted: &Option<String>, actual: Option<&str>| {
            wanted
                .as_deref()
                .is_none_or(|wanted| Some(wanted) == actual)
        };
        let outcome_ok = self.gate_outcomes.is_empty()
            || matches!(&event.kind, EventKind::Gate(gate) if self.gate_outcomes.contains(&gate.outcome));
        same(&self.run_id, Some(&event.run_id))
            && same(&self.agent_id, Some(&event.agent_id))
            && same(&self.task_id, event.task_id.as_deref())
            && (self.kinds.is_empty() || self.kinds.contains(&EventKindName::of(&event.kind)))
            && outcome_ok
            && self
                .since_ns
                .is_none_or(|since| event.timestamp_ns >= since)
            && self.until_ns.is_none_or(|until| event.timestamp_ns < until)
    }
}

/// A span of a run, with the events recorded in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanNode {
    /// The span's id.
    pub span_id: u64,
    /// The id of the span it was started in, as recorded (even if that span is missing).
    pub parent_span_id: Option<u64>,
    /// Its name: the agent, model, tool or step.
    pub name: String,
    /// What kind of span it is.
    pub kind: SpanKind,
    /// When it began, in nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// When it ended; `None` if the trace holds no end (the run was cut short).
    pub end_ns: Option<u64>,
    /// The error it ended with.
    pub error: Option<String>,
    /// The events recorded in it, in sequence order.
    pub events: Vec<Event>,
    /// Its child spans, as indexes into [`RunTree::spans`], in start order.
    pub children: Vec<usize>,
}

/// One run rebuilt from a trace: its spans as a tree, and its events.
///
/// Spans are kept flat in [`RunTree::spans`] and link to their children by index, so that a trace
/// of any depth is walked and dropped without recursion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunTree {
    /// The run's id.
    pub run_id: String,
    /// The agent of the run.
    pub agent_id: String,
    /// The task of the run, if any.
    pub task_id: Option<String>,
    /// Every span of the run, in start order.
    pub spans: Vec<SpanNode>,
    /// The spans with no parent in the trace (normally just the run's root span), as indexes.
    pub roots: Vec<usize>,
    /// Events outside any span of the trace (recorded without a span, or in a span whose start
    /// is missing), in sequence order.
    pub loose_events: Vec<Event>,
}

impl RunTree {
    /// The run's root span: the first span of kind [`SpanKind::Run`] with no parent.
    pub fn root(&self) -> Option<&SpanNode> {
        self.roots
            .iter()
            .map(|&idx| &self.spans[idx])
            .find(|span| span.kind == SpanKind::Run)
    }

    /// The span with id `span_id`.
    pub fn span(&self, span_id: u64) -> Option<&SpanNode> {
        self.spans.iter().find(|span| span.span_id == span_id)
    }

    /// Every span, depth first in start order, with its depth (0 for a root).
    pub fn walk(&self) -> Vec<(usize, &SpanNode)> {
        let mut order = Vec::with_capacity(self.spans.len());
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&idx| (0, idx)).collect();
        while let Some((depth, idx)) = stack.pop() {
            let span = &self.spans[idx];
            order.push((depth, span));
            stack.extend(span.children.iter().rev().map(|&child| (depth + 1, child)));
        }
        order
    }

    /// Every event of the run, in sequence order, with the span it was recorded in.
    pub fn events(&self) -> Vec<(Option<&SpanNode>, &Event)> {
        let mut events: Vec<(Option<&SpanNode>, &Event)> = self
            .spans
            .iter()
            .flat_map(|span| span.events.iter().map(move |event| (Some(span), event)))
            .chain(self.loose_events.iter().map(|event| (None, event)))
            .collect();
        events.sort_by_key(|(_, event)| event.seq);
        events
    }

    /// When the run began and ended: its root span's times, else its first and last timestamps.
    pub fn time_range(&self) -> (u64, Option<u64>) {
        if let Some(root) = self.root() {
            return (root.start_ns, root.end_ns);
        }
        let events = self.events();
        let stamps = self
            .spans
            .iter()
            .map(|span| span.start_ns)
            .chain(events.iter().map(|(_, event)| event.timestamp_ns));
        let (first, last) = stamps.fold((u64::MAX, 0), |(lo, hi), at| (lo.min(at), hi.max(at)));
        (first.min(last), Some(last))
    }

    /// The error the run ended with, from its root span.
    pub fn error(&self) -> Option<&str> {
        self.root().and_then(|root| root.error.as_deref())
    }
}

/// Every run of a trace, rebuilt.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Runs {
    /// The runs, in the order they first appear.
    pub runs: Vec<RunTree>,
    /// Events the Tracer dropped because its queue was full (from `Dropped` records): the trace is
    /// missing this many events, of unknown runs.
    pub n_dropped_events: u64,
    /// The torn tail of the file, if a crash cut its last frame short.
    #[serde(skip)]
    pub torn_tail: Option<TornTail>,
}

impl Runs {
    /// Rebuilds the runs of `records`, such as a [`MemorySink`](super::MemorySink)'s.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a TraceRecord>) -> Runs {
        let mut builder = RunsBuilder::new();
        for record in records {
            builder.push(record.clone());
        }
        builder.finish()
    }

    /// The run with id `run_id`.
    pub fn get(&self, run_id: &str) -> Option<&RunTree> {
        self.runs.iter().find(|run| run.run_id == run_id)
    }
}

/// A run while its records are being collected.
struct RunParts {
    tree: RunTree,
    span_idx: FxHashMap<u64, usize>,
    events: Vec<Event>,
}

/// Rebuilds runs from records fed one at a time, in trace order.
#[derive(Default)]
pub struct RunsBuilder {
    runs: Vec<RunParts>,
    run_idx: FxHashMap<String, usize>,
    n_dropped_events: u64,
}

impl RunsBuilder {
    /// A builder with no records yet.
    pub fn new() -> RunsBuilder {
        RunsBuilder::default()
    }

    fn run(&mut self, run_id: &str, agent_id: &str, task_id: Option<&str>) -> &mut RunParts {
        let idx = match self.run_idx.get(run_id) {
            Some(&idx) => idx,
            None => {
                self.runs.push(RunParts {
                    tree: RunTree {
                        run_id: run_id.to_string(),
                        agent_id: agent_id.to_string(),
                        task_id: task_id.map(str::to_string),
                        spans: Vec::new(),
                        roots: Vec::new(),
                        loose_events: Vec::new(),
                    },
                    span_idx: FxHashMap::default(),
                    events: Vec::new(),
                });
                self.run_idx.insert(run_id.to_string(), self.runs.len() - 1);
                self.runs.len() - 1
            }
        };
        &mut self.runs[idx]
    }

    /// Takes the next record of the trace.
    pub fn push(&mut self, record: TraceRecord) {
        match record {
            TraceRecord::Event(event) => {
                let run = self.run(&event.run_id, &event.agent_id, event.task_id.as_deref());
                run.events.push(event);
            }
            TraceRecord::SpanStart {
                run_id,
                agent_id,
                task_id,
                span_id,
                parent_span_id,
                name,
                kind,
                at_ns,
            } => {
                let run = self.run(&run_id, &agent_id, task_id.as_deref());
                if run.span_idx.contains_key(&span_id) {
                    return;
                }
                run.span_idx.insert(span_id, run.tree.spans.len());
                run.tree.spans.push(SpanNode {
                    span_id,
                    parent_span_id,
                    name,
                    kind,
                    start_ns: at_ns,
                    end_ns: None,
                    error: None,
                    events: Vec::new(),
                    children: Vec::new(),
                });
            }
            TraceRecord::SpanEnd {
                run_id,
                span_id,
                at_ns,
                error,
            } => {
                let Some(&run) = self.run_idx.get(&run_id) else {
                    return;
                };
                let run = &mut self.runs[run];
                if let Some(&idx) = run.span_idx.get(&span_id) {
                    let span = &mut run.tree.spans[idx];
                    if span.end_ns.is_none() {
                        span.end_ns = Some(at_ns);
                        span.error = error;
                    }
                }
            }
            TraceRecord::Dropped { n_events, .. } => {
                self.n_dropped_events = self.n_dropped_events.saturating_add(n_events);
            }
        }
    }

    /// The runs rebuilt from every record pushed.
    pub fn finish(self) -> Runs {
        let runs = self.runs.into_iter().map(assemble).collect();
        Runs {
            runs,
            n_dropped_events: self.n_dropped_events,
            torn_tail: None,
        }
    }
}

/// Links each span to its parent and puts each event in its span.
fn assemble(parts: RunParts) -> RunTree {
    let RunParts {
        mut tree,
        span_idx,
        mut events,
    } = parts;
    events.sort_by_key(|event| event.seq);
    for event in events {
        match event.span_id.and_then(|span_id| span_idx.get(&span_id)) {
            Some(&idx) => tree.spans[idx].events.push(event),
            None => tree.loose_events.push(event),
        }
    }
    let parent_of: Vec<Option<usize>> = tree
        .spans
        .iter()
        .enumerate()
        .map(|(idx, span)| {
            span.parent_span_id
                .and_then(|parent| span_idx.get(&parent).copied())
                .filter(|&parent| parent != idx)
        })
        .collect();
    // A span is a root if it has no parent in the trace, or if following parents from it never
    // reaches such a span (a cycle, which only a forged trace holds): the first span of a cycle,
    // in start order, becomes a root.
    let mut reached = vec![false; tree.spans.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); tree.spans.len()];
    for (idx, parent) in parent_of.iter().enumerate() {
        if let Some(parent) = parent {
            children[*parent].push(idx);
        }
    }
    fn mark(from: usize, children: &[Vec<usize>], reached: &mut [bool]) {
        let mut stack = vec![from];
        while let Some(idx) = stack.pop() {
            if !reached[idx] {
                reached[idx] = true;
                stack.extend(children[idx].iter().copied());
            }
        }
    }
    for (idx, parent) in parent_of.iter().enumerate() {
        if parent.is_none() {
            tree.roots.push(idx);
            mark(idx, &children, &mut reached);
        }
    }
    for idx in 0..tree.spans.len() {
        if !reached[idx] {
            tree.roots.push(idx);
            if let Some(parent) = parent_of[idx] {
                children[parent].retain(|&child| child != idx);
            }
            mark(idx, &children, &mut reached);
        }
    }
    for (span, children) in tree.spans.iter_mut().zip(children) {
        span.children = children;
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ActionEvent, DecisionEvent, GateEvent};
    use crate::trace::TraceWriter;

    fn span_start(span_id: u64, parent: Option<u64>, kind: SpanKind, at_ns: u64) -> TraceRecord {
        TraceRecord::SpanStart {
            run_id: "run-1".into(),
            agent_id: "coder".into(),
            task_id: Some("T-1".into()),
            span_id,
            parent_span_id: parent,
            name: format!("span-{span_id}"),
            kind,
            at_ns,
        }
    }

    fn span_end(span_id: u64, at_ns: u64) -> TraceRecord {
        TraceRecord::SpanEnd {
            run_id: "run-1".into(),
            span_id,
            at_ns,
            error: None,
        }
    }

    fn event(seq: u64, span_id: Option<u64>, kind: EventKind) -> TraceRecord {
        TraceRecord::Event(Event {
            run_id: "run-1".into(),
            agent_id: "coder".into(),
            task_id: Some("T-1".into()),
            seq,
            timestamp_ns: seq * 10,
            span_id,
            parent_span_id: None,
            kind,
        })
    }

    fn decision() -> EventKind {
        EventKind::Decision(DecisionEvent {
            choice: "edit".into(),
            rationale: "tests fail".into(),
            alternatives: vec![],
        })
    }

    fn action() -> EventKind {
        EventKind::Action(ActionEvent {
            tool: "bash".into(),
            arguments_json: "{}".into(),
            result_digest: None,
            duration_ns: None,
            error: None,
        })
    }

    fn gate(outcome: GateEventOutcome) -> EventKind {
        EventKind::Gate(GateEvent {
            request_json: "{}".into(),
            outcome,
            rule: None,
            gates: vec![],
            approval_id: None,
            approver: None,
            reason: String::new(),
        })
    }

    fn sample() -> Vec<TraceRecord> {
        vec![
            span_start(1, None, SpanKind::Run, 1),
            span_start(2, Some(1), SpanKind::Step, 2),
            event(1, Some(2), decision()),
            event(2, None, gate(GateEventOutcome::Allowed)),
            span_start(3, Some(2), SpanKind::ToolCall, 3),
            event(3, Some(3), action()),
            span_end(3, 4),
            event(4, None, gate(GateEventOutcome::Denied)),
            span_end(2, 5),
            TraceRecord::Dropped {
                n_events: 2,
                at_ns: 6,
            },
            span_end(1, 7),
        ]
    }

    fn write_trace(records: &[TraceRecord]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trace");
        let mut writer = TraceWriter::open(&path).unwrap();
        for record in records {
            writer.append(record).unwrap();
        }
        writer.flush().unwrap();
        (dir, path)
    }

    #[test]
    fn streams_the_same_records_as_the_whole_file_reader() {
        let (_dir, path) = write_trace(&sample());
        let streamed: Vec<_> = TraceReader::open(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let whole = crate::trace::read(&path).unwrap();
        assert_eq!(streamed, whole.records);
        let mut reader = TraceReader::open(&path).unwrap();
        while reader.next_record().unwrap().is_some() {}
        assert_eq!(reader.head(), whole.head);
    }

    #[test]
    fn rebuilds_the_span_tree_with_events_in_their_spans() {
        let runs = Runs::from_records(&sample());
        assert_eq!(runs.n_dropped_events, 2);
        let run = runs.get("run-1").unwrap();
        assert_eq!(run.task_id.as_deref(), Some("T-1"));
        let walk: Vec<(usize, u64)> = run
            .walk()
            .iter()
            .map(|(depth, span)| (*depth, span.span_id))
            .collect();
        assert_eq!(walk, vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(run.span(2).unwrap().events.len(), 1);
        assert_eq!(run.span(3).unwrap().events.len(), 1);
        assert_eq!(run.loose_events.len(), 2);
        let seqs: Vec<u64> = run.events().iter().map(|(_, event)| event.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert_eq!(run.time_range(), (1, Some(7)));
    }

    #[test]
    fn spans_with_missing_parents_or_cycles_become_roots() {
        let records = vec![
            span_start(5, Some(99), SpanKind::Step, 1),
            span_start(6, Some(7), SpanKind::Step, 2),
            span_start(7, Some(6), SpanKind::Step, 3),
            span_start(8, Some(8), SpanKind::Step, 4),
            span_start(5, None, SpanKind::Run, 5),
        ];
        let runs = Runs::from_records(&records);
        let run = &runs.runs[0];
        assert_eq!(run.spans.len(), 4, "a repeated span start is ignored");
        let roots: Vec<u64> = run
            .roots
            .iter()
            .map(|&idx| run.spans[idx].span_id)
            .collect();
        assert_eq!(roots, vec![5, 8, 6]);
        assert_eq!(run.walk().len(), 4);
        assert!(run.root().is_none());
    }

    #[test]
    fn a_deep_trace_is_walked_and_dropped_without_recursion() {
        let mut records = vec![span_start(1, None, SpanKind::Run, 0)];
        for span_id in 2..200_000 {
            records.push(span_start(
                span_id,
                Some(span_id - 1),
                SpanKind::Step,
                span_id,
            ));
        }
        let runs = Runs::from_records(&records);
        let walk = runs.runs[0].walk();
        assert_eq!(walk.last().unwrap().0, 199_998);
    }

    #[test]
    fn queries_select_by_each_field() {
        let records = sample();
        let events: Vec<Event> = records
            .iter()
            .filter_map(|record| match record {
                TraceRecord::Event(event) => Some(event.clone()),
                _ => None,
            })
            .collect();
        let seqs = |query: Query| -> Vec<u64> {
            events
                .iter()
                .filter(|event| query.matches(event))
                .map(|event| event.seq)
                .collect()
        };
        let cases: Vec<(Query, Vec<u64>)> = vec![
            (Query::all(), vec![1, 2, 3, 4]),
            (Query::all().run("run-1"), vec![1, 2, 3, 4]),
            (Query::all().run("run-2"), vec![]),
            (Query::all().agent("coder"), vec![1, 2, 3, 4]),
            (Query::all().agent("reviewer"), vec![]),
            (Query::all().task("T-1"), vec![1, 2, 3, 4]),
            (Query::all().task("T-2"), vec![]),
            (Query::all().kind(EventKindName::Gate), vec![2, 4]),
            (
                Query::all()
                    .kind(EventKindName::Decision)
                    .kind(EventKindName::Action),
                vec![1, 3],
            ),
            (Query::all().gate_outcome(GateEventOutcome::Denied), vec![4]),
            (Query::all().since(20), vec![2, 3, 4]),
            (Query::all().until(30), vec![1, 2]),
            (
                Query::all().since(20).until(40).kind(EventKindName::Gate),
                vec![2],
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(seqs(query.clone()), expected, "{query:?}");
        }
    }

    #[test]
    fn names_parse_and_unknown_names_are_an_error() {
        assert_eq!("gate".parse(), Ok(EventKindName::Gate));
        assert_eq!("denied".parse(), Ok(GateEventOutcome::Denied));
        let error = "gates".parse::<EventKindName>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown event kind `gates`; expected one of: decision, action, gate, cost, context"
        );
        assert!("Denied".parse::<GateEventOutcome>().is_err());
    }

    #[test]
    fn damage_names_the_frame_and_a_torn_tail_ends_quietly() {
        let (_dir, path) = write_trace(&sample());
        let bytes = std::fs::read(&path).unwrap();
        let whole = crate::trace::read(&path).unwrap();
        let (third_offset, _) = whole.records[2];

        let mut flipped = bytes.clone();
        flipped[third_offset as usize + 45] ^= 1;
        let error = TraceReader::new(&path, flipped.as_slice())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err();
        match error {
            TraceError::Frame(frame) => {
                assert_eq!((frame.offset(), frame.frame_idx()), (third_offset, 2));
            }
            other => panic!("unexpected {other:?}"),
        }

        let cut = &bytes[..bytes.len() - 3];
        let mut reader = TraceReader::new(&path, cut).unwrap();
        let n_records = reader.by_ref().map(Result::unwrap).count();
        assert_eq!(n_records, whole.records.len() - 1);
        let torn = reader.torn_tail().unwrap();
        assert_eq!(torn.offset, whole.records.last().unwrap().0);

        let error = TraceReader::new(&path, &b"FFTRACE"[..]).unwrap_err();
        assert!(matches!(error, TraceError::NotATrace { .. }));
        let error = TraceReader::new(&path, &b"FFTRACE\x01"[..]).unwrap_err();
        assert!(matches!(
            error,
            TraceError::UnsupportedVersion { version: 1, .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_read_without_panic_like_the_whole_file_reader(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            keep in 0usize..600,
        ) {
            let (_dir, path) = write_trace(&sample());
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.truncate(keep.max(8));
            bytes.extend_from_slice(&tail);
            let whole = crate::trace::decode(&path, &bytes);
            let streamed = TraceReader::new(&path, bytes.as_slice())
                .and_then(|reader| reader.collect::<Result<Vec<_>, _>>());
            match (whole, streamed) {
                (Ok(whole), Ok(streamed)) => proptest::prop_assert_eq!(whole.records, streamed),
                (Err(whole), Err(streamed)) => {
                    proptest::prop_assert_eq!(whole.to_string(), streamed.to_string())
                }
                (whole, streamed) => proptest::prop_assert!(
                    false,
                    "whole {:?} but streamed {:?}",
                    whole.map(|contents| contents.records.len()),
                    streamed.map(|records| records.len())
                ),
            }
        }
    }
}
