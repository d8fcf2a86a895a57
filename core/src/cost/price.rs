//! Prices per token, loaded from LiteLLM's `model_prices_and_context_window.json` format.
//!
//! Money is kept in integers: a price is a whole number of femto-units (10^-15 of a currency
//! unit) per token, a call's cost a whole number of femto-units (`u128`), and what events and
//! reports show is micro-units (10^-6), rounded half up from the exact femto sum.
//! A price in the file is read from its shortest decimal form (`2.5e-06` is 2.5 micro-units,
//! 2,500,000,000 femto-units, per token), so it is exact unless it has more than 15 decimal
//! places, where it is rounded half up to the nearest femto-unit.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::count::bare_model_name;
use super::err::PriceError;
use super::usage::TokenCounts;

/// Femto-units (10^-15) in one micro-unit (10^-6) of a currency.
pub const FEMTOS_PER_MICRO: u128 = 1_000_000_000;

/// The built-in table: a trimmed copy of LiteLLM's price file (see `prices/README.md`).
const BUILTIN_JSON: &str = include_str!("prices/model_prices.json");

/// The currencies a price table or budget may be in (ISO 4217 codes).
const CURRENCIES: &[&str] = &[
    "USD", "EUR", "GBP", "JPY", "CNY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN",
    "CZK", "HUF", "INR", "KRW", "SGD", "HKD", "BRL", "MXN", "ZAR", "TRY", "ILS", "AED", "SAR",
    "TWD", "THB", "IDR", "MYR", "PHP",
];

/// Checks that `code` is a currency fourfold knows, and returns it.
pub fn currency(code: &str) -> Result<&'static str, PriceError> {
    CURRENCIES
        .iter()
        .find(|known| **known == code)
        .copied()
        .ok_or_else(|| PriceError::UnknownCurrency(code.to_string()))
}

/// The prices of one model, in femto-units of the table's currency per token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelPrice {
    /// An input (prompt) token that is neither read from nor written to the cache.
    pub input: u64,
    /// An output (completion) token.
    pub output: u64,
    /// An input token read from the provider's cache (the input price when the file has none).
    pub cache_read: u64,
    /// An input token written to the provider's cache (the input price when the file has none).
    pub cache_write: u64,
    /// A reasoning token (the output price when the file has none).
    pub reasoning: u64,
}

impl ModelPrice {
    /// A price with input and output prices in currency units per million tokens (`2.5` for
    /// $2.50 per million), cache and reasoning tokens at the input and output prices.
    /// Fails on a NaN, infinite, negative or overflowing price.
    pub fn per_million(input: f64, output: f64) -> Result<ModelPrice, PriceError> {
        let input = femtos_from_f64(input / 1e6, "input")?;
        let output = femtos_from_f64(output / 1e6, "output")?;
        Ok(ModelPrice {
            input,
            output,
            cache_read: input,
            cache_write: input,
            reasoning: output,
        })
    }

    /// What `counts` cost at these prices, in femto-units. Reasoning tokens are part of the
    /// output tokens and are charged at the reasoning price instead of the output price.
    pub fn cost_femtos(&self, counts: &TokenCounts) -> u128 {
        let plain_output = counts.output.saturating_sub(counts.reasoning);
        let reasoning = counts.output.min(counts.reasoning);
        u128::from(counts.input) * u128::from(self.input)
            + u128::from(counts.cache_read) * u128::from(self.cache_read)
            + u128::from(counts.cache_write) * u128::from(self.cache_write)
            + u128::from(plain_output) * u128::from(self.output)
            + u128::from(reasoning) * u128::from(self.reasoning)
    }
}

/// `femtos` in micro-units, rounded half up.
pub fn femtos_to_micros(femtos: u128) -> u128 {
    (femtos + FEMTOS_PER_MICRO / 2) / FEMTOS_PER_MICRO
}

/// Model prices in one currency.
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    currency: &'static str,
    models: FxHashMap<String, ModelPrice>,
}

impl PriceTable {
    /// The built-in table: LiteLLM's prices of chat, completion and responses models, in USD
    /// (version and date in `core/src/cost/prices/README.md`).
    pub fn builtin() -> &'static PriceTable {
        static BUILTIN: OnceLock<PriceTable> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            // INVARIANT: the built-in file parses (a unit test checks it), so the empty table is
            // never used.
            PriceTable::from_litellm_json(BUILTIN_JSON, "USD").unwrap_or_else(|_| PriceTable {
                currency: "USD",
                models: FxHashMap::default(),
            })
        })
    }

    /// An empty table in `currency`.
    pub fn empty(currency: &str) -> Result<PriceTable, PriceError> {
        Ok(PriceTable {
            currency: self::currency(currency)?,
            models: FxHashMap::default(),
        })
    }

    /// Loads a table in LiteLLM's `model_prices_and_context_window.json` format, whose prices are
    /// in `currency` (LiteLLM's own file is in `USD`).
    ///
    /// Entries without `input_cost_per_token` (image, audio, per-second models) are skipped, as is
    /// LiteLLM's `sample_spec`. Anything else that is not a well-formed price fails the whole
    /// load: a string, negative or out-of-range price, an entry that is not an object.
    pub fn from_litellm_json(text: &str, currency: &str) -> Result<PriceTable, PriceError> {
        let currency = self::currency(currency)?;
        let root: Value = serde_json::from_str(text)
            .map_err(|error| PriceError::Malformed(format!("not JSON: {error}")))?;
        let Value::Object(entries) = root else {
            return Err(PriceError::Malformed(
                "the top level is not an object".into(),
            ));
        };
        let mut models = FxHashMap::default();
        for (model, entry) in entries {
            if model == "sample_spec" {
                continue;
            }
            let Value::Object(fields) = entry else {
                return Err(PriceError::Malformed(format!(
                    "the entry of model `{model}` is not an object"
                )));
            };
            let price_of = |field: &str| -> Result<Option<u64>, PriceError> {
                match fields.get(field) {
                    None | Some(Value::Null) => Ok(None),
                    Some(value) => femtos_from_json(value)
                        .map(Some)
                        .map_err(|reason| PriceError::invalid(&model, field, reason)),
                }
            };
            let Some(input) = price_of("input_cost_per_token")? else {
                continue;
            };
            let output = price_of("output_cost_per_token")?.unwrap_or(0);
            let price = ModelPrice {
                input,
                output,
                cache_read: price_of("cache_read_input_token_cost")?.unwrap_or(input),
                cache_write: price_of("cache_creation_input_token_cost")?.unwrap_or(input),
                reasoning: price_of("output_cost_per_reasoning_token")?.unwrap_or(output),
            };
            models.insert(model, price);
        }
        Ok(PriceTable { currency, models })
    }

    /// Sets the price of `model`, replacing any it had.
    pub fn set(&mut self, model: impl Into<String>, price: ModelPrice) {
        self.models.insert(model.into(), price);
    }

    /// The price of `model`: its exact name, else the name without a provider prefix
    /// (`openai/gpt-4o` is priced as `gpt-4o`).
    pub fn get(&self, model: &str) -> Option<&ModelPrice> {
        self.models
            .get(model)
            .or_else(|| self.models.get(bare_model_name(model)))
    }

    /// The currency of every price in the table.
    pub fn currency(&self) -> &'static str {
        self.currency
    }

    /// How many models the table prices.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the table prices no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// A JSON price (currency units per token) in femto-units per token.
fn femtos_from_json(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(number) => {
            if let Some(whole) = number.as_u64() {
                return whole
                    .checked_mul(1_000_000_000_000_000)
                    .ok_or_else(|| format!("{number} is too large"));
            }
            match number.as_f64() {
                Some(float) => {
                    femtos_from_float(float).map_err(|reason| format!("{number} {reason}"))
                }
                None => Err(format!("{number} is not a number fourfold can read")),
            }
        }
        other => Err(format!("{other} is not a number")),
    }
}

/// A price in currency units per token, from code: fails on NaN, infinity, negatives, overflow.
fn femtos_from_f64(value: f64, what: &str) -> Result<u64, PriceError> {
    femtos_from_float(value)
        .map_err(|reason| PriceError::invalid("", what, format!("{value} {reason}")))
}

/// `value` currency units in femto-units, read from its shortest decimal form and rounded half
/// up past the 15th decimal place.
fn femtos_from_float(value: f64) -> Result<u64, &'static str> {
    if value.is_nan() {
        return Err("is not a number");
    }
    if value.is_infinite() {
        return Err("is infinite");
    }
    if value < 0.0 {
        return Err("is negative");
    }
    if value == 0.0 {
        return Ok(0);
    }
    // `{:e}` prints the shortest digits that read back as the same float: `2.5e-6`.
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').ok_or("has no exponent")?;
    let exponent: i32 = exponent.parse().map_err(|_| "has a bad exponent")?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: u128 = format!("{whole}{fraction}")
        .parse()
        .map_err(|_| "has bad digits")?;
    // value = digits * 10^(exponent - fraction.len()); in femtos, times 10^15.
    let scale = exponent - fraction.len() as i32 + 15;
    let femtos = if scale >= 0 {
        10u128
            .checked_pow(scale as u32)
            .and_then(|power| digits.checked_mul(power))
            .ok_or("is too large")?
    } else {
        let divisor = 10u128.checked_pow((-scale) as u32).unwrap_or(u128::MAX);
        (digits + divisor / 2) / divisor
    };
    u64::try_from(femtos).map_err(|_| "is too large")
}

#[cfg(test)]
mod tests {
    // Covers exact price parsing, the rounding rule, cost arithmetic and malformed price maps.
    use super::*;

    fn check_femtos(value: f64, expected: Result<u64, &str>) {
        assert_eq!(femtos_from_float(value), expected, "{value}");
    }

    #[test]
    fn prices_parse_exactly() {
        check_femtos(2.5e-06, Ok(2_500_000_000));
        check_femtos(1e-05, Ok(10_000_000_000));
        check_femtos(3.75e-07, Ok(375_000_000));
        check_femtos(1.25e-13, Ok(125));
        // Past 15 decimal places: rounded half up.
        check_femtos(1.5e-15, Ok(2));
        check_femtos(1.4e-15, Ok(1));
        check_femtos(4e-16, Ok(0));
        check_femtos(0.0, Ok(0));
        check_femtos(15.0, Ok(15_000_000_000_000_000));
        check_femtos(f64::NAN, Err("is not a number"));
        check_femtos(f64::INFINITY, Err("is infinite"));
        check_femtos(-1e-6, Err("is negative"));
        check_femtos(1e10, Err("is too large"));
    }

    #[test]
    fn builtin_table_loads() {
        let table = PriceTable::from_litellm_json(BUILTIN_JSON, "USD").unwrap();
        assert!(table.len() > 3000, "{}", table.len());
        let gpt_4o = table.get("gpt-4o").unwrap();
        assert_eq!(gpt_4o.input, 2_500_000_000);
        assert_eq!(gpt_4o.output, 10_000_000_000);
        assert_eq!(gpt_4o.cache_read, 1_250_000_000);
        assert_eq!(table.get("openai/gpt-4o"), Some(gpt_4o));
        let sonnet = PriceTable::builtin().get("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.cache_write, 3_750_000_000);
        assert_eq!(sonnet.cache_read, 300_000_000);
    }

    #[test]
    fn malformed_maps_are_errors() {
        let cases = [
            ("[]", "the top level is not an object"),
            ("{\"m\": 3}", "not an object"),
            (
                "{\"m\": {\"input_cost_per_token\": \"1e-6\"}}",
                "is not a number",
            ),
            ("{\"m\": {\"input_cost_per_token\": -1e-6}}", "is negative"),
            (
                "{\"m\": {\"input_cost_per_token\": 1e-6, \"output_cost_per_token\": 1e300}}",
                "too large",
            ),
            ("{\"m\": {\"input_cost_per_token\": 1e999}}", "not JSON"),
            ("{\"m\": ", "not JSON"),
        ];
        for (text, expected) in cases {
            let error = PriceTable::from_litellm_json(text, "USD")
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(matches!(
            PriceTable::from_litellm_json("{}", "XYZ"),
            Err(PriceError::UnknownCurrency(_))
        ));
    }

    #[test]
    fn cost_charges_each_kind_of_token_its_price() {
        let price = ModelPrice {
            input: 3,
            output: 10,
            cache_read: 1,
            cache_write: 5,
            reasoning: 20,
        };
        let counts = TokenCounts {
            input: 100,
            output: 50,
            cache_read: 1000,
            cache_write: 10,
            reasoning: 20,
        };
        assert_eq!(
            price.cost_femtos(&counts),
            300 + 30 * 10 + 1000 + 50 + 20 * 20
        );
        assert_eq!(femtos_to_micros(1_499_999_999), 1);
        assert_eq!(femtos_to_micros(1_500_000_000), 2);
    }
}
