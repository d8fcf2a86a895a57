//! The shared event model that all four controls speak.
//!
//! Every control records what it did as an [`Event`]: Policy emits [`EventKind::Gate`], the Tracer
//! records [`EventKind::Decision`] and [`EventKind::Action`], the CostMeter [`EventKind::Cost`] and the
//! ContextStore [`EventKind::Context`]. Because they share one model, one trace can say *why* an action
//! failed: stale context, a permission, a budget, a rejected gate, or the model.
//!
//! Events are serde types. On disk they are encoded with bincode ([`Event::to_bytes`]), so every type
//! here avoids serde features that need a self-describing format (no `skip_serializing_if`, no
//! internally tagged enums, no `serde_json::Value`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::EventDecodeError;

/// One record of what an agent decided, did, spent, was allowed or was served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The run this event belongs to.
    pub run_id: String,
    /// The agent that caused it.
    pub agent_id: String,
    /// The task the agent was working on, if any.
    pub task_id: Option<String>,
    /// Position in the run: strictly increasing per run, starting at 1.
    pub seq: u64,
    /// When it happened, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The span this event belongs to, if the caller opened one.
    pub span_id: Option<u64>,
    /// The parent of that span, if any.
    pub parent_span_id: Option<u64>,
    /// What happened.
    pub kind: EventKind,
}

/// What an [`Event`] records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// The agent chose something.
    Decision(DecisionEvent),
    /// The agent did something (a tool call, a command).
    Action(ActionEvent),
    /// A policy decision or a review gate outcome.
    Gate(GateEvent),
    /// Tokens and money spent on a model call.
    Cost(CostEvent),
    /// Which document sections and versions were served.
    Context(ContextEvent),
}

impl EventKind {
    /// The kind's name as written in traces and docs: `decision`, `action`, `gate`, `cost`, `context`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Decision(_) => "decision",
            EventKind::Action(_) => "action",
            EventKind::Gate(_) => "gate",
            EventKind::Cost(_) => "cost",
            EventKind::Context(_) => "context",
        }
    }
}

/// The agent chose one option among others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// What was chosen.
    pub choice: String,
    /// Why, in the agent's words.
    pub rationale: String,
    /// The options that were not chosen.
    pub alternatives: Vec<String>,
}

/// The agent called a tool or ran a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    /// The tool or program.
    pub tool: String,
    /// Its arguments, as JSON text.
    pub arguments_json: String,
    /// A digest of the result, so a trace can show it changed without storing it.
    pub result_digest: Option<String>,
    /// How long the call took, in nanoseconds.
    pub duration_ns: Option<u64>,
    /// The error the call ended with, if it failed.
    pub error: Option<String>,
}

/// An action's fields, borrowed, for [`Span::record_action`](crate::trace::Span::record_action):
/// the caller need not build an [`ActionEvent`] of owned strings itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActionRef<'a> {
    /// The tool or program.
    pub tool: &'a str,
    /// Its arguments, as JSON text.
    pub arguments_json: &'a str,
    /// A digest of the result, so a trace can show it changed without storing it.
    pub result_digest: Option<&'a str>,
    /// How long the call took, in nanoseconds.
    pub duration_ns: Option<u64>,
    /// The error the call ended with, if it failed.
    pub error: Option<&'a str>,
}

impl ActionRef<'_> {
    /// The action with owned strings, as an event's kind holds it.
    pub fn to_event(&self) -> ActionEvent {
        ActionEvent {
            tool: self.tool.to_string(),
            arguments_json: self.arguments_json.to_string(),
            result_digest: self.result_digest.map(str::to_string),
            duration_ns: self.duration_ns,
            error: self.error.map(str::to_string),
        }
    }
}

/// A policy decision, or the outcome of a review gate on a pending approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateEvent {
    /// What was asked, as JSON text (the request).
    pub request_json: String,
    /// What was decided.
    pub outcome: GateEventOutcome,
    /// The rule that decided it, if one did.
    pub rule: Option<RuleOrigin>,
    /// The gates involved, by name.
    pub gates: Vec<String>,
    /// The approval this event concerns, if any.
    pub approval_id: Option<String>,
    /// Who approved or rejected, if someone did.
    pub approver: Option<String>,
    /// Why, in one line.
    pub reason: String,
}

/// The outcome a [`GateEvent`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GateEventOutcome {
    /// The request was allowed.
    Allowed,
    /// The request was denied by a rule, or by default.
    Denied,
    /// The request waits on a review gate: an approval was opened.
    Pending,
    /// A pending approval was approved.
    Approved,
    /// A pending approval was rejected.
    Rejected,
    /// A pending approval expired before anyone resolved it.
    Expired,
    /// An approved approval was used by the request it was granted for.
    Consumed,
}

impl GateEventOutcome {
    /// The outcome's name as written in JSON output: `allowed`, `denied`, ...
    pub fn name(self) -> &'static str {
        match self {
            GateEventOutcome::Allowed => "allowed",
            GateEventOutcome::Denied => "denied",
            GateEventOutcome::Pending => "pending",
            GateEventOutcome::Approved => "approved",
            GateEventOutcome::Rejected => "rejected",
            GateEventOutcome::Expired => "expired",
            GateEventOutcome::Consumed => "consumed",
        }
    }
}

/// Where a rule was written: its id, and the file and line it came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleOrigin {
    /// The rule's id.
    pub id: String,
    /// The file it was loaded from, or `None` for rules built in code or granted at run time.
    pub file: Option<String>,
    /// The 1-based line of the rule in that file.
    pub line: Option<u32>,
}

impl fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule `{}`", self.id)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => Ok(()),
        }
    }
}

/// Tokens and money spent on one model call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostEvent {
    /// The model called.
    pub model: String,
    /// Who serves the model, as OpenTelemetry's `gen_ai.provider.name` names it (`openai`,
    /// `anthropic`, `gcp.gemini`, ...), if known.
    pub provider: Option<String>,
    /// Prompt tokens, including cached ones.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: u64,
    /// Reasoning tokens, where the provider reports them.
    pub reasoning_tokens: u64,
    /// The price of the call, in micro-units of `currency` (1 USD = 1,000,000).
    pub cost_micros: u64,
    /// The currency of `cost_micros`, such as `USD`.
    pub currency: String,
    /// True when the counts are an estimate rather than exact or provider-reported.
    pub estimated: bool,
    /// Prompt tokens written to the provider's cache (Anthropic's `cache_creation_input_tokens`),
    /// included in `input_tokens`.
    pub cache_write_tokens: u64,
    /// Tokens the agent did not have to spend, against a baseline (the ContextStore's sections
    /// served against whole files read); non-zero on savings records, which spend nothing.
    pub saved_tokens: u64,
    /// What `saved_tokens` would have cost at the model's input price, in micro-units of `currency`.
    pub saved_micros: u64,
    /// Why this record needs a look, if it does: a model with no known price was counted at zero.
    pub warning: Option<String>,
}

/// Which document sections, at which versions, were served to the agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextEvent {
    /// The question asked, if any.
    pub query: Option<String>,
    /// The sections served.
    pub sections: Vec<ServedSection>,
    /// Tokens served.
    pub tokens_served: u64,
    /// Tokens the agent would have read without fourfold (the baseline), for the savings report.
    pub tokens_baseline: u64,
    /// Documents whose canonical sections the search would have served but the policy does not
    /// let the agent read (an ask under a session scoped by the policy); 0 otherwise. A JSON event
    /// without the field (written before it existed) reads as 0.
    #[serde(default)]
    pub withheld: u64,
}

/// One document section served to an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedSection {
    /// The document key.
    pub key: String,
    /// The section's stable id.
    pub section_id: String,
    /// The document version served.
    pub version: u64,
    /// Its freshness when served: `canonical`, `stale` or `duplicate`.
    pub freshness: String,
}

impl Event {
    /// Encodes the event as bincode, the on-disk format.
    pub fn to_bytes(&self) -> Vec<u8> {
        // INVARIANT: every field type is plain serde data (strings, integers, options, vectors,
        // externally tagged enums), which bincode always encodes, so this cannot fail.
        bincode::serde::encode_to_vec(self, bincode_config()).unwrap_or_default()
    }

    /// Decodes an event written by [`Event::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Event, EventDecodeError> {
        crate::decode::decode_whole(bytes).map_err(EventDecodeError::new)
    }
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// A new id: `prefix`, a dash and 16 hex digits, unique in a process and unlikely to repeat across
/// processes (it mixes the time, the process id, a counter and a per-process random key). Not a
/// secret: ids name records, they do not grant anything.
pub(crate) fn random_id(prefix: &str, now_ns: u64) -> String {
    format!("{prefix}-{:016x}", random_u64(now_ns))
}

/// 64 bits unlikely to repeat within or across processes: the time, the process id and a
/// counter hashed under a per-process random key. Not for secrets.
pub(crate) fn random_u64(now_ns: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static N_DRAWS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_ns);
    hasher.write_u32(std::process::id());
    hasher.write_u64(N_DRAWS.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A source of wall-clock time, so that tests never depend on the real clock.
pub trait Clock: Send + Sync {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&self) -> u64;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        // Seconds and nanoseconds apart: `Duration::as_nanos` is a 128-bit product.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| {
                elapsed
                    .as_secs()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(u64::from(elapsed.subsec_nanos()))
            })
            .unwrap_or(0)
    }
}

/// The system's wall clock read through the CPU's time-stamp counter: what the Tracer stamps
/// records with by default.
///
/// Reading the system clock costs about 30 ns on the test machine (a virtual machine, vDSO
/// `clock_gettime`), a sixth of recording an event; reading the time-stamp counter costs about
/// 12 ns. This clock reads the counter through `quanta`, which the first `FastClock::new` of a
/// process calibrates (about a millisecond here, at most 200 ms) and which falls back to the
/// monotonic clock where the counter is not stable, and adds the offset between the counter's
/// time and the system clock, which it measures again at most once a second. So it follows the
/// system clock, steps and all, within a second, and strays from it by the counter's drift over
/// that second: about a microsecond on the test machine. Between two measurements its readings
/// never go back; at one they may, by that drift.
///
/// Every `FastClock` of a process shares the counter and the offset, so the Tracer's, the
/// Policy's, the ContextStore's and the CostMeter's clocks read the same time: events of
/// different controls order in a trace as they happened.
#[derive(Debug)]
pub struct FastClock {
    shared: &'static FastClockState,
}

/// The counter and offset every [`FastClock`] of the process reads.
#[derive(Debug)]
struct FastClockState {
    counter: quanta::Clock,
    /// The system clock's time less the counter's, in nanoseconds, wrapping.
    offset_ns: AtomicU64,
    /// The counter's time at which the offset is to be measured again.
    next_sync_ns: AtomicU64,
}

/// How often a [`FastClock`] measures its offset from the system clock again.
const FAST_CLOCK_SYNC_NS: u64 = 1_000_000_000;

/// A measurement of the offset whose two counter reads are further apart than this (the thread
/// lost its core between them) is taken again, up to [`FAST_CLOCK_SYNC_TRIES`] times, and the
/// tightest kept.
const FAST_CLOCK_SYNC_WINDOW_NS: u64 = 2_000;

/// How many times a measurement of the offset is tried at most.
const FAST_CLOCK_SYNC_TRIES: usize = 5;

impl FastClock {
    /// A clock that reads the system clock's time now, and follows it.
    pub fn new() -> FastClock {
        static STATE: std::sync::OnceLock<FastClockState> = std::sync::OnceLock::new();
        FastClock {
            shared: STATE.get_or_init(FastClockState::new),
        }
    }
}

impl FastClockState {
    /// The counter, calibrated, with the offset measured now.
    fn new() -> FastClockState {
        let state = FastClockState {
            counter: quanta::Clock::new(),
            offset_ns: AtomicU64::new(0),
            next_sync_ns: AtomicU64::new(0),
        };
        state.next_sync_ns.store(
            state.counter_ns().saturating_add(FAST_CLOCK_SYNC_NS),
            Ordering::Relaxed,
        );
        state.sync();
        state
    }

    /// The counter's time in nanoseconds: monotonic, from an arbitrary start.
    fn counter_ns(&self) -> u64 {
        self.counter.delta_as_nanos(0, self.counter.raw())
    }

    /// Measures the offset from the system clock again: the system clock read between two
    /// counter reads, against their midpoint, from the tightest of a few tries.
    fn sync(&self) {
        let mut best: Option<(u64, u64)> = None;
        for _ in 0..FAST_CLOCK_SYNC_TRIES {
            let before_ns = self.counter_ns();
            let system_ns = SystemClock.now_ns();
            let after_ns = self.counter_ns();
            let window_ns = after_ns.saturating_sub(before_ns);
            let offset_ns = system_ns.wrapping_sub(before_ns.saturating_add(window_ns / 2));
            if best.is_none_or(|(best_window_ns, _)| window_ns < best_window_ns) {
                best = Some((window_ns, offset_ns));
            }
            if window_ns <= FAST_CLOCK_SYNC_WINDOW_NS {
                break;
            }
        }
        if let Some((_, offset_ns)) = best {
            self.offset_ns.store(offset_ns, Ordering::Relaxed);
        }
    }
}

impl Default for FastClock {
    fn default() -> FastClock {
        FastClock::new()
    }
}

impl Clock for FastClock {
    fn now_ns(&self) -> u64 {
        let state = self.shared;
        let counter_ns = state.counter_ns();
        let next_sync_ns = state.next_sync_ns.load(Ordering::Relaxed);
        // One thread of those that find the offset due measures it; the others go on with the
        // offset they read.
        if counter_ns >= next_sync_ns
            && state
                .next_sync_ns
                .compare_exchange(
                    next_sync_ns,
                    counter_ns.saturating_add(FAST_CLOCK_SYNC_NS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            state.sync();
        }
        counter_ns.wrapping_add(state.offset_ns.load(Ordering::Relaxed))
    }
}

/// A clock that only moves when told to, for tests and replays.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ns: AtomicU64,
}

impl ManualClock {
    /// A clock that reads `now_ns` until advanced.
    pub fn new(now_ns: u64) -> ManualClock {
        ManualClock {
            now_ns: AtomicU64::new(now_ns),
        }
    }

    /// Moves the clock forward by `by_ns` nanoseconds.
    pub fn advance(&self, by_ns: u64) {
        self.now_ns.fetch_add(by_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }
}

/// Hands out the per-run monotonic sequence numbers of [`Event::seq`].
#[derive(Debug, Default)]
pub struct Sequencer {
    // INVARIANT: a run's counter holds the last number handed out; it is shared (see
    // `Sequencer::run_counter`), so a run's numbers come from one counter however they are asked
    // for.
    next_by_run: Mutex<FxHashMap<String, Arc<AtomicU64>>>,
}

impl Sequencer {
    /// A sequencer with no runs yet.
    pub fn new() -> Sequencer {
        Sequencer::default()
    }

    /// The next sequence number of `run_id`: 1 for its first event, then 2, 3, ...
    pub fn next(&self, run_id: &str) -> u64 {
        let mut next_by_run = self.next_by_run.lock();
        match next_by_run.get(run_id) {
            Some(counter) => counter.fetch_add(1, Ordering::Relaxed) + 1,
            None => {
                next_by_run.insert(run_id.to_string(), Arc::new(AtomicU64::new(1)));
                1
            }
        }
    }

    /// The counter behind the numbers of `run_id`, for a caller that numbers many events of one
    /// run: `counter.fetch_add(1, Relaxed) + 1` is the run's next number, as [`Sequencer::next`]
    /// would give it, without the lock and the lookup.
    pub(crate) fn run_counter(&self, run_id: &str) -> Arc<AtomicU64> {
        let mut next_by_run = self.next_by_run.lock();
        Arc::clone(
            next_by_run
                .entry(run_id.to_string())
                .or_insert_with(|| Arc::new(AtomicU64::new(0))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate_event(seq: u64) -> Event {
        Event {
            run_id: "run-1".into(),
            agent_id: "coder".into(),
            task_id: Some("T-12".into()),
            seq,
            timestamp_ns: 1_700_000_000_000_000_000,
            span_id: Some(7),
            parent_span_id: None,
            kind: EventKind::Gate(GateEvent {
                request_json: r#"{"action":"read","path":".env"}"#.into(),
                outcome: GateEventOutcome::Denied,
                rule: Some(RuleOrigin {
                    id: "no-secrets".into(),
                    file: Some("policy.toml".into()),
                    line: Some(12),
                }),
                gates: vec![],
                approval_id: None,
                approver: None,
                reason: "denied by rule `no-secrets`".into(),
            }),
        }
    }

    #[test]
    fn a_json_context_event_written_before_withheld_reads_as_nothing_withheld() {
        let old = r#"{"query":"auth","sections":[],"tokens_served":3,"tokens_baseline":9}"#;
        let event: ContextEvent = serde_json::from_str(old).unwrap();
        assert_eq!((event.tokens_served, event.withheld), (3, 0));
        let new = serde_json::to_value(ContextEvent {
            withheld: 4,
            ..event
        })
        .unwrap();
        assert_eq!(new["withheld"], 4);
    }

    #[test]
    fn every_kind_round_trips_through_bincode() {
        let kinds = vec![
            EventKind::Decision(DecisionEvent {
                choice: "edit".into(),
                rationale: "tests fail".into(),
                alternatives: vec!["skip".into()],
            }),
            EventKind::Action(ActionEvent {
                tool: "bash".into(),
                arguments_json: "{}".into(),
                result_digest: Some("ab".into()),
                duration_ns: Some(5),
                error: None,
            }),
            gate_event(1).kind,
            EventKind::Cost(CostEvent {
                model: "gpt-4o".into(),
                provider: Some("openai".into()),
                input_tokens: 10,
                output_tokens: 2,
                cached_tokens: 0,
                reasoning_tokens: 0,
                cost_micros: 45,
                currency: "USD".into(),
                estimated: false,
                cache_write_tokens: 0,
                saved_tokens: 0,
                saved_micros: 0,
                warning: None,
            }),
            EventKind::Context(ContextEvent {
                query: Some("auth".into()),
                sections: vec![ServedSection {
                    key: "docs/auth.md".into(),
                    section_id: "s1".into(),
                    version: 3,
                    freshness: "canonical".into(),
                }],
                tokens_served: 100,
                tokens_baseline: 4000,
                withheld: 0,
            }),
        ];
        for (idx, kind) in kinds.into_iter().enumerate() {
            let mut event = gate_event(idx as u64 + 1);
            event.kind = kind;
            let bytes = event.to_bytes();
            assert_eq!(Event::from_bytes(&bytes).unwrap(), event);
        }
    }

    #[test]
    fn truncated_or_padded_bytes_are_an_error() {
        let bytes = gate_event(1).to_bytes();
        for cut in 0..bytes.len() {
            assert!(Event::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(Event::from_bytes(&padded).is_err());
    }

    #[test]
    fn sequence_is_per_run_and_monotonic() {
        let sequencer = Sequencer::new();
        assert_eq!(sequencer.next("a"), 1);
        assert_eq!(sequencer.next("a"), 2);
        assert_eq!(sequencer.next("b"), 1);
        assert_eq!(sequencer.next("a"), 3);
    }

    #[test]
    fn a_run_counter_shares_the_runs_sequence() {
        let sequencer = Sequencer::new();
        let counter = sequencer.run_counter("a");
        assert_eq!(counter.fetch_add(1, Ordering::Relaxed) + 1, 1);
        assert_eq!(sequencer.next("a"), 2);
        assert_eq!(counter.fetch_add(1, Ordering::Relaxed) + 1, 3);
        assert_eq!(sequencer.next("b"), 1);
        assert_eq!(
            sequencer.run_counter("b").fetch_add(1, Ordering::Relaxed) + 1,
            2
        );
    }

    #[test]
    fn fast_clock_reads_the_system_clock_and_never_goes_back_between_syncs() {
        let clock = FastClock::new();
        let before = SystemClock.now_ns();
        let fast = clock.now_ns();
        let after = SystemClock.now_ns();
        // The offset was measured at most a second ago (when the process's first clock was
        // made, or since); the counter's drift since is far below a millisecond.
        assert!(
            before.saturating_sub(1_000_000) <= fast && fast <= after + 1_000_000,
            "{before} <= {fast} <= {after}"
        );
        let mut last = clock.now_ns();
        for _ in 0..10_000 {
            let now = clock.now_ns();
            assert!(now >= last, "{now} < {last}");
            last = now;
        }
    }

    #[test]
    fn fast_clock_measures_its_offset_again_when_due() {
        // A state of its own, so that the wrong offset below is read by no other test.
        let clock = FastClock {
            shared: Box::leak(Box::new(FastClockState::new())),
        };
        // Make the offset wrong by an hour and the next measurement due.
        let hour_ns = 3_600_000_000_000;
        clock.shared.offset_ns.fetch_add(hour_ns, Ordering::Relaxed);
        clock.shared.next_sync_ns.store(0, Ordering::Relaxed);
        let fast = clock.now_ns();
        let system = SystemClock.now_ns();
        assert!(fast.abs_diff(system) < 1_000_000_000, "{fast} vs {system}");
        assert!(clock.shared.next_sync_ns.load(Ordering::Relaxed) > 0);
    }

    /// The controls' clocks are made apart (the Tracer's, the Policy's, ...); they must read the
    /// same time, or a gate recorded by the Policy can sort before the span the Tracer opened
    /// for it. Each made its own offset measurement before, which a thread that lost its core
    /// between the two reads of one put a time slice off.
    #[test]
    fn every_fast_clock_reads_the_same_offset() {
        let tracer_clock = FastClock::new();
        let policy_clock = FastClock::new();
        assert!(std::ptr::eq(tracer_clock.shared, policy_clock.shared));
        let first = tracer_clock.now_ns();
        let between = policy_clock.now_ns();
        let last = tracer_clock.now_ns();
        // A measurement due in between may move the offset by the counter's drift only.
        assert!(
            first <= between.saturating_add(100_000) && between <= last.saturating_add(100_000)
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(10);
        assert_eq!(clock.now_ns(), 10);
        clock.advance(5);
        assert_eq!(clock.now_ns(), 15);
    }
}
