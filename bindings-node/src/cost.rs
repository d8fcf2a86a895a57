//! `CostMeter`: token counts, prices, budgets and reservations.

use fourfold::cost::{
    count, count_chat, Budget, ChatMessage as CoreChatMessage, CostMeter as CoreCostMeter,
    CostRecord, Provider, Reservation as CoreReservation, Scope, TokenCounts as CoreTokenCounts,
    UnknownModel, Usage,
};
use napi::bindgen_prelude::Env;
use napi_derive::napi;
use serde_json::Value;

use crate::error::{shield, Fallible, FourfoldError};
use crate::json::to_json;

/// The tokens of one model call; absent counts are zero.
#[napi(object)]
#[derive(Clone, Default)]
pub struct TokenCounts {
    /// Prompt tokens not read from or written to the cache.
    pub input: Option<i64>,
    /// Completion tokens, reasoning included.
    pub output: Option<i64>,
    /// Prompt tokens read from the provider's cache.
    pub cache_read: Option<i64>,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: Option<i64>,
    /// Output tokens spent on reasoning (at most `output`).
    pub reasoning: Option<i64>,
}

/// The core counts for `counts`.
pub fn to_counts(counts: &TokenCounts) -> Fallible<CoreTokenCounts> {
    let field = |value: Option<i64>, name: &str| -> Fallible<u64> {
        let value = value.unwrap_or(0);
        u64::try_from(value).map_err(|_| {
            FourfoldError::invalid(format!(
                "token count `{name}` must be a non-negative integer, not {value}"
            ))
        })
    };
    Ok(CoreTokenCounts {
        input: field(counts.input, "input")?,
        output: field(counts.output, "output")?,
        cache_read: field(counts.cache_read, "cacheRead")?,
        cache_write: field(counts.cache_write, "cacheWrite")?,
        reasoning: field(counts.reasoning, "reasoning")?,
    })
}

/// A cost record as JS sees it: the core record plus its price in micro-units.
pub fn record_json(record: &CostRecord) -> Fallible<Value> {
    let mut value = to_json(record)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("micros".into(), Value::from(record.micros()));
        // Femto-units overflow a JS number's exact range; `micros` is the figure to use.
        object.remove("femtos");
    }
    Ok(value)
}

/// A budget, as `fourfold.toml`'s `[[budget]]` writes it.
#[napi(object)]
pub struct BudgetOptions {
    /// `fleet`, `agent:NAME`, `task:ID` or `run:ID`.
    pub scope: String,
    /// `tokens`, or a currency such as `USD`.
    pub unit: String,
    /// The soft limit: past it, a warning event, and the budget gate asks a person.
    pub soft: Option<f64>,
    /// The hard limit: a reservation that would cross it is refused.
    pub hard: Option<f64>,
    /// A rolling window in seconds; lifetime without it.
    pub window_seconds: Option<i64>,
}

/// The core budget for `options`.
pub fn to_budget(options: &BudgetOptions) -> Fallible<Budget> {
    let scope = match options.scope.split_once(':') {
        None if options.scope == "fleet" => Scope::Fleet,
        Some(("agent", name)) if !name.is_empty() => Scope::Agent(name.to_string()),
        Some(("task", id)) if !id.is_empty() => Scope::Task(id.to_string()),
        Some(("run", id)) if !id.is_empty() => Scope::Run(id.to_string()),
        _ => {
            return Err(FourfoldError::invalid(format!(
                "budget scope `{}` is not `fleet`, `agent:NAME`, `task:ID` or `run:ID`",
                options.scope
            )))
        }
    };
    let mut budget = if options.unit == "tokens" {
        Budget::tokens(scope)
    } else {
        Budget::money(scope, &options.unit)
    };
    if let Some(soft) = options.soft {
        budget = budget.soft(soft);
    }
    if let Some(hard) = options.hard {
        budget = budget.hard(hard);
    }
    if let Some(seconds) = options.window_seconds {
        budget = budget.rolling(crate::context::to_u64(seconds, "windowSeconds")?);
    }
    Ok(budget)
}

/// How to build a `CostMeter`.
#[napi(object)]
pub struct CostMeterOptions {
    /// What to do with a model the price table does not know: `error` (default) or `zero`.
    #[napi(ts_type = "'error' | 'zero'")]
    pub unknown_model: Option<String>,
    /// The model that values the tokens the ContextStore saves.
    pub savings_model: Option<String>,
    /// A JSON Lines ledger file every record is appended to.
    pub ledger: Option<String>,
    /// The budgets.
    pub budgets: Option<Vec<BudgetOptions>>,
}

/// The core meter builder for `options`.
pub fn meter_builder(options: &CostMeterOptions) -> Fallible<fourfold::cost::CostMeterBuilder> {
    let mut builder = CoreCostMeter::builder();
    if let Some(name) = &options.unknown_model {
        let unknown_model =
            UnknownModel::parse(name, "unknownModel").map_err(FourfoldError::invalid)?;
        builder = builder.unknown_model(unknown_model);
    }
    if let Some(model) = &options.savings_model {
        builder = builder.savings_model(model);
    }
    if let Some(ledger) = &options.ledger {
        builder = builder.ledger(ledger);
    }
    for budget in options.budgets.iter().flatten() {
        builder = builder.budget(to_budget(budget)?);
    }
    Ok(builder)
}

/// One model call to record.
#[napi(object)]
pub struct UsageInput {
    /// The agent that made the call.
    pub agent: String,
    /// The model, as the price table names it (`gpt-4o`).
    pub model: String,
    /// The tokens used.
    pub counts: TokenCounts,
    /// The task, if any.
    pub task: Option<String>,
    /// The run, if any.
    pub run: Option<String>,
    /// Who serves the model (`openai`, `anthropic`, ...).
    pub provider: Option<String>,
    /// Whether the counts are an estimate.
    pub estimated: Option<bool>,
}

fn to_usage(input: &UsageInput) -> Fallible<Usage> {
    let mut usage = Usage::new(
        input.agent.clone(),
        input.model.clone(),
        to_counts(&input.counts)?,
    );
    usage.task = input.task.clone();
    usage.run = input.run.clone();
    usage.provider = input.provider.clone();
    usage.estimated = input.estimated.unwrap_or(false);
    Ok(usage)
}

/// Exact token counts, prices, and budgets that stop work.
#[napi]
pub struct CostMeter {
    meter: CoreCostMeter,
}

impl CostMeter {
    /// A JS meter sharing `meter`.
    pub fn wrap(meter: CoreCostMeter) -> CostMeter {
        CostMeter { meter }
    }
}

#[napi]
impl CostMeter {
    /// A meter with the built-in price table.
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<CostMeterOptions>) -> napi::Result<CostMeter> {
        shield(&env, || {
            let builder = match &options {
                Some(options) => meter_builder(options)?,
                None => CoreCostMeter::builder(),
            };
            Ok(CostMeter {
                meter: builder.build()?,
            })
        })
    }

    /// Records a finished call's usage: priced, and counted against the budgets.
    #[napi(ts_return_type = "import('./lib/types').CostRecord")]
    pub fn record(&self, env: Env, usage: UsageInput) -> napi::Result<Value> {
        shield(&env, || record_json(&self.meter.record(to_usage(&usage)?)?))
    }

    /// Holds a call's worst case against every budget covering it, before the call.
    #[napi]
    pub fn reserve(&self, env: Env, estimate: UsageInput) -> napi::Result<Reservation> {
        shield(&env, || {
            Ok(Reservation::wrap(
                self.meter.reserve(&to_usage(&estimate)?)?,
            ))
        })
    }

    /// Adds a budget.
    #[napi]
    pub fn add_budget(&self, env: Env, budget: BudgetOptions) -> napi::Result<()> {
        shield(&env, || Ok(self.meter.add_budget(to_budget(&budget)?)?))
    }

    /// Totals so far by agent, task, model and day, spent and saved side by side.
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn report(&self, env: Env) -> napi::Result<Value> {
        shield(&env, || {
            Ok(crate::json::camel_keys(self.meter.report().to_json()))
        })
    }

    /// The currency of the meter's prices.
    #[napi(getter)]
    pub fn currency(&self) -> String {
        self.meter.currency().to_string()
    }
}

/// A model call's worst case, held against the budgets until it is committed or released.
#[napi]
pub struct Reservation {
    reservation: Option<CoreReservation>,
}

impl Reservation {
    /// A JS reservation owning `reservation`.
    pub fn wrap(reservation: CoreReservation) -> Reservation {
        Reservation {
            reservation: Some(reservation),
        }
    }
}

#[napi]
impl Reservation {
    /// Records the call's actual counts in place of the estimate.
    #[napi(ts_return_type = "import('./lib/types').CostRecord")]
    pub fn commit(&mut self, env: Env, actual: TokenCounts) -> napi::Result<Value> {
        shield(&env, || {
            let counts = to_counts(&actual)?;
            let reservation = self.reservation.take().ok_or_else(|| {
                FourfoldError::invalid("this reservation was already committed or released")
            })?;
            record_json(&reservation.commit(counts)?)
        })
    }

    /// Releases the hold without recording anything.
    #[napi]
    pub fn release(&mut self, env: Env) -> napi::Result<()> {
        shield(&env, || {
            self.reservation = None;
            Ok(())
        })
    }
}

/// A token count, with its encoding and whether it is an estimate.
#[napi(object)]
pub struct TokenCount {
    /// The number of tokens.
    pub tokens: i64,
    /// `o200k_base` or `cl100k_base`.
    pub encoding: String,
    /// True when the model's own tokenizer is not public: an `o200k_base` estimate.
    pub estimated: bool,
}

impl From<fourfold::cost::TokenCount> for TokenCount {
    fn from(count: fourfold::cost::TokenCount) -> TokenCount {
        TokenCount {
            tokens: count.tokens as i64,
            encoding: count.encoding.name().to_string(),
            estimated: count.estimated,
        }
    }
}

/// Counts the tokens of `text` for a model (`gpt-4o`) or an encoding (`o200k_base`).
#[napi]
pub fn count_tokens(env: Env, model_or_encoding: String, text: String) -> napi::Result<TokenCount> {
    shield(&env, || Ok(count(&model_or_encoding, &text)?.into()))
}

/// One chat message.
#[napi(object)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// The text.
    pub content: String,
    /// The participant's name, if any.
    pub name: Option<String>,
}

/// Counts the prompt tokens of a chat, as the chat completions API bills them.
#[napi]
pub fn count_chat_tokens(
    env: Env,
    model_or_encoding: String,
    messages: Vec<ChatMessage>,
) -> napi::Result<TokenCount> {
    shield(&env, || {
        let messages: Vec<CoreChatMessage> = messages
            .into_iter()
            .map(|message| CoreChatMessage {
                role: message.role,
                content: message.content,
                name: message.name,
            })
            .collect();
        Ok(count_chat(&model_or_encoding, &messages)?.into())
    })
}

/// Reads a provider's usage object (`openai`, `anthropic` or `gemini`) as token counts.
#[napi(
    ts_args_type = "provider: 'openai' | 'anthropic' | 'gemini', usage: Record<string, unknown>"
)]
pub fn usage_counts(env: Env, provider: String, usage: Value) -> napi::Result<TokenCounts> {
    shield(&env, || {
        let provider = Provider::from_name(&provider).ok_or_else(|| {
            FourfoldError::invalid(format!(
                "unknown provider `{provider}`; expected `openai`, `anthropic` or `gemini`"
            ))
        })?;
        let counts = CoreTokenCounts::from_usage_value(provider, &usage)?;
        Ok(TokenCounts {
            input: Some(counts.input as i64),
            output: Some(counts.output as i64),
            cache_read: Some(counts.cache_read as i64),
            cache_write: Some(counts.cache_write as i64),
            reasoning: Some(counts.reasoning as i64),
        })
    })
}
