//! `fourfold.CostMeter`, `Budget`, `CostRecord`, `Reservation` and the token counters: the cost face.

use std::path::PathBuf;

use fourfold::cost::{
    femtos_to_micros, Budget as CoreBudget, ChatMessage, PriceTable, Scope, TokenCounts,
    UnknownModel,
};
use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::convert::{from_python, python_bool, repr, to_python};
use crate::error::{invalid_request, no_panic, raise, OrRaise};

/// Token counts from the keyword arguments every binding method takes.
pub(crate) fn token_counts(
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    reasoning_tokens: u64,
) -> TokenCounts {
    TokenCounts {
        input: input_tokens,
        output: output_tokens,
        cache_read: cache_read_tokens,
        cache_write: cache_write_tokens,
        reasoning: reasoning_tokens,
    }
}

/// A limit on the tokens or money of the fleet, an agent, a task or a run.
#[pyclass(frozen, from_py_object, module = "fourfold._fourfold")]
#[derive(Clone)]
pub struct Budget {
    pub(crate) inner: CoreBudget,
    scope: String,
    unit: String,
}

#[pymethods]
impl Budget {
    /// `scope` is `fleet`, `agent:NAME`, `task:ID` or `run:ID`; `unit` is `tokens` or a currency
    /// (`USD`). A call that would cross `hard` is refused; crossing `soft` records a warning.
    /// With `window_seconds` the limit applies to a rolling window, else to the budget's lifetime.
    #[new]
    #[pyo3(signature = (scope, *, unit="tokens", soft=None, hard=None, window_seconds=None))]
    fn new(
        scope: &str,
        unit: &str,
        soft: Option<f64>,
        hard: Option<f64>,
        window_seconds: Option<u64>,
    ) -> PyResult<Budget> {
        let parsed: Scope = scope.parse().or_raise()?;
        let mut budget = if unit == "tokens" {
            CoreBudget::tokens(parsed)
        } else {
            CoreBudget::money(parsed, unit)
        };
        if soft.is_none() && hard.is_none() {
            return Err(raise(
                "ConfigError",
                format!("budget `{scope}` has neither `soft` nor `hard`"),
                Vec::new(),
            ));
        }
        if let Some(soft) = soft {
            budget = budget.soft(soft);
        }
        if let Some(hard) = hard {
            budget = budget.hard(hard);
        }
        if let Some(seconds) = window_seconds {
            budget = budget.rolling(seconds);
        }
        Ok(Budget {
            inner: budget,
            scope: scope.to_string(),
            unit: unit.to_string(),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Budget(scope={}, unit={})",
            repr(&self.scope),
            repr(&self.unit)
        )
    }
}

/// One priced call (or one record of tokens saved).
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct CostRecord {
    /// `spent` or `saved`.
    #[pyo3(get)]
    kind: String,
    /// The agent.
    #[pyo3(get)]
    agent: String,
    /// The model.
    #[pyo3(get)]
    model: String,
    /// Prompt tokens outside the cache.
    #[pyo3(get)]
    input_tokens: u64,
    /// Completion tokens.
    #[pyo3(get)]
    output_tokens: u64,
    /// Prompt tokens read from the cache.
    #[pyo3(get)]
    cache_read_tokens: u64,
    /// Prompt tokens written to the cache.
    #[pyo3(get)]
    cache_write_tokens: u64,
    /// Output tokens spent on reasoning.
    #[pyo3(get)]
    reasoning_tokens: u64,
    /// Tokens saved (for a `saved` record).
    #[pyo3(get)]
    saved_tokens: u64,
    /// The price in millionths of the currency unit, rounded.
    #[pyo3(get)]
    cost_micros: u128,
    /// The currency.
    #[pyo3(get)]
    currency: String,
    /// Whether the counts are an estimate (no public tokenizer, no provider usage).
    #[pyo3(get)]
    estimated: bool,
    /// A warning, such as a soft budget crossed or an unknown model priced at zero.
    #[pyo3(get)]
    warning: Option<String>,
    inner: fourfold::cost::CostRecord,
}

impl From<fourfold::cost::CostRecord> for CostRecord {
    fn from(record: fourfold::cost::CostRecord) -> CostRecord {
        let kind = serde_json::to_value(record.kind)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        CostRecord {
            kind,
            agent: record.agent.clone(),
            model: record.model.clone(),
            input_tokens: record.counts.input,
            output_tokens: record.counts.output,
            cache_read_tokens: record.counts.cache_read,
            cache_write_tokens: record.counts.cache_write,
            reasoning_tokens: record.counts.reasoning,
            saved_tokens: record.saved_tokens,
            cost_micros: femtos_to_micros(record.femtos),
            currency: record.currency.clone(),
            estimated: record.estimated,
            warning: record.warning.clone(),
            inner: record,
        }
    }
}

#[pymethods]
impl CostRecord {
    /// The price as a float in the currency unit (`cost_micros / 1e6`).
    #[getter]
    fn cost(&self) -> f64 {
        self.cost_micros as f64 / 1e6
    }

    /// The record as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "CostRecord(kind={}, agent={}, model={}, input_tokens={}, output_tokens={}, cost_micros={}, currency={})",
            repr(&self.kind),
            repr(&self.agent),
            repr(&self.model),
            self.input_tokens,
            self.output_tokens,
            self.cost_micros,
            repr(&self.currency)
        )
    }
}

/// Tokens held against the budgets before a call; `commit` the actual counts after it. A
/// reservation neither committed nor released is released when garbage-collected.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Reservation {
    inner: Mutex<Option<fourfold::cost::Reservation>>,
}

impl Reservation {
    pub(crate) fn new(reservation: fourfold::cost::Reservation) -> Reservation {
        Reservation {
            inner: Mutex::new(Some(reservation)),
        }
    }
}

#[pymethods]
impl Reservation {
    /// Settles the reservation at the actual counts and records the call.
    #[pyo3(signature = (*, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0))]
    fn commit(
        &self,
        py: Python<'_>,
        input_tokens: u64,
        output_tokens: u64,
        cache_read_tokens: u64,
        cache_write_tokens: u64,
        reasoning_tokens: u64,
    ) -> PyResult<CostRecord> {
        no_panic(|| {
            let Some(reservation) = self.inner.lock().take() else {
                return Err(invalid_request("this reservation was already settled"));
            };
            let counts = token_counts(
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
            );
            let record = py.detach(|| reservation.commit(counts)).or_raise()?;
            Ok(CostRecord::from(record))
        })
    }

    /// Gives the held tokens back without recording a call (the call did not happen).
    fn release(&self) {
        drop(self.inner.lock().take());
    }

    /// Whether the reservation is still held.
    #[getter]
    fn held(&self) -> bool {
        self.inner.lock().is_some()
    }

    fn __repr__(&self) -> String {
        format!("Reservation(held={})", python_bool(self.held()))
    }
}

/// Prices calls from LiteLLM's table, keeps budgets that refuse the call that would cross them,
/// and counts tokens saved. Safe to share across threads.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct CostMeter {
    pub(crate) inner: fourfold::cost::CostMeter,
}

/// The meter builder from the keyword arguments `CostMeter` and `Fourfold` take.
pub(crate) fn meter_builder(
    budgets: Vec<Budget>,
    prices: Option<PathBuf>,
    currency: &str,
    unknown_model: &str,
    savings_model: Option<String>,
    ledger: Option<PathBuf>,
) -> PyResult<fourfold::cost::CostMeterBuilder> {
    let mut builder = fourfold::cost::CostMeter::builder();
    if let Some(path) = prices {
        let text = std::fs::read_to_string(&path).map_err(|error| {
            raise(
                "ConfigError",
                format!("cannot read prices `{}`: {error}", path.display()),
                Vec::new(),
            )
        })?;
        builder = builder.prices(PriceTable::from_litellm_json(&text, currency).or_raise()?);
    }
    let unknown_model = UnknownModel::parse(unknown_model, "unknown_model")
        .map_err(|message| raise("ConfigError", message, Vec::new()))?;
    builder = builder.unknown_model(unknown_model);
    if let Some(model) = savings_model {
        builder = builder.savings_model(model);
    }
    if let Some(ledger) = ledger {
        builder = builder.ledger(ledger);
    }
    for budget in budgets {
        builder = builder.budget(budget.inner);
    }
    Ok(builder)
}

#[pymethods]
impl CostMeter {
    /// A meter with `budgets`, prices from a LiteLLM `model_prices_and_context_window.json` at
    /// `prices` (the built-in table without it), `unknown_model` either `error` (refuse) or
    /// `zero` (price at zero with a warning), the model that values saved tokens, and an optional
    /// JSON Lines ledger file.
    #[new]
    #[pyo3(signature = (*, budgets=Vec::new(), prices=None, currency="USD", unknown_model="error", savings_model=None, ledger=None))]
    fn new(
        budgets: Vec<Budget>,
        prices: Option<PathBuf>,
        currency: &str,
        unknown_model: &str,
        savings_model: Option<String>,
        ledger: Option<PathBuf>,
    ) -> PyResult<CostMeter> {
        no_panic(|| {
            let builder = meter_builder(
                budgets,
                prices,
                currency,
                unknown_model,
                savings_model,
                ledger,
            )?;
            Ok(CostMeter {
                inner: builder.build().or_raise()?,
            })
        })
    }

    /// The currency of the prices.
    #[getter]
    fn currency(&self) -> &'static str {
        self.inner.currency()
    }

    /// The price of a call in millionths of the currency unit (raises `UnknownModel` for a model
    /// the table lacks, unless the meter prices those at zero).
    #[pyo3(signature = (model, *, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0))]
    fn price(
        &self,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
        cache_read_tokens: u64,
        cache_write_tokens: u64,
        reasoning_tokens: u64,
    ) -> PyResult<u128> {
        no_panic(|| {
            let counts = token_counts(
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
            );
            let (femtos, _) = self.inner.price(model, &counts).or_raise()?;
            Ok(femtos_to_micros(femtos))
        })
    }

    /// Records a call of `agent` to `model` that happened. A call that takes a budget past its
    /// hard limit is still recorded (it was made), with a `denied` budget gate event, and later
    /// reservations and guarded actions under that budget are refused.
    #[pyo3(signature = (agent, model, *, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0, task=None, run=None, estimated=false))]
    fn record(
        &self,
        py: Python<'_>,
        agent: &str,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
        cache_read_tokens: u64,
        cache_write_tokens: u64,
        reasoning_tokens: u64,
        task: Option<String>,
        run: Option<String>,
        estimated: bool,
    ) -> PyResult<CostRecord> {
        no_panic(|| {
            let counts = token_counts(
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
            );
            let mut usage = fourfold::cost::Usage::new(agent, model, counts);
            usage.task = task;
            usage.run = run;
            usage.estimated = estimated;
            let record = py.detach(|| self.inner.record(usage)).or_raise()?;
            Ok(CostRecord::from(record))
        })
    }

    /// Holds an estimate against the budgets before a call; raises `BudgetExceeded` when it would
    /// cross a hard limit.
    #[pyo3(signature = (agent, model, *, input_tokens=0, output_tokens=0, task=None, run=None))]
    fn reserve(
        &self,
        py: Python<'_>,
        agent: &str,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
        task: Option<String>,
        run: Option<String>,
    ) -> PyResult<Reservation> {
        no_panic(|| {
            let counts = token_counts(input_tokens, output_tokens, 0, 0, 0);
            let mut usage = fourfold::cost::Usage::new(agent, model, counts);
            usage.task = task;
            usage.run = run;
            let reservation = py.detach(|| self.inner.reserve(&usage)).or_raise()?;
            Ok(Reservation::new(reservation))
        })
    }

    /// Spent and saved, in total and by agent, task, model and day (micros of the currency).
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| to_python(py, &py.detach(|| self.inner.report().to_json())))
    }

    /// Counts `text` in the tokens of `model_or_encoding` (see `count_tokens`).
    fn count(&self, py: Python<'_>, model_or_encoding: &str, text: &str) -> PyResult<u64> {
        count_tokens(py, model_or_encoding, text)
    }

    fn __repr__(&self) -> String {
        format!("CostMeter(currency={})", repr(self.inner.currency()))
    }
}

/// The number of tokens of `text` for a model (`gpt-4o`, `gpt-4`, ...) or an encoding
/// (`o200k_base`, `cl100k_base`), equal to OpenAI's `tiktoken`. For models without a public
/// tokenizer (Claude, Gemini) the count is the `o200k_base` count, an estimate: use
/// `is_estimate(model)` to label it.
#[pyfunction]
pub(crate) fn count_tokens(py: Python<'_>, model_or_encoding: &str, text: &str) -> PyResult<u64> {
    no_panic(|| {
        let count = py
            .detach(|| fourfold::cost::count(model_or_encoding, text))
            .or_raise()?;
        Ok(count.tokens)
    })
}

/// Whether counts for `model_or_encoding` are estimates (the model's tokenizer is not public).
#[pyfunction]
pub(crate) fn is_estimate(model_or_encoding: &str) -> PyResult<bool> {
    no_panic(|| {
        let (_, estimated) = fourfold::cost::resolve(model_or_encoding).or_raise()?;
        Ok(estimated)
    })
}

/// The tokens of a chat, with the per-message overhead OpenAI documents; `messages` are dicts with
/// `role`, `content` and optionally `name`.
#[pyfunction]
pub(crate) fn count_chat_tokens(
    py: Python<'_>,
    model_or_encoding: &str,
    messages: &Bound<'_, PyAny>,
) -> PyResult<u64> {
    no_panic(|| {
        let messages: Vec<ChatMessage> = from_python(messages)?;
        let count = py
            .detach(|| fourfold::cost::count_chat(model_or_encoding, &messages))
            .or_raise()?;
        Ok(count.tokens)
    })
}
