//! What a model call used: token counts, read from a provider's usage object or counted from text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::count::resolve;
use super::err::{CountError, UsageError};

/// Token counts of one model call, in one shape for every provider.
///
/// `input` is the prompt tokens neither read from nor written to the cache, so the whole prompt
/// is `input + cache_read + cache_write`. `reasoning` is the part of `output` spent on reasoning,
/// as OpenAI and Gemini report it (Anthropic counts thinking in `output_tokens` without a split).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Prompt tokens not read from or written to the cache.
    pub input: u64,
    /// Completion tokens, reasoning included.
    pub output: u64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: u64,
    /// Output tokens spent on reasoning (at most `output`).
    pub reasoning: u64,
}

/// The providers whose usage objects [`TokenCounts::from_usage_json`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI: Chat Completions (`prompt_tokens`, ...) or Responses (`input_tokens`, ...).
    OpenAi,
    /// Anthropic Messages (`input_tokens`, `cache_read_input_tokens`, ...).
    Anthropic,
    /// Google Gemini (`usageMetadata`: `promptTokenCount`, ...).
    Gemini,
}

impl Provider {
    /// The provider's name as OpenTelemetry's `gen_ai.provider.name` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gcp.gemini",
        }
    }

    /// The provider named `name` (`openai`, `anthropic`, `gemini` or `gcp.gemini`).
    pub fn from_name(name: &str) -> Option<Provider> {
        match name {
            "openai" => Some(Provider::OpenAi),
            "anthropic" => Some(Provider::Anthropic),
            "gemini" | "gcp.gemini" => Some(Provider::Gemini),
            _ => None,
        }
    }
}

impl TokenCounts {
    /// All tokens of the call: the whole prompt and the output (reasoning is part of output).
    pub fn total(&self) -> Result<u64, UsageError> {
        [self.input, self.cache_read, self.cache_write, self.output]
            .into_iter()
            .try_fold(0u64, |sum, n| sum.checked_add(n))
            .ok_or_else(|| UsageError::Overflow("total tokens".into()))
    }

    /// Checks that the counts make sense together: reasoning within output, a total that fits.
    pub fn validate(&self) -> Result<(), UsageError> {
        if self.reasoning > self.output {
            return Err(UsageError::Inconsistent(format!(
                "{} reasoning tokens but only {} output tokens",
                self.reasoning, self.output
            )));
        }
        self.total().map(|_| ())
    }

    /// Reads a provider's usage object, or a whole response that holds one (under `usage`, or
    /// `usageMetadata` for Gemini).
    ///
    /// ```
    /// use fourfold::cost::{Provider, TokenCounts};
    /// let json = r#"{"prompt_tokens": 120, "completion_tokens": 30,
    ///     "prompt_tokens_details": {"cached_tokens": 100},
    ///     "completion_tokens_details": {"reasoning_tokens": 10}}"#;
    /// let counts = TokenCounts::from_usage_json(Provider::OpenAi, json).unwrap();
    /// assert_eq!((counts.input, counts.cache_read, counts.output, counts.reasoning), (20, 100, 30, 10));
    /// ```
    pub fn from_usage_json(provider: Provider, json: &str) -> Result<TokenCounts, UsageError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|error| UsageError::Malformed(format!("not JSON: {error}")))?;
        TokenCounts::from_usage_value(provider, &value)
    }

    /// Like [`TokenCounts::from_usage_json`], from parsed JSON.
    pub fn from_usage_value(provider: Provider, value: &Value) -> Result<TokenCounts, UsageError> {
        let usage = match provider {
            Provider::Gemini => value.get("usageMetadata").unwrap_or(value),
            _ => value
                .get("usage")
                .filter(|usage| usage.is_object())
                .unwrap_or(value),
        };
        if !usage.is_object() {
            return Err(UsageError::Malformed("the usage is not an object".into()));
        }
        let counts = match provider {
            Provider::OpenAi => {
                let chat = usage.get("prompt_tokens").is_some();
                let (prompt, completion, prompt_details, completion_details) = if chat {
                    (
                        "prompt_tokens",
                        "completion_tokens",
                        "prompt_tokens_details",
                        "completion_tokens_details",
                    )
                } else {
                    (
                        "input_tokens",
                        "output_tokens",
                        "input_tokens_details",
                        "output_tokens_details",
                    )
                };
                let prompt_tokens = required(usage, prompt)?;
                let cached = nested(usage, prompt_details, "cached_tokens")?;
                if cached > prompt_tokens {
                    return Err(UsageError::Inconsistent(format!(
                        "{cached} cached tokens but only {prompt_tokens} prompt tokens"
                    )));
                }
                TokenCounts {
                    input: prompt_tokens - cached,
                    output: required(usage, completion)?,
                    cache_read: cached,
                    cache_write: 0,
                    reasoning: nested(usage, completion_details, "reasoning_tokens")?,
                }
            }
            Provider::Anthropic => TokenCounts {
                input: required(usage, "input_tokens")?,
                output: required(usage, "output_tokens")?,
                cache_read: optional(usage, "cache_read_input_tokens")?,
                cache_write: optional(usage, "cache_creation_input_tokens")?,
                reasoning: 0,
            },
            Provider::Gemini => {
                let prompt_tokens = required(usage, "promptTokenCount")?;
                let cached = optional(usage, "cachedContentTokenCount")?;
                if cached > prompt_tokens {
                    return Err(UsageError::Inconsistent(format!(
                        "{cached} cached tokens but only {prompt_tokens} prompt tokens"
                    )));
                }
                let thoughts = optional(usage, "thoughtsTokenCount")?;
                let candidates = optional(usage, "candidatesTokenCount")?;
                TokenCounts {
                    input: prompt_tokens - cached,
                    output: candidates
                        .checked_add(thoughts)
                        .ok_or_else(|| UsageError::Overflow("output tokens".into()))?,
                    cache_read: cached,
                    cache_write: 0,
                    reasoning: thoughts,
                }
            }
        };
        counts.validate()?;
        Ok(counts)
    }

    /// Counts a call from its texts when the provider gave no usage: the prompt as input, the
    /// completion as output. The second value is true when the counts are estimates (a model
    /// without a public tokenizer).
    pub fn count_texts(
        model: &str,
        prompt: &str,
        completion: &str,
    ) -> Result<(TokenCounts, bool), CountError> {
        let (encoding, estimated) = resolve(model)?;
        let counts = TokenCounts {
            input: encoding.count(prompt),
            output: encoding.count(completion),
            ..TokenCounts::default()
        };
        Ok((counts, estimated))
    }
}

fn required(usage: &Value, field: &str) -> Result<u64, UsageError> {
    match usage.get(field) {
        None | Some(Value::Null) => Err(UsageError::Missing(field.to_string())),
        Some(value) => count_value(value, field),
    }
}

fn optional(usage: &Value, field: &str) -> Result<u64, UsageError> {
    match usage.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => count_value(value, field),
    }
}

fn nested(usage: &Value, object: &str, field: &str) -> Result<u64, UsageError> {
    match usage.get(object) {
        None | Some(Value::Null) => Ok(0),
        Some(inner) if inner.is_object() => optional(inner, field),
        Some(_) => Err(UsageError::Malformed(format!(
            "`{object}` is not an object"
        ))),
    }
}

/// A token count: a whole number from 0 to 2^64 - 1.
fn count_value(value: &Value, field: &str) -> Result<u64, UsageError> {
    let Value::Number(number) = value else {
        return Err(UsageError::Malformed(format!(
            "`{field}` is not a number: {value}"
        )));
    };
    if let Some(count) = number.as_u64() {
        return Ok(count);
    }
    if number.as_i64().is_some_and(|n| n < 0) || number.as_f64().is_some_and(|n| n < 0.0) {
        return Err(UsageError::Negative(field.to_string()));
    }
    if number
        .as_f64()
        .is_some_and(|n| n.fract() == 0.0 && n >= u64::MAX as f64)
    {
        return Err(UsageError::Overflow(field.to_string()));
    }
    Err(UsageError::Malformed(format!(
        "`{field}` is not a whole number: {number}"
    )))
}

/// One model call to record: who made it, for what, with which model, and what it used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The agent that made the call.
    pub agent: String,
    /// The task it worked on, if any.
    pub task: Option<String>,
    /// The run it belongs to, if any.
    pub run: Option<String>,
    /// The model called, as the price table names it (`gpt-4o`, `claude-sonnet-4-5`).
    pub model: String,
    /// Who serves the model, if known (`openai`, `anthropic`, ...).
    pub provider: Option<String>,
    /// The tokens used.
    pub counts: TokenCounts,
    /// True when the counts are an estimate, not exact or reported by the provider.
    pub estimated: bool,
}

impl Usage {
    /// A call of `agent` to `model` that used `counts`, outside any task or run.
    pub fn new(agent: impl Into<String>, model: impl Into<String>, counts: TokenCounts) -> Usage {
        Usage {
            agent: agent.into(),
            task: None,
            run: None,
            model: model.into(),
            provider: None,
            counts,
            estimated: false,
        }
    }

    /// The same call, for `task`.
    pub fn task(mut self, task: impl Into<String>) -> Usage {
        self.task = Some(task.into());
        self
    }

    /// The same call, in run `run`.
    pub fn run(mut self, run: impl Into<String>) -> Usage {
        self.run = Some(run.into());
        self
    }

    /// The same call, served by `provider`.
    pub fn provider(mut self, provider: impl Into<String>) -> Usage {
        self.provider = Some(provider.into());
        self
    }

    /// The same call, with counts marked as an estimate.
    pub fn estimated(mut self, estimated: bool) -> Usage {
        self.estimated = estimated;
        self
    }
}

#[cfg(test)]
mod tests {
    // Covers reading each provider's usage shape and rejecting bad counts.
    use super::*;

    fn check(provider: Provider, json: &str, expected: Result<TokenCounts, UsageError>) {
        assert_eq!(
            TokenCounts::from_usage_json(provider, json),
            expected,
            "{json}"
        );
    }

    fn counts(
        input: u64,
        output: u64,
        cache_read: u64,
        cache_write: u64,
        reasoning: u64,
    ) -> TokenCounts {
        TokenCounts {
            input,
            output,
            cache_read,
            cache_write,
            reasoning,
        }
    }

    #[test]
    fn provider_shapes() {
        check(
            Provider::OpenAi,
            r#"{"usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}}"#,
            Ok(counts(50, 7, 0, 0, 0)),
        );
        check(
            Provider::OpenAi,
            r#"{"input_tokens": 300, "output_tokens": 90, "input_tokens_details": {"cached_tokens": 256},
                "output_tokens_details": {"reasoning_tokens": 64}}"#,
            Ok(counts(44, 90, 256, 0, 64)),
        );
        check(
            Provider::Anthropic,
            r#"{"id": "msg_1", "usage": {"input_tokens": 12, "output_tokens": 40,
                "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 500}}"#,
            Ok(counts(12, 40, 500, 2000, 0)),
        );
        check(
            Provider::Gemini,
            r#"{"usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20,
                "thoughtsTokenCount": 30, "cachedContentTokenCount": 60}}"#,
            Ok(counts(40, 50, 60, 0, 30)),
        );
    }

    #[test]
    fn bad_counts() {
        let negative = r#"{"prompt_tokens": -5, "completion_tokens": 1}"#;
        check(
            Provider::OpenAi,
            negative,
            Err(UsageError::Negative("prompt_tokens".into())),
        );
        let huge = r#"{"input_tokens": 18446744073709551616, "output_tokens": 1}"#;
        check(
            Provider::Anthropic,
            huge,
            Err(UsageError::Overflow("input_tokens".into())),
        );
        let sum = r#"{"input_tokens": 18446744073709551615, "output_tokens": 1}"#;
        check(
            Provider::Anthropic,
            sum,
            Err(UsageError::Overflow("total tokens".into())),
        );
        let missing = r#"{"output_tokens": 1}"#;
        check(
            Provider::Anthropic,
            missing,
            Err(UsageError::Missing("input_tokens".into())),
        );
        let fraction = r#"{"input_tokens": 1.5, "output_tokens": 1}"#;
        assert!(matches!(
            TokenCounts::from_usage_json(Provider::Anthropic, fraction),
            Err(UsageError::Malformed(_))
        ));
        let cached = r#"{"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 6}}"#;
        assert!(matches!(
            TokenCounts::from_usage_json(Provider::OpenAi, cached),
            Err(UsageError::Inconsistent(_))
        ));
        let reasoning = r#"{"prompt_tokens": 5, "completion_tokens": 1, "completion_tokens_details": {"reasoning_tokens": 2}}"#;
        assert!(matches!(
            TokenCounts::from_usage_json(Provider::OpenAi, reasoning),
            Err(UsageError::Inconsistent(_))
        ));
    }

    #[test]
    fn texts_are_counted_and_estimates_labelled() {
        let (exact, estimated) = TokenCounts::count_texts("gpt-4o", "hello world", "hi").unwrap();
        assert_eq!((exact.input, exact.output, estimated), (2, 1, false));
        let (_, estimated) = TokenCounts::count_texts("claude-sonnet-4-5", "hello", "").unwrap();
        assert!(estimated);
    }
}
