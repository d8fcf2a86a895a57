//! `fourfold.toml`: the four controls of a fleet in one file.
//!
//! ```toml
//! [policy]
//! file = "policy.toml"              # required; paths are relative to this file
//!
//! [trace]
//! file = "traces/fourfold.trace"    # the hash-chained trace file
//! jsonl = "traces/fourfold.jsonl"   # also JSON Lines (optional)
//! otlp_endpoint = "http://localhost:4318/v1/traces"  # also to an OTLP/HTTP collector (optional)
//! service_name = "support-agents"   # service.name of the exported spans (default `fourfold`)
//! postgres = true                   # also into the fleet's [store] (table fourfold_trace)
//!
//! [context]
//! snapshot = ".fourfold/context"    # where snapshots are saved (optional: in memory)
//! archive = ["legacy/"]             # folders whose copies are never canonical
//! pin = ["docs/concepts/models.md"] # documents canonical over their copies
//! scope = "policy"                  # serve an agent only what the policy lets it read (or "all")
//! shared = false                    # true: follow the fleet's shared documents in [store]
//!
//! [context.rerank]                  # optional: a reranking model run as a program, started
//!                                   # at the first ask that reranks
//! command = ["python3", "rerank.py"] # JSON Lines on its stdin and stdout (CommandReranker)
//! depth = 20                        # how many of the search's best candidates it orders
//! timeout_seconds = 10              # a slower reply keeps the search's order for that ask
//! processes = 1                     # copies of the program, to rerank as many asks at once
//! dir = "."                         # optional, relative to this file
//!
//! [cost]
//! prices = "prices.json"            # LiteLLM's format (optional: the built-in table)
//! currency = "USD"
//! unknown_model = "error"           # or "zero": price at zero, with a warning
//! savings_model = "gpt-4o"          # values the tokens the ContextStore saves
//! ledger = "traces/cost.jsonl"      # for `fourfold cost report`
//!
//! [[budget]]
//! scope = "agent:coder"             # fleet, agent:NAME, task:ID or run:ID
//! unit = "tokens"                   # or a currency, such as USD
//! soft = 50000
//! hard = 100000
//! window_seconds = 86400            # rolling; lifetime without it
//!
//! [store]                           # optional: a PostgreSQL server the fleet shares
//! url = "postgresql://fourfold@db.internal/fourfold"  # approvals and shared budgets live there
//!
//! [[budget]]
//! scope = "fleet"
//! unit = "USD"
//! hard = 500
//! shared = true                     # kept in the store: every process spends against it
//!
//! [[command_gate]]                  # a plugin gate: passes when the command exits with 0
//! name = "tests-pass"               # declare it in the policy: [gates.tests-pass] kind = "plugin"
//! command = ["cargo", "test"]       # run without a shell
//! dir = "."                         # optional, relative to this file
//! timeout_seconds = 600             # optional: killed and failed after this long
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::context::{CommandReranker, ContextStore};
use crate::cost::{Budget, BudgetError, CostMeter, PriceTable, Scope, UnknownModel};
use crate::policy::{Policy, PolicyBuilder};
use crate::store::FileStore;
use crate::trace::{
    otlp_certificate_from_env, otlp_headers_from_env, Durability, JsonLinesSink, OtlpHttpOptions,
    OtlpHttpSink, TraceFileSink, Tracer,
};

use super::command::CommandGate;
use super::err::ConfigError;
use super::fourfold::{ContextScope, Fourfold, FourfoldBuilder};

/// How many of the search's best candidates `[context.rerank]` orders unless told.
const DEFAULT_RERANK_DEPTH: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    policy: PolicySection,
    store: Option<StoreSection>,
    trace: Option<TraceSection>,
    context: Option<ContextSection>,
    cost: Option<CostSection>,
    #[serde(default)]
    budget: Vec<BudgetSection>,
    #[serde(default)]
    command_gate: Vec<CommandGateSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandGateSection {
    name: String,
    command: Vec<String>,
    dir: Option<PathBuf>,
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceSection {
    file: Option<PathBuf>,
    jsonl: Option<PathBuf>,
    otlp_endpoint: Option<String>,
    service_name: Option<String>,
    #[serde(default)]
    postgres: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextSection {
    snapshot: Option<PathBuf>,
    #[serde(default)]
    shared: bool,
    #[serde(default)]
    archive: Vec<String>,
    #[serde(default)]
    pin: Vec<String>,
    scope: Option<String>,
    rerank: Option<RerankSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RerankSection {
    command: Vec<String>,
    depth: Option<usize>,
    timeout_seconds: Option<f64>,
    processes: Option<usize>,
    dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CostSection {
    prices: Option<PathBuf>,
    currency: Option<String>,
    unknown_model: Option<String>,
    savings_model: Option<String>,
    ledger: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSection {
    scope: String,
    unit: String,
    soft: Option<f64>,
    hard: Option<f64>,
    window_seconds: Option<u64>,
    #[serde(default)]
    shared: bool,
}

impl Fourfold {
    /// Builds the controls a `fourfold.toml` describes (see the module docs of
    /// [`crate::session`]); relative paths in it are relative to the file's folder.
    pub fn from_config(path: impl AsRef<Path>) -> Result<Fourfold, ConfigError> {
        Fourfold::builder_from_config(path)?.build()
    }

    /// [`Fourfold::from_config`], as a builder to add plugins to before building.
    pub fn builder_from_config(path: impl AsRef<Path>) -> Result<FourfoldBuilder, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        builder_from_text(&text, dir, &shown)
    }
}

/// The builder for the configuration `text`, with relative paths resolved against `dir`.
/// The policy of a config (with its approvals in the shared store, if the config names one),
/// and the fleet's store.
fn policy_and_fleet(
    config: &ConfigFile,
    dir: &Path,
    shown: &str,
) -> Result<(PolicyBuilder, Option<Fleet>), ConfigError> {
    let mut policy = Policy::builder_from_file(&dir.join(&config.policy.file))?;
    let fleet = match &config.store {
        Some(store) => {
            let fleet = fleet_store(&store.url).map_err(|error| ConfigError::Invalid {
                path: shown.to_string(),
                reason: format!("store: {error}"),
            })?;
            policy = policy.store(Arc::clone(&fleet.store));
            Some(fleet)
        }
        None => None,
    };
    Ok((policy, fleet))
}

/// Reads a `fourfold.toml` for its policy alone (with the approval store it names), without
/// opening its traces, ledger or context: for tools that only manage approvals.
pub fn policy_from_config(path: impl AsRef<Path>) -> Result<Policy, ConfigError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let config: ConfigFile = toml::from_str(&text).map_err(|error| ConfigError::Invalid {
        path: shown.clone(),
        reason: error.message().to_string(),
    })?;
    let (policy, _) = policy_and_fleet(&config, path.parent().unwrap_or(Path::new(".")), &shown)?;
    Ok(policy.build()?)
}

pub(crate) fn builder_from_text(
    text: &str,
    dir: &Path,
    shown: &str,
) -> Result<FourfoldBuilder, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        path: shown.to_string(),
        reason,
    };
    let config: ConfigFile =
        toml::from_str(text).map_err(|error| invalid(error.message().to_string()))?;
    let at = |relative: &Path| dir.join(relative);
    let (policy, fleet) = policy_and_fleet(&config, dir, shown)?;
    let mut builder = Fourfold::builder().policy(policy);
    if let Some(trace) = config.trace {
        let mut tracer = Tracer::builder();
        if trace.file.is_none()
            && trace.jsonl.is_none()
            && trace.otlp_endpoint.is_none()
            && !trace.postgres
        {
            return Err(invalid(
                "`[trace]` names no sink: give `file`, `jsonl`, `otlp_endpoint` or `postgres = true`"
                    .into(),
            ));
        }
        if trace.postgres {
            tracer = trace_into_store(tracer, fleet.as_ref()).map_err(invalid)?;
        }
        if let Some(endpoint) = &trace.otlp_endpoint {
            let service_name = trace.service_name.as_deref().unwrap_or("fourfold");
            // Headers such as a collector's API key, and a private CA's certificate, come from
            // the OpenTelemetry environment variables, never from the config file.
            let options = OtlpHttpOptions {
                headers: otlp_headers_from_env().map_err(|error| invalid(error.to_string()))?,
                root_certificates: otlp_certificate_from_env()
                    .map_err(|error| invalid(error.to_string()))?,
                ..OtlpHttpOptions::default()
            };
            tracer = tracer.sink(
                OtlpHttpSink::new(endpoint, service_name, options)
                    .map_err(|error| invalid(error.to_string()))?,
            );
        }
        if let Some(file) = &trace.file {
            create_parent(&at(file), shown)?;
            tracer = tracer.sink(TraceFileSink::open(at(file), Durability::default())?);
        }
        if let Some(jsonl) = &trace.jsonl {
            create_parent(&at(jsonl), shown)?;
            tracer = tracer.sink(JsonLinesSink::open(at(jsonl))?);
        }
        builder = builder.tracer(tracer.build()?);
    }
    if let Some(context) = config.context {
        if context.shared && context.snapshot.is_some() {
            // Each process applies the fleet's whole log to its store when it starts: on top of
            // a snapshot, that would put every older version again as a newer one.
            return Err(invalid(
                "`[context] shared` and `snapshot` cannot be set together: the fleet's log in \
                 PostgreSQL is where shared documents are kept"
                    .to_string(),
            ));
        }
        if let Some(name) = &context.scope {
            let scope = ContextScope::parse(name, "[context] scope").map_err(invalid)?;
            builder = builder.context_scope(scope);
        }
        let mut store = ContextStore::builder();
        for prefix in &context.archive {
            store = store.archive(prefix);
        }
        for key in &context.pin {
            store = store.pin(key);
        }
        if let Some(rerank) = &context.rerank {
            let (reranker, depth) = command_reranker(rerank, &at).map_err(invalid)?;
            store = store.reranker(Arc::new(reranker), depth);
        }
        builder = match &context.snapshot {
            Some(snapshot) => {
                let file_store = FileStore::open(at(snapshot))
                    .map_err(|error| invalid(format!("context snapshot: {error}")))?;
                builder.context_saved_in(store, Arc::new(file_store))
            }
            None => builder.context(store),
        };
        if context.shared {
            builder = share_documents(builder, fleet.as_ref()).map_err(invalid)?;
        }
    }
    if config.cost.is_some() || !config.budget.is_empty() {
        let cost = config.cost.unwrap_or(CostSection {
            prices: None,
            currency: None,
            unknown_model: None,
            savings_model: None,
            ledger: None,
        });
        let currency = cost.currency.as_deref().unwrap_or("USD");
        let mut meter = CostMeter::builder();
        if let Some(prices) = &cost.prices {
            let text = std::fs::read_to_string(at(prices)).map_err(|source| ConfigError::Read {
                path: at(prices).display().to_string(),
                source,
            })?;
            let table = PriceTable::from_litellm_json(&text, currency)
                .map_err(|error| invalid(format!("prices: {error}")))?;
            meter = meter.prices(table);
        }
        if let Some(name) = &cost.unknown_model {
            meter =
                meter.unknown_model(UnknownModel::parse(name, "unknown_model").map_err(invalid)?);
        }
        if let Some(model) = &cost.savings_model {
            meter = meter.savings_model(model);
        }
        if let Some(ledger) = &cost.ledger {
            create_parent(&at(ledger), shown)?;
            meter = meter.ledger(at(ledger));
        }
        for section in &config.budget {
            let budget = budget_from(section).map_err(invalid)?;
            meter = match (section.shared, &fleet) {
                (false, _) => meter.budget(budget),
                (true, Some(fleet)) => meter.shared_budget(fleet.budgets.clone(), budget),
                (true, None) => {
                    return Err(invalid(format!(
                        "budget `{}` is shared, which needs a `[store] url` to share it through",
                        section.scope
                    )))
                }
            };
        }
        builder = builder.cost(meter);
    }
    for gate in config.command_gate {
        let Some((program, args)) = gate.command.split_first() else {
            return Err(invalid(format!(
                "command gate `{}` has an empty `command`",
                gate.name
            )));
        };
        if gate.name.is_empty() {
            return Err(invalid("a command gate has an empty `name`".into()));
        }
        let mut command_gate =
            CommandGate::new(gate.name.as_str(), program.as_str(), args.iter().cloned());
        if let Some(gate_dir) = &gate.dir {
            command_gate = command_gate.dir(at(gate_dir));
        }
        if let Some(seconds) = gate.timeout_seconds {
            command_gate = command_gate.timeout(std::time::Duration::from_secs(seconds));
        }
        builder = builder.plugin(Arc::new(command_gate));
    }
    Ok(builder)
}

fn budget_from(section: &BudgetSection) -> Result<Budget, String> {
    let scope: Scope = section
        .scope
        .parse()
        .map_err(|error: BudgetError| error.to_string())?;
    let mut budget = if section.unit == "tokens" {
        Budget::tokens(scope)
    } else {
        Budget::money(scope, &section.unit)
    };
    if section.soft.is_none() && section.hard.is_none() {
        return Err(format!(
            "budget `{}` has neither `soft` nor `hard`",
            section.scope
        ));
    }
    if let Some(soft) = section.soft {
        budget = budget.soft(soft);
    }
    if let Some(hard) = section.hard {
        budget = budget.hard(hard);
    }
    if let Some(seconds) = section.window_seconds {
        budget = budget.rolling(seconds);
    }
    Ok(budget)
}

/// The reranker of `[context.rerank]`, and its depth. The program starts at the first ask that
/// reranks, not here: a process that loads the config only to judge a request (a coding agent's
/// hook, run for each tool call) must not wait on a model it never asks.
fn command_reranker(
    section: &RerankSection,
    at: &impl Fn(&Path) -> PathBuf,
) -> Result<(CommandReranker, usize), String> {
    let Some((program, args)) = section.command.split_first() else {
        return Err("`[context.rerank] command` is empty".to_string());
    };
    let mut reranker = CommandReranker::new(program.as_str(), args.iter().cloned());
    if let Some(dir) = &section.dir {
        reranker = reranker.dir(at(dir));
    }
    if let Some(seconds) = section.timeout_seconds {
        let timeout = std::time::Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| {
                format!(
                    "`[context.rerank] timeout_seconds` must be a positive number, not {seconds}"
                )
            })?;
        reranker = reranker.timeout(timeout);
    }
    match section.processes {
        Some(0) => return Err("`[context.rerank] processes` must be at least 1".to_string()),
        Some(n) => reranker = reranker.processes(n),
        None => {}
    }
    let depth = section.depth.unwrap_or(DEFAULT_RERANK_DEPTH);
    if depth == 0 {
        return Err("`[context.rerank] depth` must be at least 1".to_string());
    }
    Ok((reranker, depth))
}

fn create_parent(path: &Path, shown: &str) -> Result<(), ConfigError> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| ConfigError::Read {
            path: format!("{} (from {shown})", parent.display()),
            source,
        })?;
    }
    Ok(())
}

/// The store a fleet shares, and the shared budgets in it.
struct Fleet {
    store: Arc<dyn crate::store::Store>,
    budgets: Arc<dyn crate::cost::SharedBudgets>,
    #[cfg(feature = "postgres")]
    postgres: Arc<crate::store::PostgresStore>,
}

#[cfg(feature = "postgres")]
fn fleet_store(url: &str) -> Result<Fleet, crate::StoreError> {
    let store = Arc::new(crate::store::PostgresStore::connect(url)?);
    Ok(Fleet {
        budgets: Arc::new(crate::cost::FleetBudgets::new(Arc::clone(&store))),
        store: Arc::clone(&store) as Arc<dyn crate::store::Store>,
        postgres: store,
    })
}

#[cfg(not(feature = "postgres"))]
fn fleet_store(url: &str) -> Result<Fleet, String> {
    Err(format!(
        "this fourfold was built without PostgreSQL support (feature `postgres`), so it cannot use `{url}`"
    ))
}

#[cfg(feature = "postgres")]
fn share_documents(
    builder: FourfoldBuilder,
    fleet: Option<&Fleet>,
) -> Result<FourfoldBuilder, String> {
    match fleet {
        Some(fleet) => Ok(builder.share_documents(Arc::clone(&fleet.postgres))),
        None => Err("`[context] shared` needs a `[store] url` to share documents through".into()),
    }
}

#[cfg(not(feature = "postgres"))]
fn share_documents(
    _builder: FourfoldBuilder,
    _fleet: Option<&Fleet>,
) -> Result<FourfoldBuilder, String> {
    Err("`[context] shared` needs PostgreSQL support (feature `postgres`)".into())
}

#[cfg(feature = "postgres")]
fn trace_into_store(
    tracer: crate::trace::TracerBuilder,
    fleet: Option<&Fleet>,
) -> Result<crate::trace::TracerBuilder, String> {
    match fleet {
        Some(fleet) => Ok(tracer.sink(crate::trace::PostgresTraceSink::new(Arc::clone(
            &fleet.postgres,
        )))),
        None => Err("`[trace] postgres` needs a `[store] url` to write to".into()),
    }
}

#[cfg(not(feature = "postgres"))]
fn trace_into_store(
    _tracer: crate::trace::TracerBuilder,
    _fleet: Option<&Fleet>,
) -> Result<crate::trace::TracerBuilder, String> {
    Err("`[trace] postgres` needs PostgreSQL support (feature `postgres`)".into())
}
