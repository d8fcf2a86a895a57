//! The meter: prices each call, enforces budgets with reservations, keeps totals and savings.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::budget::{Budget, BudgetState};
use super::err::{BudgetExceeded, CostError};
use super::ledger::Ledger;
use super::price::PriceTable;
use super::record::{CostRecord, RecordKind};
use super::report::Report;
use super::usage::{TokenCounts, Usage};
use crate::event::{Clock, Event, EventKind, FastClock, GateEvent, GateEventOutcome, Sequencer};
use crate::plugin::PluginRegistry;
use crate::trace::EventKindName;

use super::shared::{SharedBudgets, SharedLimit};

/// What the meter does with a model its price table does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownModel {
    /// Refuse the record or reservation with [`CostError::UnknownModel`] (the default).
    #[default]
    Error,
    /// Price it at zero, and put a warning on the record and its event.
    ZeroWithWarning,
}

impl UnknownModel {
    /// The behaviour named `name` (`error` or `zero`), or the message saying what `field` (the
    /// config key or option the name was given as) may be, for the caller's own error type.
    pub fn parse(name: &str, field: &str) -> Result<UnknownModel, String> {
        match name {
            "error" => Ok(UnknownModel::Error),
            "zero" => Ok(UnknownModel::ZeroWithWarning),
            other => Err(format!("`{field}` is `error` or `zero`, not `{other}`")),
        }
    }
}

/// Builds a [`CostMeter`].
pub struct CostMeterBuilder {
    prices: Option<PriceTable>,
    unknown_model: UnknownModel,
    plugins: Option<Arc<PluginRegistry>>,
    clock: Option<Arc<dyn Clock>>,
    budgets: Vec<Budget>,
    shared_budgets: Vec<(Arc<dyn SharedBudgets>, Budget)>,
    ledger: Option<PathBuf>,
    savings_model: Option<String>,
}

impl CostMeterBuilder {
    /// Prices from `prices` instead of the built-in table.
    pub fn prices(mut self, prices: PriceTable) -> CostMeterBuilder {
        self.prices = Some(prices);
        self
    }

    /// What to do with a model the price table does not know.
    pub fn unknown_model(mut self, unknown_model: UnknownModel) -> CostMeterBuilder {
        self.unknown_model = unknown_model;
        self
    }

    /// Emits events to `plugins` (the registry the other controls share).
    pub fn plugins(mut self, plugins: Arc<PluginRegistry>) -> CostMeterBuilder {
        self.plugins = Some(plugins);
        self
    }

    /// Reads time from `clock` (for rolling windows, records and events).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> CostMeterBuilder {
        self.clock = Some(clock);
        self
    }

    /// Enforces `budget`.
    pub fn budget(mut self, budget: Budget) -> CostMeterBuilder {
        self.budgets.push(budget);
        self
    }

    /// Enforces `budget` together with every other process that shares `backend` (a fleet
    /// budget in PostgreSQL, say): reservations hold against it there, commits spend there.
    /// A shared budget has a hard limit, and may have a soft one, over its lifetime or over a
    /// rolling window (the backend counts the window by its own clock): past the soft limit the
    /// `budget` gate holds requests for a person, and the one spend of the fleet that crosses it
    /// emits an `allowed` gate event saying so.
    pub fn shared_budget(
        mut self,
        backend: Arc<dyn SharedBudgets>,
        budget: Budget,
    ) -> CostMeterBuilder {
        self.shared_budgets.push((backend, budget));
        self
    }

    /// Appends every record to the JSON Lines file at `path`, for `fourfold cost report`.
    pub fn ledger(mut self, path: impl Into<PathBuf>) -> CostMeterBuilder {
        self.ledger = Some(path.into());
        self
    }

    /// Installed as a plugin, turns the ContextStore's context events (tokens served against the
    /// baseline) into savings priced at `model`'s input price.
    pub fn savings_model(mut self, model: impl Into<String>) -> CostMeterBuilder {
        self.savings_model = Some(model.into());
        self
    }

    /// The meter. Fails on a budget that cannot be enforced or a ledger that cannot be opened.
    pub fn build(self) -> Result<CostMeter, CostError> {
        let prices = self.prices.unwrap_or_else(|| PriceTable::builtin().clone());
        let mut budgets = Vec::with_capacity(self.budgets.len());
        for budget in self.budgets {
            budgets.push(BudgetState::new(budget, prices.currency())?);
        }
        let shared_limits = self
            .shared_budgets
            .into_iter()
            .map(|(backend, budget)| SharedLimit::define(backend, budget, prices.currency()))
            .collect::<Result<Vec<_>, _>>()?;
        let ledger = self.ledger.as_deref().map(Ledger::open).transpose()?;
        Ok(CostMeter {
            shared: Arc::new(Shared {
                prices,
                unknown_model: self.unknown_model,
                plugins: self.plugins.unwrap_or_default(),
                clock: self.clock.unwrap_or_else(|| Arc::new(FastClock::new())),
                sequencer: Sequencer::new(),
                next_reservation: AtomicU64::new(1),
                savings_model: self.savings_model,
                shared_limits,
                state: Mutex::new(State {
                    budgets,
                    reservations: FxHashMap::default(),
                    report: Report::new(),
                }),
                ledger: ledger.map(Mutex::new),
            }),
        })
    }
}

/// Counts, prices and limits the model calls of a fleet of agents.
///
/// Before a call, [`CostMeter::reserve`] holds its worst case against every budget that covers
/// it and fails with [`BudgetExceeded`] if a hard limit would be crossed; after the call,
/// [`Reservation::commit`] records what it really used. [`CostMeter::record`] records a call
/// made without a reservation. Every record, warning and refusal is an [`Event`].
/// Cloning is cheap and clones share everything.
///
/// ```
/// use fourfold::cost::{Budget, CostMeter, Scope, TokenCounts, Usage};
/// let meter = CostMeter::builder()
///     .budget(Budget::tokens(Scope::Agent("coder".into())).hard(1000.0))
///     .build()
///     .unwrap();
/// let estimate = Usage::new("coder", "gpt-4o", TokenCounts { input: 500, output: 300, ..Default::default() });
/// let reservation = meter.reserve(&estimate).unwrap();
/// assert!(meter.reserve(&estimate).is_err()); // 800 + 800 > 1000
/// let record = reservation.commit(TokenCounts { input: 500, output: 120, ..Default::default() }).unwrap();
/// assert_eq!(record.micros(), 2450); // 500 x $2.50/M + 120 x $10/M
/// ```
#[derive(Clone)]
pub struct CostMeter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CostMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CostMeter")
            .field("currency", &self.shared.prices.currency())
            .field("n_prices", &self.shared.prices.len())
            .finish_non_exhaustive()
    }
}

/// A [`CostMeter`] that a plugin registry holds without keeping it alive.
pub(crate) struct WeakMeter {
    shared: std::sync::Weak<Shared>,
}

impl WeakMeter {
    pub(crate) fn upgrade(&self) -> Option<CostMeter> {
        self.shared.upgrade().map(|shared| CostMeter { shared })
    }
}

struct Shared {
    prices: PriceTable,
    unknown_model: UnknownModel,
    plugins: Arc<PluginRegistry>,
    clock: Arc<dyn Clock>,
    sequencer: Sequencer,
    next_reservation: AtomicU64,
    savings_model: Option<String>,
    shared_limits: Vec<SharedLimit>,
    // INVARIANT: every check and change of the budgets happens under this one lock, so a
    // reservation's check against all its budgets and its hold on them are one atomic step.
    state: Mutex<State>,
    ledger: Option<Mutex<Ledger>>,
}

struct State {
    budgets: Vec<BudgetState>,
    // INVARIANT: each budget's `reserved` is the sum of the amounts held for it here.
    reservations: FxHashMap<u64, Vec<(usize, u128)>>,
    report: Report,
}

/// A held estimate against the budgets that cover a call; [`Reservation::commit`] settles it.
/// Dropped without a commit, it is released.
#[must_use = "a reservation is released when dropped; commit it after the call"]
pub struct Reservation {
    meter: CostMeter,
    id: u64,
    usage: Usage,
    settled: bool,
    // The holds on shared budgets: (index into the meter's shared limits, hold id).
    shared_holds: Vec<(usize, u64)>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("id", &self.id)
            .field("usage", &self.usage)
            .finish()
    }
}

impl Reservation {
    /// The estimate this reservation holds.
    pub fn estimate(&self) -> &Usage {
        &self.usage
    }

    /// Records what the call really used and releases the estimate.
    ///
    /// The actual use is recorded even when it is more than the estimate and crosses a hard
    /// limit (the money is spent); the budget then refuses every reservation until its window
    /// frees room, and a `denied` gate event says so. Reserve the worst case (prompt plus
    /// `max_tokens`) and a hard limit is never crossed.
    /// A shared budget that cannot be reached is an error after the call was recorded here; its
    /// hold is then released when its lease passes.
    pub fn commit(self, actual: TokenCounts) -> Result<CostRecord, CostError> {
        let mut usage = self.usage.clone();
        usage.counts = actual;
        self.commit_usage(usage)
    }

    /// Like [`Reservation::commit`], with counts and the estimate flag from a finished call.
    pub fn commit_usage(mut self, actual: Usage) -> Result<CostRecord, CostError> {
        let shared_usage = (!self.shared_holds.is_empty()).then(|| actual.clone());
        let record = self.meter.record_inner(actual, Some(self.id))?;
        self.settled = true;
        let tokens = u128::from(record.counts.total()?);
        for (limit_idx, hold) in std::mem::take(&mut self.shared_holds) {
            let limit = &self.meter.shared.shared_limits[limit_idx];
            let amount = limit.amount(tokens, record.femtos);
            let spent = limit.backend.settle(&limit.name, hold, amount)?;
            if let Some(usage) = &shared_usage {
                self.meter.note_shared_spend(limit, spent, amount, usage);
            }
        }
        Ok(record)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            let mut state = self.meter.shared.state.lock();
            release(&mut state, self.id);
        }
        // A hold that cannot be released now is released when its lease passes.
        for (limit_idx, hold) in std::mem::take(&mut self.shared_holds) {
            let _ = self.meter.shared.shared_limits[limit_idx]
                .backend
                .release(hold);
        }
    }
}

fn release(state: &mut State, reservation_id: u64) {
    if let Some(held) = state.reservations.remove(&reservation_id) {
        for (budget_idx, amount) in held {
            let budget = &mut state.budgets[budget_idx];
            budget.reserved = budget.reserved.saturating_sub(amount);
        }
    }
}

impl CostMeter {
    /// A builder: built-in prices, unknown models refused, no budgets, no ledger.
    pub fn builder() -> CostMeterBuilder {
        CostMeterBuilder {
            prices: None,
            unknown_model: UnknownModel::Error,
            plugins: None,
            clock: None,
            budgets: Vec::new(),
            shared_budgets: Vec::new(),
            ledger: None,
            savings_model: None,
        }
    }

    /// The currency of every money figure.
    pub fn currency(&self) -> &'static str {
        self.shared.prices.currency()
    }

    /// Adds a budget to enforce from now on.
    pub fn add_budget(&self, budget: Budget) -> Result<(), CostError> {
        let state = BudgetState::new(budget, self.currency())?;
        self.shared.state.lock().budgets.push(state);
        Ok(())
    }

    /// The price of `counts` on `model`, in femto-units, and the warning for a model priced at
    /// zero because it is unknown.
    pub fn price(
        &self,
        model: &str,
        counts: &TokenCounts,
    ) -> Result<(u128, Option<String>), CostError> {
        match self.shared.prices.get(model) {
            Some(price) => Ok((price.cost_femtos(counts), None)),
            None => match self.shared.unknown_model {
                UnknownModel::Error => Err(CostError::UnknownModel(model.to_string())),
                UnknownModel::ZeroWithWarning => Ok((
                    0,
                    Some(format!("no price for model `{model}`; counted at zero")),
                )),
            },
        }
    }

    /// Holds `estimate` against every budget that covers its agent, task and run, or fails with
    /// [`CostError::Exceeded`] (and a `denied` gate event) if that would cross a hard limit.
    pub fn reserve(&self, estimate: &Usage) -> Result<Reservation, CostError> {
        estimate.counts.validate()?;
        let tokens = u128::from(estimate.counts.total()?);
        let (femtos, _) = self.price(&estimate.model, &estimate.counts)?;
        let now_ns = self.shared.clock.now_ns();
        let id = self.shared.next_reservation.fetch_add(1, Ordering::Relaxed);
        let refused = {
            let mut state = self.shared.state.lock();
            let mut held = Vec::new();
            let mut refused = None;
            for (budget_idx, budget) in state.budgets.iter_mut().enumerate() {
                if !covers(budget, estimate) {
                    continue;
                }
                budget.expire(now_ns);
                let amount = if budget.is_money { femtos } else { tokens };
                if !budget.fits(amount) {
                    refused = Some(BudgetExceeded::new(
                        budget.name.clone(),
                        budget.unit_name(),
                        budget.hard.unwrap_or(0),
                        budget.spent(),
                        budget.reserved,
                        amount,
                    ));
                    break;
                }
                held.push((budget_idx, amount));
            }
            if refused.is_none() {
                for &(budget_idx, amount) in &held {
                    state.budgets[budget_idx].reserved += amount;
                }
                state.reservations.insert(id, held);
            }
            refused
        };
        if let Some(exceeded) = refused {
            self.emit_gate(
                estimate,
                GateEventOutcome::Denied,
                exceeded.to_string(),
                now_ns,
            );
            return Err(exceeded.into());
        }
        let mut reservation = Reservation {
            meter: self.clone(),
            id,
            usage: estimate.clone(),
            settled: false,
            shared_holds: Vec::new(),
        };
        for (limit_idx, limit) in self.shared.shared_limits.iter().enumerate() {
            if !limit.covers(
                &estimate.agent,
                estimate.task.as_deref(),
                estimate.run.as_deref(),
            ) {
                continue;
            }
            match limit
                .backend
                .hold(&limit.name, limit.amount(tokens, femtos))
            {
                Ok(hold) => reservation.shared_holds.push((limit_idx, hold)),
                Err(error) => {
                    // Dropping the reservation releases what it holds here and elsewhere.
                    drop(reservation);
                    self.emit_gate(
                        estimate,
                        GateEventOutcome::Denied,
                        error.to_string(),
                        now_ns,
                    );
                    return Err(error);
                }
            }
        }
        Ok(reservation)
    }

    /// Records a call made without a reservation (on the shared budgets too).
    pub fn record(&self, usage: Usage) -> Result<CostRecord, CostError> {
        let shared_usage = (!self.shared.shared_limits.is_empty()).then(|| usage.clone());
        let record = self.record_inner(usage, None)?;
        let tokens = u128::from(record.counts.total()?);
        for limit in &self.shared.shared_limits {
            if limit.covers(&record.agent, record.task.as_deref(), record.run.as_deref()) {
                let amount = limit.amount(tokens, record.femtos);
                let spent = limit.backend.spend(&limit.name, amount)?;
                if let Some(usage) = &shared_usage {
                    self.note_shared_spend(limit, spent, amount, usage);
                }
            }
        }
        Ok(record)
    }

    /// Emits the `allowed` gate event saying that a shared budget passed its soft limit, when
    /// the spend that took it to `spent` (adding `amount`) is the one that crossed it: once for
    /// the whole fleet.
    fn note_shared_spend(&self, limit: &SharedLimit, spent: u64, amount: u64, usage: &Usage) {
        if let Some(soft) = limit.crossed_soft(spent, amount) {
            let reason = format!(
                "shared budget `{}` passed its soft limit: {spent} of {soft} {}",
                limit.name,
                limit.unit_name()
            );
            self.emit_gate(
                usage,
                GateEventOutcome::Allowed,
                reason,
                self.shared.clock.now_ns(),
            );
        }
    }

    /// Records that `agent` did not spend `tokens` input tokens on `model` (the ContextStore
    /// served sections instead of whole files, say), valued at the model's input price.
    pub fn record_saved(
        &self,
        agent: &str,
        task: Option<&str>,
        run: Option<&str>,
        model: &str,
        tokens: u64,
    ) -> Result<CostRecord, CostError> {
        let counts = TokenCounts {
            input: tokens,
            ..TokenCounts::default()
        };
        let (femtos, warning) = self.price(model, &counts)?;
        let record = CostRecord {
            kind: RecordKind::Saved,
            at_ns: self.shared.clock.now_ns(),
            agent: agent.to_string(),
            task: task.map(str::to_string),
            run: run.map(str::to_string),
            model: model.to_string(),
            provider: None,
            counts: TokenCounts::default(),
            saved_tokens: tokens,
            femtos,
            currency: self.currency().to_string(),
            estimated: false,
            warning,
        };
        self.shared.state.lock().report.add(&record);
        self.finish(record)
    }

    /// Totals so far, by agent, task, model and day, spent and saved side by side.
    pub fn report(&self) -> Report {
        self.shared.state.lock().report.clone()
    }

    /// Whether a call of `agent` for `task` in `run` may go ahead: `Err` naming the first budget
    /// covering it whose hard limit is reached by what is spent and reserved, else whether a
    /// covering budget's spending is past its soft limit.
    pub fn check(
        &self,
        agent: &str,
        task: Option<&str>,
        run: Option<&str>,
    ) -> Result<BudgetStanding, BudgetExceeded> {
        let now_ns = self.shared.clock.now_ns();
        let mut state = self.shared.state.lock();
        let mut standing = BudgetStanding::Within;
        for budget in state.budgets.iter_mut() {
            if !budget.budget.scope.covers(agent, task, run) {
                continue;
            }
            budget.expire(now_ns);
            let used = budget.spent().saturating_add(budget.reserved);
            if budget.hard.is_some_and(|hard| used >= hard) {
                return Err(BudgetExceeded::new(
                    budget.name.clone(),
                    budget.unit_name(),
                    budget.hard.unwrap_or(0),
                    budget.spent(),
                    budget.reserved,
                    0,
                ));
            }
            if budget.soft.is_some_and(|soft| budget.spent() > soft) {
                standing = BudgetStanding::OverSoft(budget.name.clone());
            }
        }
        drop(state);
        for limit in &self.shared.shared_limits {
            if !limit.covers(agent, task, run) {
                continue;
            }
            // Fail closed: a shared budget that cannot be read counts as spent.
            let shared = limit.backend.standing(&limit.name).ok().flatten();
            let (hard, spent, reserved) = shared.map_or((0, 0, 0), |standing| {
                (standing.hard, standing.spent, standing.reserved)
            });
            if shared.is_none() || spent.saturating_add(reserved) >= hard {
                return Err(BudgetExceeded::new(
                    limit.name.clone(),
                    "shared units".into(),
                    u128::from(hard),
                    u128::from(spent),
                    u128::from(reserved),
                    0,
                ));
            }
            if limit.soft.is_some_and(|soft| spent > soft) {
                standing = BudgetStanding::OverSoft(limit.name.clone());
            }
        }
        Ok(standing)
    }

    /// The price table the meter uses.
    pub fn prices(&self) -> &PriceTable {
        &self.shared.prices
    }

    /// The meter as a plugin that does not keep it alive: for a registry the meter itself emits
    /// to, so that the two do not hold each other forever. Once the meter is dropped, the plugin
    /// fails the `budget` gate (fail closed) and ignores events.
    pub(crate) fn weak_plugin(&self) -> WeakMeter {
        WeakMeter {
            shared: Arc::downgrade(&self.shared),
        }
    }

    pub(crate) fn savings_model(&self) -> Option<&str> {
        self.shared.savings_model.as_deref()
    }

    fn record_inner(
        &self,
        usage: Usage,
        reservation_id: Option<u64>,
    ) -> Result<CostRecord, CostError> {
        usage.counts.validate()?;
        let tokens = u128::from(usage.counts.total()?);
        let (femtos, warning) = self.price(&usage.model, &usage.counts)?;
        let now_ns = self.shared.clock.now_ns();
        let record = CostRecord {
            kind: RecordKind::Spent,
            at_ns: now_ns,
            agent: usage.agent.clone(),
            task: usage.task.clone(),
            run: usage.run.clone(),
            model: usage.model.clone(),
            provider: usage.provider.clone(),
            counts: usage.counts,
            saved_tokens: 0,
            femtos,
            currency: self.currency().to_string(),
            estimated: usage.estimated,
            warning,
        };
        let mut notices = Vec::new();
        {
            let mut state = self.shared.state.lock();
            if let Some(reservation_id) = reservation_id {
                release(&mut state, reservation_id);
            }
            for budget in state.budgets.iter_mut() {
                if !covers(budget, &usage) {
                    continue;
                }
                budget.expire(now_ns);
                let amount = if budget.is_money { femtos } else { tokens };
                budget.spend(amount, now_ns);
                let spent = budget.spent();
                if let Some(hard) = budget.hard {
                    if budget.spent() > hard {
                        notices.push((
                            GateEventOutcome::Denied,
                            format!(
                                "budget `{}` overspent: {} of {} {}; reservations are refused until it has room",
                                budget.name, budget.spent(), hard, budget.unit_name()
                            ),
                        ));
                    }
                }
                match budget.soft {
                    Some(soft) if spent > soft && !budget.soft_warned => {
                        budget.soft_warned = true;
                        notices.push((
                            GateEventOutcome::Allowed,
                            format!(
                                "budget `{}` passed its soft limit: {} of {} {}",
                                budget.name,
                                spent,
                                soft,
                                budget.unit_name()
                            ),
                        ));
                    }
                    Some(soft) if spent <= soft => budget.soft_warned = false,
                    _ => {}
                }
            }
            state.report.add(&record);
        }
        let result = self.finish(record);
        for (outcome, reason) in notices {
            self.emit_gate(&usage, outcome, reason, now_ns);
        }
        result
    }

    /// Emits the record's event and appends it to the ledger.
    fn finish(&self, record: CostRecord) -> Result<CostRecord, CostError> {
        if self.shared.plugins.listens(EventKindName::Cost) {
            let run_id = record.run.clone().unwrap_or_default();
            let event = Event {
                seq: self.shared.sequencer.next(&run_id),
                run_id,
                agent_id: record.agent.clone(),
                task_id: record.task.clone(),
                timestamp_ns: record.at_ns,
                span_id: None,
                parent_span_id: None,
                kind: record.to_event_kind(),
            };
            self.shared.plugins.emit(&event);
        }
        if let Some(ledger) = &self.shared.ledger {
            ledger.lock().append(&record)?;
        }
        Ok(record)
    }

    fn emit_gate(&self, usage: &Usage, outcome: GateEventOutcome, reason: String, now_ns: u64) {
        if !self.shared.plugins.listens(EventKindName::Gate) {
            return;
        }
        let run_id = usage.run.clone().unwrap_or_default();
        let event = Event {
            seq: self.shared.sequencer.next(&run_id),
            run_id,
            agent_id: usage.agent.clone(),
            task_id: usage.task.clone(),
            timestamp_ns: now_ns,
            span_id: None,
            parent_span_id: None,
            kind: EventKind::Gate(GateEvent {
                request_json: serde_json::to_string(usage).unwrap_or_default(),
                outcome,
                rule: None,
                gates: vec![super::BUDGET_GATE.to_string()],
                approval_id: None,
                approver: None,
                reason,
            }),
        };
        self.shared.plugins.emit(&event);
    }
}

/// Where a call stands against the budgets that cover it, when no hard limit is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetStanding {
    /// Every covering budget is within its limits.
    Within,
    /// A covering budget (named) is past its soft limit.
    OverSoft(String),
}

fn covers(budget: &BudgetState, usage: &Usage) -> bool {
    budget
        .budget
        .scope
        .covers(&usage.agent, usage.task.as_deref(), usage.run.as_deref())
}
