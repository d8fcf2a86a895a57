//! Reports: spent and saved, side by side, by agent, task, model and day.

use std::collections::BTreeMap;

use serde::Serialize;

use super::price::femtos_to_micros;
use super::record::{CostRecord, RecordKind};

/// Sums over a set of records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Model calls recorded.
    pub calls: u64,
    /// Prompt tokens not read from or written to the cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Prompt tokens read from the cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the cache.
    pub cache_write_tokens: u64,
    /// Reasoning tokens (part of the output tokens).
    pub reasoning_tokens: u64,
    /// Money spent, in femto-units.
    pub spent_femtos: u128,
    /// Tokens saved.
    pub saved_tokens: u64,
    /// Money saved, in femto-units.
    pub saved_femtos: u128,
    /// Records whose counts are estimates.
    pub estimated_records: u64,
    /// Records with a warning (a model priced at zero because it is unknown).
    pub warned_records: u64,
}

impl Totals {
    fn add(&mut self, record: &CostRecord) {
        match record.kind {
            RecordKind::Spent => {
                self.calls += 1;
                let counts = &record.counts;
                self.input_tokens = self.input_tokens.saturating_add(counts.input);
                self.output_tokens = self.output_tokens.saturating_add(counts.output);
                self.cache_read_tokens = self.cache_read_tokens.saturating_add(counts.cache_read);
                self.cache_write_tokens =
                    self.cache_write_tokens.saturating_add(counts.cache_write);
                self.reasoning_tokens = self.reasoning_tokens.saturating_add(counts.reasoning);
                self.spent_femtos = self.spent_femtos.saturating_add(record.femtos);
            }
            RecordKind::Saved => {
                self.saved_tokens = self.saved_tokens.saturating_add(record.saved_tokens);
                self.saved_femtos = self.saved_femtos.saturating_add(record.femtos);
            }
        }
        self.estimated_records += u64::from(record.estimated);
        self.warned_records += u64::from(record.warning.is_some());
    }

    /// All tokens spent: prompt (cached or not) and output.
    pub fn spent_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_write_tokens)
    }

    fn view(&self) -> TotalsView {
        TotalsView {
            calls: self.calls,
            spent_tokens: self.spent_tokens(),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens,
            spent_micros: femtos_to_micros(self.spent_femtos),
            saved_tokens: self.saved_tokens,
            saved_micros: femtos_to_micros(self.saved_femtos),
            estimated: self.estimated_records > 0,
            estimated_records: self.estimated_records,
            warned_records: self.warned_records,
        }
    }
}

/// How [`Totals`] are written in JSON: money in micro-units, rounded half up from the exact sum.
#[derive(Serialize)]
struct TotalsView {
    calls: u64,
    spent_tokens: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    reasoning_tokens: u64,
    spent_micros: u128,
    saved_tokens: u64,
    saved_micros: u128,
    estimated: bool,
    estimated_records: u64,
    warned_records: u64,
}

/// Totals by agent, task, model and day (UTC), and overall.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The currency of the money figures (empty until a record is added).
    pub currency: String,
    /// Everything.
    pub total: Totals,
    /// By agent.
    pub by_agent: BTreeMap<String, Totals>,
    /// By task; records without a task are under `-`.
    pub by_task: BTreeMap<String, Totals>,
    /// By model.
    pub by_model: BTreeMap<String, Totals>,
    /// By UTC day, `YYYY-MM-DD`.
    pub by_day: BTreeMap<String, Totals>,
    /// Records in another currency than the first one, left out of the figures.
    pub skipped_other_currency: u64,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// A report of `records`.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a CostRecord>) -> Report {
        let mut report = Report::new();
        for record in records {
            report.add(record);
        }
        report
    }

    /// Adds `record` to every total it belongs to.
    pub fn add(&mut self, record: &CostRecord) {
        if self.currency.is_empty() {
            self.currency = record.currency.clone();
        } else if self.currency != record.currency {
            self.skipped_other_currency += 1;
            return;
        }
        self.total.add(record);
        add_to(&mut self.by_agent, &record.agent, record);
        add_to(
            &mut self.by_task,
            record.task.as_deref().unwrap_or("-"),
            record,
        );
        add_to(&mut self.by_model, &record.model, record);
        add_to(&mut self.by_day, &utc_day(record.at_ns), record);
    }

    /// The report as JSON: `currency`, `total`, `by_agent`, `by_task`, `by_model`, `by_day`.
    /// Every totals object has the spent and saved tokens and micro-units side by side, and
    /// `estimated: true` when any of its records is an estimate.
    pub fn to_json(&self) -> serde_json::Value {
        let group = |totals: &BTreeMap<String, Totals>| -> serde_json::Value {
            totals
                .iter()
                .map(|(key, totals)| (key.clone(), serde_json::json!(totals.view())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        serde_json::json!({
            "currency": self.currency,
            "total": self.total.view(),
            "by_agent": group(&self.by_agent),
            "by_task": group(&self.by_task),
            "by_model": group(&self.by_model),
            "by_day": group(&self.by_day),
            "skipped_other_currency": self.skipped_other_currency,
        })
    }
}

/// Adds `record` to the totals of `key`, allocating the key only the first time it is seen.
fn add_to(totals: &mut BTreeMap<String, Totals>, key: &str, record: &CostRecord) {
    match totals.get_mut(key) {
        Some(totals) => totals.add(record),
        None => totals.entry(key.to_string()).or_default().add(record),
    }
}

/// The UTC date of `at_ns`, `YYYY-MM-DD` (Howard Hinnant's `civil_from_days`).
pub(crate) fn utc_day(at_ns: u64) -> String {
    let days = (at_ns / 86_400_000_000_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_700_000_000_000_000_000), "2023-11-14");
        assert_eq!(utc_day(951_782_400_000_000_000), "2000-02-29");
    }
}
