//! Masking secrets in events before they leave the agent's thread.
//!
//! A [`Redactor`] replaces every API key, bearer token, credential and e-mail address it finds in
//! free text with a mask that names what was there, such as `[REDACTED:api-key]`. All patterns are
//! combined into one regex, so text without secrets costs one linear scan and no allocation.
//!
//! Masks never match a pattern themselves, so redacting twice gives the same text as redacting
//! once, as long as any extra patterns do not match a mask.

use std::borrow::Cow;
use std::ops::Range;

use regex::{Captures, Regex};

use super::prefilter;
use thiserror::Error;

use crate::event::{
    ActionEvent, ContextEvent, CostEvent, DecisionEvent, Event, EventKind, GateEvent,
};

/// The default patterns, in order of preference when two would match at the same place: the name
/// in the mask, and the regex. Where a regex has groups named `mask`, only the group that matched
/// is masked, so that `Bearer ` or `password=` stay and the text still reads; otherwise the whole
/// match is masked.
///
/// No character class that can start a masked part admits `[`, so a mask is never masked again.
const DEFAULT_PATTERNS: &[(&str, &str)] = &[
    (
        "api-key",
        concat!(
            r"(?-u:\b)(?:",
            // OpenAI (`sk-`, `sk-proj-`) and Anthropic (`sk-ant-`) keys.
            r"sk-[A-Za-z0-9_-]{20,}",
            // GitHub tokens, classic and fine-grained.
            r"|gh[pousr]_[A-Za-z0-9]{36,}",
            r"|github_pat_[A-Za-z0-9_]{22,}",
            // AWS access key ids, long-lived and temporary.
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)",
            // Slack tokens.
            r"|xox[baprs]-[A-Za-z0-9-]{10,}",
            // Google API keys.
            r"|AIza[0-9A-Za-z_-]{35,}",
            // Stripe secret and restricted keys.
            r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
            r")",
        ),
    ),
    (
        "bearer",
        r"(?-u:\b)(?i-u:bearer)[ \t]+(?P<mask>[A-Za-z0-9._~+/=-]{8,})",
    ),
    (
        "basic-auth",
        r#"(?-u:\b)(?i-u:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:basic)[ \t]+(?P<mask>[A-Za-z0-9+/=._~-]+)"#,
    ),
    (
        "secret",
        concat!(
            // The key, with any prefix such as `DB_` or `x-`, and an optional closing quote, which
            // may be escaped when JSON sits inside a JSON string.
            r#"[A-Za-z0-9_.-]*(?i-u:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key)"#,
            r#"\\?["']?[ \t]*[:=][ \t]*(?:"#,
            // A double-quoted value, up to its closing quote.
            r#""(?P<mask>(?:[^"\\\[\r\n]|\\[^\r\n])(?:[^"\\\r\n]|\\[^\r\n])*)"#,
            // A double-quoted value inside a JSON string, up to the escaped closing quote.
            r#"|\\"(?P<mask>[^"\\\[\s][^"\\\r\n]*)"#,
            // A single-quoted value.
            r#"|'(?P<mask>[^'\\\[\r\n][^'\r\n]*)"#,
            // A scheme and its credentials, masked together so the credentials do not leak.
            r#"|(?P<mask>(?i-u:bearer|basic)[ \t]+[A-Za-z0-9._~+/=-]+)"#,
            // A bare value, up to white space or punctuation that ends a value.
            r#"|(?P<mask>[^\s"'\\\[\],;&{}<>][^\s"'\\,;&{}<>]*)"#,
            r")",
        ),
    ),
    (
        "email",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    ),
];

/// The group that marks the part of a default pattern to mask.
const MASK_GROUP: &str = "(?P<mask>";

/// Masks secrets in text and events.
///
/// A redactor is cheap to clone and can be shared between threads.
#[derive(Clone, Debug)]
pub struct Redactor {
    matcher: Matcher,
}

/// What a [`Redactor`] masks.
#[derive(Clone, Debug)]
enum Matcher {
    /// Nothing.
    Nothing,
    /// Every match of these patterns.
    Patterns {
        /// All patterns as one alternation, each pattern in its own named group.
        combined: Regex,
        /// The patterns, in the order of the alternation.
        patterns: Vec<CompiledPattern>,
        /// With the default patterns alone: whether to look first for the literals of which every
        /// match holds one (see `prefilter.rs`), so that text holding none of them is known to
        /// hold no secret after one fast scan.
        uses_prefilter: bool,
    },
    /// All text. Only used if the default patterns failed to compile, so that a broken build
    /// hides everything rather than leaks secrets.
    Everything,
}

/// One pattern inside the combined regex.
#[derive(Clone, Debug)]
struct CompiledPattern {
    /// The replacement text: `[REDACTED:<name>]`.
    mask: String,
    /// The group of the combined regex that holds the whole match of this pattern.
    group_idx: usize,
    /// The groups of the combined regex that hold the part to mask, if only a part is masked.
    mask_group_indices: Vec<usize>,
}

impl Redactor {
    /// The default patterns: API keys, bearer tokens, e-mail addresses.
    ///
    /// The masks are `[REDACTED:api-key]` (OpenAI, Anthropic, GitHub, AWS, Slack, Google and Stripe
    /// keys), `[REDACTED:bearer]` (the token after `Bearer `), `[REDACTED:basic-auth]` (the
    /// credentials after `Authorization: Basic `), `[REDACTED:secret]` (the value of a key such as
    /// `password`, `token` or `api_key`, in `key=value`, `key: value` or JSON text) and
    /// `[REDACTED:email]`.
    pub fn default_patterns() -> Redactor {
        // INVARIANT: the default patterns compile; a unit test checks it. Should they ever fail,
        // mask everything rather than nothing.
        Redactor::with_patterns(&[]).unwrap_or(Redactor {
            matcher: Matcher::Everything,
        })
    }

    /// No redaction at all.
    pub fn none() -> Redactor {
        Redactor {
            matcher: Matcher::Nothing,
        }
    }

    /// Default patterns plus these extra regexes, each with a name used in the mask.
    ///
    /// Each extra is `(name, regex)`; its whole match is masked as `[REDACTED:<name>]`. A name is
    /// made of ASCII letters, digits, `-` and `_`. When an extra and a default pattern match at the
    /// same place, the default wins. Extras must not reuse capture group names among themselves.
    pub fn with_patterns(extra: &[(&str, &str)]) -> Result<Redactor, RedactError> {
        for &(name, regex) in extra {
            let is_valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
            if !is_valid_name {
                return Err(RedactError::InvalidName {
                    name: name.to_string(),
                });
            }
            if let Err(error) = Regex::new(regex) {
                return Err(RedactError::InvalidPattern {
                    name: name.to_string(),
                    regex: regex.to_string(),
                    reason: one_line_reason(&error),
                });
            }
        }

        let mut combined_source = String::new();
        let mut group_names = Vec::new();
        let all_patterns = DEFAULT_PATTERNS
            .iter()
            .map(|&(name, regex)| (name, regex, true))
            .chain(extra.iter().map(|&(name, regex)| (name, regex, false)));
        for (pattern_idx, (name, regex, is_default)) in all_patterns.enumerate() {
            if pattern_idx > 0 {
                combined_source.push('|');
            }
            let pattern_group = format!("__redact_p{pattern_idx}");
            combined_source.push_str(&format!("(?P<{pattern_group}>"));
            let mut mask_groups = Vec::new();
            if is_default {
                // Give every `mask` group a name of its own, since names must be unique.
                for (part_idx, part) in regex.split(MASK_GROUP).enumerate() {
                    if part_idx > 0 {
                        let mask_group = format!("__redact_m{pattern_idx}_{part_idx}");
                        combined_source.push_str(&format!("(?P<{mask_group}>"));
                        mask_groups.push(mask_group);
                    }
                    combined_source.push_str(part);
                }
            } else {
                combined_source.push_str(regex);
            }
            combined_source.push(')');
            group_names.push((name, pattern_group, mask_groups));
        }

        let combined = Regex::new(&combined_source).map_err(|error| RedactError::Combined {
            reason: one_line_reason(&error),
        })?;
        let group_idx_of = |group_name: &str| {
            combined
                .capture_names()
                .position(|name| name == Some(group_name))
        };
        let mut patterns = Vec::with_capacity(group_names.len());
        for (name, pattern_group, mask_groups) in &group_names {
            let Some(group_idx) = group_idx_of(pattern_group) else {
                return Err(RedactError::Combined {
                    reason: format!("group `{pattern_group}` is missing"),
                });
            };
            patterns.push(CompiledPattern {
                mask: format!("[REDACTED:{name}]"),
                group_idx,
                mask_group_indices: mask_groups
                    .iter()
                    .filter_map(|mask_group| group_idx_of(mask_group))
                    .collect(),
            });
        }
        Ok(Redactor {
            matcher: Matcher::Patterns {
                combined,
                patterns,
                uses_prefilter: extra.is_empty(),
            },
        })
    }

    /// Masks every match in `text`; returns [`Cow::Borrowed`] when nothing matched (no allocation).
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let (combined, patterns) = match &self.matcher {
            Matcher::Nothing => return Cow::Borrowed(text),
            Matcher::Everything if text.is_empty() => return Cow::Borrowed(text),
            Matcher::Everything => return Cow::Owned("[REDACTED:all]".to_string()),
            Matcher::Patterns {
                combined,
                patterns,
                uses_prefilter,
            } => {
                if *uses_prefilter && !prefilter::may_match(text) {
                    return Cow::Borrowed(text);
                }
                (combined, patterns)
            }
        };
        let mut redacted = String::new();
        let mut copied_up_to = 0;
        let mut n_masked = 0;
        for captures in combined.captures_iter(text) {
            let Some((mask, whole, part)) = masked_span(patterns, &captures) else {
                continue;
            };
            // An extra pattern may match the empty string; there is nothing to hide there.
            if part.is_empty() {
                continue;
            }
            if n_masked == 0 {
                redacted.reserve(text.len() + mask.len());
            }
            // INVARIANT: match spans of a `Regex` on a `str` fall on character boundaries,
            // successive matches do not overlap, and a masked part lies inside its whole match,
            // so `copied_up_to <= whole.start <= part.start <= part.end <= whole.end`.
            redacted.push_str(&text[copied_up_to..whole.start]);
            // The text kept around a masked part, such as the key before a value, may itself
            // hold a secret (`<token>_password=...`), so it is redacted too. It is shorter than
            // the match and holds no match with kept text of its own, so this recursion stops at
            // once.
            redacted.push_str(&self.redact(&text[whole.start..part.start]));
            redacted.push_str(mask);
            redacted.push_str(&self.redact(&text[part.end..whole.end]));
            copied_up_to = whole.end;
            n_masked += 1;
        }
        if n_masked == 0 {
            return Cow::Borrowed(text);
        }
        redacted.push_str(&text[copied_up_to..]);
        Cow::Owned(redacted)
    }

    /// Masks every free-text field of the event in place, in events of every kind.
    ///
    /// Identifiers are left alone: the run, agent and task ids, document keys and section ids,
    /// section freshness, model names, the currency, the rule's id and file, the approval id, gate
    /// names, the approver (who approved is what an audit must keep, even when it is an e-mail
    /// address) and the result digest. Everything else that is text is redacted: choices,
    /// rationales, alternatives, tool names, arguments, errors, requests, reasons and queries.
    pub fn redact_event(&self, event: &mut Event) {
        // Every struct is taken apart field by field, so that a new field does not compile here
        // until someone decides whether it is free text or an identifier.
        let Event {
            run_id: _,
            agent_id: _,
            task_id: _,
            seq: _,
            timestamp_ns: _,
            span_id: _,
            parent_span_id: _,
            kind,
        } = event;
        self.redact_kind(kind);
    }

    /// Masks every free-text field of an event's kind in place, as [`Redactor::redact_event`]
    /// does: the event's own ids are not free text.
    pub(crate) fn redact_kind(&self, kind: &mut EventKind) {
        if matches!(self.matcher, Matcher::Nothing) {
            return;
        }
        match kind {
            EventKind::Decision(DecisionEvent {
                choice,
                rationale,
                alternatives,
            }) => {
                self.redact_in_place(choice);
                self.redact_in_place(rationale);
                alternatives
                    .iter_mut()
                    .for_each(|alternative| self.redact_in_place(alternative));
            }
            EventKind::Action(ActionEvent {
                tool,
                arguments_json,
                result_digest: _,
                duration_ns: _,
                error,
            }) => {
                self.redact_in_place(tool);
                self.redact_in_place(arguments_json);
                if let Some(error) = error {
                    self.redact_in_place(error);
                }
            }
            EventKind::Gate(GateEvent {
                request_json,
                outcome: _,
                rule: _,
                gates: _,
                approval_id: _,
                approver: _,
                reason,
            }) => {
                self.redact_in_place(request_json);
                self.redact_in_place(reason);
            }
            EventKind::Cost(CostEvent {
                model: _,
                provider: _,
                input_tokens: _,
                output_tokens: _,
                cached_tokens: _,
                reasoning_tokens: _,
                cost_micros: _,
                currency: _,
                estimated: _,
                cache_write_tokens: _,
                saved_tokens: _,
                saved_micros: _,
                warning,
            }) => {
                if let Some(warning) = warning {
                    self.redact_in_place(warning);
                }
            }
            EventKind::Context(ContextEvent {
                query,
                sections: _,
                tokens_served: _,
                tokens_baseline: _,
                withheld: _,
            }) => {
                if let Some(query) = query {
                    self.redact_in_place(query);
                }
            }
        }
    }

    /// Replaces `text` with its redacted form, allocating only when something matched.
    fn redact_in_place(&self, text: &mut String) {
        let redacted = match self.redact(text) {
            Cow::Borrowed(_) => return,
            Cow::Owned(redacted) => redacted,
        };
        *text = redacted;
    }
}

/// The mask, the whole match and the part of it to replace, for one match of the combined regex.
fn masked_span<'p>(
    patterns: &'p [CompiledPattern],
    captures: &Captures<'_>,
) -> Option<(&'p str, Range<usize>, Range<usize>)> {
    patterns.iter().find_map(|pattern| {
        let whole = captures.get(pattern.group_idx)?;
        let part = pattern
            .mask_group_indices
            .iter()
            .find_map(|&mask_group_idx| captures.get(mask_group_idx))
            .unwrap_or(whole);
        Some((pattern.mask.as_str(), whole.range(), part.range()))
    })
}

/// The gist of a regex error on one line: the syntax error itself, without the caret drawing.
fn one_line_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|line| line.strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A [`Redactor`] that could not be built from the patterns given.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedactError {
    /// A pattern's regex does not compile.
    #[error("redaction pattern `{name}` does not compile: {reason} in `{regex}`")]
    InvalidPattern {
        /// The pattern's name.
        name: String,
        /// The regex as given.
        regex: String,
        /// Why it does not compile.
        reason: String,
    },
    /// A pattern's name cannot go in a mask.
    #[error(
        "redaction pattern name `{name}` is not valid: use ASCII letters, digits, `-` and `_`"
    )]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The patterns compile one by one but not together, for example because two reuse a capture
    /// group name or together exceed the regex size limit.
    #[error("the redaction patterns do not compile together: {reason}")]
    Combined {
        /// Why they do not compile.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    // Unit tests of the redactor: each default pattern, near misses that must stay, extra
    // patterns, every event kind, and properties over random text.

    use super::*;
    use crate::event::{GateEventOutcome, RuleOrigin, ServedSection};
    use proptest::prelude::*;

    const OPENAI_KEY: &str = "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL";
    const OPENAI_PROJECT_KEY: &str = "sk-proj-Ab3_dE-fGhIjKlMnOpQrStUvWxYz012345";
    const ANTHROPIC_KEY: &str = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789-AA";
    const GITHUB_TOKEN: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
    const GITHUB_PAT: &str = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz";
    const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SLACK_TOKEN: &str = "xoxb-123456789012-abcdefghij";
    const GOOGLE_KEY: &str = "AIzaSyA-0123456789abcdefghijklmnopqrstu";
    const STRIPE_KEY: &str = "sk_live_0123456789abcdefABCDEF";

    fn check(input: &str, expected: &str) {
        check_with(&Redactor::default_patterns(), input, expected);
    }

    fn check_with(redactor: &Redactor, input: &str, expected: &str) {
        let redacted = redactor.redact(input);
        assert_eq!(redacted, expected, "input: {input:?}");
        if input == expected {
            assert!(
                matches!(redacted, Cow::Borrowed(_)),
                "unchanged text was copied: {input:?}"
            );
        }
        assert_eq!(
            redactor.redact(&redacted),
            redacted,
            "not idempotent: {input:?}"
        );
    }

    #[test]
    fn api_keys_are_masked() {
        for key in [
            OPENAI_KEY,
            OPENAI_PROJECT_KEY,
            ANTHROPIC_KEY,
            GITHUB_TOKEN,
            GITHUB_PAT,
            AWS_KEY_ID,
            SLACK_TOKEN,
            GOOGLE_KEY,
            STRIPE_KEY,
            "rk_live_0123456789abcdefABCDEF",
            "ghs_0123456789abcdefghijklmnopqrstuvwxyz",
            "ASIAIOSFODNN7EXAMPLE",
        ] {
            check(key, "[REDACTED:api-key]");
            check(&format!("use {key} here"), "use [REDACTED:api-key] here");
        }
    }

    #[test]
    fn bearer_and_basic_credentials_are_masked_and_the_scheme_kept() {
        check(
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-_",
            "Authorization: Bearer [REDACTED:bearer]",
        );
        check("bearer abcd1234efgh", "bearer [REDACTED:bearer]");
        check("BEARER\tabcd1234efgh", "BEARER\t[REDACTED:bearer]");
        check(
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "Authorization: Basic [REDACTED:basic-auth]",
        );
        check(
            r#"{"Authorization": "Basic dXNlcjpwYXNz"}"#,
            r#"{"Authorization": "Basic [REDACTED:basic-auth]"}"#,
        );
        check(
            r#"curl -H "Authorization: Bearer abc.def.ghi" https://api"#,
            r#"curl -H "Authorization: Bearer [REDACTED:bearer]" https://api"#,
        );
    }

    #[test]
    fn emails_are_masked() {
        check("alice@example.com", "[REDACTED:email]");
        check(
            "mail bob.smith+ci@mail.example.co.uk.",
            "mail [REDACTED:email].",
        );
        check("<carol_99@sub-domain.io>", "<[REDACTED:email]>");
    }

    #[test]
    fn key_value_secrets_are_masked() {
        check("password=hunter2", "password=[REDACTED:secret]");
        check(
            "PASSWORD = hunter2 rest",
            "PASSWORD = [REDACTED:secret] rest",
        );
        check("DB_PASSWORD=hunter2", "DB_PASSWORD=[REDACTED:secret]");
        check("passwd: hunter2", "passwd: [REDACTED:secret]");
        check("api_key=abc123", "api_key=[REDACTED:secret]");
        check("apikey=abc123", "apikey=[REDACTED:secret]");
        check("x-api-key: abc123", "x-api-key: [REDACTED:secret]");
        check(
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
            "AWS_SECRET_ACCESS_KEY=[REDACTED:secret]",
        );
        check(
            "https://x.io/cb?access_token=abc123&state=1",
            "https://x.io/cb?access_token=[REDACTED:secret]&state=1",
        );
        check("secret: 'two words'", "secret: '[REDACTED:secret]'");
        check("token: Bearer abcd1234efgh", "token: [REDACTED:secret]");
        check(
            &format!("OPENAI_API_KEY={OPENAI_KEY}"),
            "OPENAI_API_KEY=[REDACTED:secret]",
        );
        check(
            &format!("{GITHUB_TOKEN}.password=x"),
            "[REDACTED:api-key].password=[REDACTED:secret]",
        );
        check(
            &format!(".{SLACK_TOKEN}password={OPENAI_KEY}"),
            ".[REDACTED:api-key]=[REDACTED:secret]",
        );
    }

    #[test]
    fn secrets_in_json_are_masked_and_the_json_stays_valid() {
        check(
            r#"{"password": "hunter2"}"#,
            r#"{"password": "[REDACTED:secret]"}"#,
        );
        check(
            r#"{"user":"bob","token":"a b \"c\" d","n":1}"#,
            r#"{"user":"bob","token":"[REDACTED:secret]","n":1}"#,
        );
        check(
            r#"{"cmd":"{\"password\": \"hunter2\"}"}"#,
            r#"{"cmd":"{\"password\": \"[REDACTED:secret]\"}"}"#,
        );
        check(
            &format!(r#"{{"args":["--key","{GITHUB_TOKEN}"],"to":"a@b.io"}}"#),
            r#"{"args":["--key","[REDACTED:api-key]"],"to":"[REDACTED:email]"}"#,
        );
        let redacted = Redactor::default_patterns()
            .redact(r#"{"password": "p\"w", "Authorization": "Bearer abcdefgh1"}"#)
            .into_owned();
        assert!(
            serde_json::from_str::<serde_json::Value>(&redacted).is_ok(),
            "{redacted}"
        );
    }

    #[test]
    fn several_secrets_at_the_start_and_end_are_all_masked() {
        check(
            &format!("{OPENAI_KEY} and {AWS_KEY_ID}, mail alice@example.com"),
            "[REDACTED:api-key] and [REDACTED:api-key], mail [REDACTED:email]",
        );
        check(&format!("{SLACK_TOKEN}{}", " "), "[REDACTED:api-key] ");
        check(
            "a@b.io,c@d.io password=x Bearer 12345678",
            "[REDACTED:email],[REDACTED:email] password=[REDACTED:secret] Bearer [REDACTED:bearer]",
        );
    }

    #[test]
    fn text_around_secrets_keeps_its_unicode() {
        check(
            &format!("clé: «{OPENAI_KEY}» — 日本語 ✓"),
            "clé: «[REDACTED:api-key]» — 日本語 ✓",
        );
        check("émile@example.com→ok", "é[REDACTED:email]→ok");
        check(
            "пароль password=пароль123 ok",
            "пароль password=[REDACTED:secret] ok",
        );
    }

    #[test]
    fn near_misses_are_left_alone() {
        for text in [
            "",
            "plain text with nothing secret",
            "sk-short",
            "skeleton key",
            "task-abcdefghijklmnopqrstuvwxyz0123",
            "AKIA1234",
            "AKIAIOSFODNN7EXAMPLEX",
            "ghp_tooshort",
            "xoxb-short",
            "AIzaShort",
            "sk_live_short",
            "the bearer of bad news",
            "Bearer",
            "Bearer short",
            "user at example dot com",
            "@mention",
            "a@b",
            "max_tokens: 4096",
            "tokens_served=100",
            "password_hash_algorithm",
            "password:",
            "password= ",
            "Authorization: Digest abc",
            "[REDACTED:api-key] [REDACTED:email]",
            "password=[REDACTED:secret]",
            r#""password": "[REDACTED:secret]""#,
        ] {
            check(text, text);
        }
    }

    #[test]
    fn extra_patterns_mask_with_their_name() {
        let redactor = Redactor::with_patterns(&[
            ("employee-id", r"\bEMP-[0-9]{6}\b"),
            ("anything-empty", r"z*"),
        ])
        .unwrap();
        check_with(
            &redactor,
            "ask EMP-123456 or alice@example.com",
            "ask [REDACTED:employee-id] or [REDACTED:email]",
        );
        check_with(&redactor, "EMP-12345 stays", "EMP-12345 stays");
        check_with(&redactor, "zzz", "[REDACTED:anything-empty]");
    }

    #[test]
    fn bad_extra_patterns_are_errors_that_name_them() {
        let error = Redactor::with_patterns(&[("ticket", r"T-(\d+")]).unwrap_err();
        assert!(
            matches!(&error, RedactError::InvalidPattern { name, .. } if name == "ticket"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            r"redaction pattern `ticket` does not compile: unclosed group in `T-(\d+`"
        );
        for bad_name in ["", "has space", "a]b", "ünï"] {
            let error = Redactor::with_patterns(&[(bad_name, "x")]).unwrap_err();
            assert_eq!(
                error,
                RedactError::InvalidName {
                    name: bad_name.to_string()
                }
            );
        }
        let error =
            Redactor::with_patterns(&[("one", "(?P<n>a)"), ("two", "(?P<n>b)")]).unwrap_err();
        assert!(matches!(error, RedactError::Combined { .. }), "{error:?}");
        assert!(!error.to_string().contains('\n'), "{error}");
    }

    #[test]
    fn no_redaction_leaves_everything() {
        let redactor = Redactor::none();
        let text = format!("{OPENAI_KEY} alice@example.com");
        assert!(matches!(redactor.redact(&text), Cow::Borrowed(_)));
        let mut event = every_kind_with_secrets().remove(0);
        let original = event.clone();
        redactor.redact_event(&mut event);
        assert_eq!(event, original);
    }

    #[test]
    fn the_default_patterns_compile() {
        let redactor = Redactor::with_patterns(&[]).unwrap();
        assert!(matches!(redactor.matcher, Matcher::Patterns { .. }));
        assert!(matches!(
            Redactor::default_patterns().matcher,
            Matcher::Patterns { .. }
        ));
    }

    #[test]
    fn a_redactor_is_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Redactor>();
    }

    const SECRET_TEXT: &str = "mail alice@example.com password=hunter2";
    const MASKED_TEXT: &str = "mail [REDACTED:email] password=[REDACTED:secret]";

    fn event(kind: EventKind) -> Event {
        Event {
            run_id: "run-alice@example.com".into(),
            agent_id: "agent-alice@example.com".into(),
            task_id: Some("password=task".into()),
            seq: 1,
            timestamp_ns: 1_700_000_000_000_000_000,
            span_id: Some(3),
            parent_span_id: None,
            kind,
        }
    }

    fn every_kind_with_secrets() -> Vec<Event> {
        vec![
            event(EventKind::Decision(DecisionEvent {
                choice: SECRET_TEXT.into(),
                rationale: SECRET_TEXT.into(),
                alternatives: vec![SECRET_TEXT.into(), "skip".into()],
            })),
            event(EventKind::Action(ActionEvent {
                tool: SECRET_TEXT.into(),
                arguments_json: SECRET_TEXT.into(),
                result_digest: Some("token=digest".into()),
                duration_ns: Some(5),
                error: Some(SECRET_TEXT.into()),
            })),
            event(EventKind::Gate(GateEvent {
                request_json: SECRET_TEXT.into(),
                outcome: GateEventOutcome::Denied,
                rule: Some(RuleOrigin {
                    id: "token=rule".into(),
                    file: Some("alice@example.com.toml".into()),
                    line: Some(1),
                }),
                gates: vec!["token=gate".into()],
                approval_id: Some("token=approval".into()),
                approver: Some(SECRET_TEXT.into()),
                reason: SECRET_TEXT.into(),
            })),
            event(EventKind::Cost(CostEvent {
                model: "token=model".into(),
                provider: None,
                input_tokens: 1,
                output_tokens: 2,
                cached_tokens: 0,
                reasoning_tokens: 0,
                cost_micros: 3,
                currency: "token=USD".into(),
                estimated: false,
                cache_write_tokens: 0,
                saved_tokens: 0,
                saved_micros: 0,
                warning: None,
            })),
            event(EventKind::Context(ContextEvent {
                query: Some(SECRET_TEXT.into()),
                sections: vec![ServedSection {
                    key: "token=key".into(),
                    section_id: "alice@example.com".into(),
                    version: 1,
                    freshness: "token=canonical".into(),
                }],
                tokens_served: 1,
                tokens_baseline: 2,
                withheld: 0,
            })),
        ]
    }

    #[test]
    fn events_of_every_kind_have_their_free_text_masked_and_their_ids_kept() {
        let redactor = Redactor::default_patterns();
        let mut events = every_kind_with_secrets();
        for event in &mut events {
            redactor.redact_event(event);
        }
        let masked = Some(MASKED_TEXT.to_string());
        let expected_kinds = vec![
            EventKind::Decision(DecisionEvent {
                choice: MASKED_TEXT.into(),
                rationale: MASKED_TEXT.into(),
                alternatives: vec![MASKED_TEXT.into(), "skip".into()],
            }),
            EventKind::Action(ActionEvent {
                tool: MASKED_TEXT.into(),
                arguments_json: MASKED_TEXT.into(),
                result_digest: Some("token=digest".into()),
                duration_ns: Some(5),
                error: masked.clone(),
            }),
            EventKind::Gate(GateEvent {
                request_json: MASKED_TEXT.into(),
                outcome: GateEventOutcome::Denied,
                rule: Some(RuleOrigin {
                    id: "token=rule".into(),
                    file: Some("alice@example.com.toml".into()),
                    line: Some(1),
                }),
                gates: vec!["token=gate".into()],
                approval_id: Some("token=approval".into()),
                approver: Some(SECRET_TEXT.into()),
                reason: MASKED_TEXT.into(),
            }),
            every_kind_with_secrets().remove(3).kind,
            EventKind::Context(ContextEvent {
                query: masked,
                sections: vec![ServedSection {
                    key: "token=key".into(),
                    section_id: "alice@example.com".into(),
                    version: 1,
                    freshness: "token=canonical".into(),
                }],
                tokens_served: 1,
                tokens_baseline: 2,
                withheld: 0,
            }),
        ];
        for (event, expected_kind) in events.into_iter().zip(expected_kinds) {
            assert_eq!(event, self::event(expected_kind));
        }
    }

    /// Pieces that random text is built from: secrets, near misses, keys, separators and masks,
    /// so that random joins put secrets next to each other and next to odd context.
    const FRAGMENTS: &[&str] = &[
        OPENAI_KEY,
        GITHUB_TOKEN,
        AWS_KEY_ID,
        SLACK_TOKEN,
        GOOGLE_KEY,
        STRIPE_KEY,
        "sk-",
        "AKIA",
        "ghp_",
        "abcdefgh",
        "12345678",
        "alice",
        "example.com",
        "x.io",
        "password",
        "token",
        "DB_",
        "Bearer",
        "basic",
        "Authorization",
        "[REDACTED:email]",
        "REDACTED",
        " ",
        "\t",
        "\n",
        "=",
        ":",
        "\"",
        "\\\"",
        "'",
        "\\",
        "@",
        "gho_0123456789abcdefghijklmnopqrstuvwxyz",
        "GHP_0123456789abcdefghijklmnopqrstuvwxyz",
        "ghx_0123456789abcdefghijklmnopqrstuvwxyz",
        "gh",
        "Github_Pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "ASIA",
        "aiza",
        "xoxp-",
        "_test_",
        "rk_live_",
        "PassPhrase",
        "apI-Key",
        "Private_Key",
        "access_key",
        "SECRET",
        "bearer ",
        ".",
        "-",
        "_",
        "[",
        "]",
        ",",
        "é",
        "日本",
    ];

    /// The default redactor without its prefilter, to compare against.
    fn without_prefilter(redactor: &Redactor) -> Redactor {
        let mut without = redactor.clone();
        if let Matcher::Patterns { uses_prefilter, .. } = &mut without.matcher {
            assert!(*uses_prefilter, "the default redactor has a prefilter");
            *uses_prefilter = false;
        }
        without
    }

    #[test]
    fn the_prefilter_never_changes_what_is_masked_in_short_texts() {
        let with_prefilter = Redactor::default_patterns();
        let without = without_prefilter(&with_prefilter);
        let n_fragments = FRAGMENTS.len();
        for first in 0..n_fragments {
            for second in 0..=n_fragments {
                for third in 0..=n_fragments {
                    let text: String = [
                        Some(first),
                        (second < n_fragments).then_some(second),
                        (third < n_fragments).then_some(third),
                    ]
                    .into_iter()
                    .flatten()
                    .map(|idx| FRAGMENTS[idx])
                    .collect();
                    assert_eq!(
                        with_prefilter.redact(&text),
                        without.redact(&text),
                        "input: {text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_prefilter_finds_secrets_at_every_offset() {
        let with_prefilter = Redactor::default_patterns();
        let without = without_prefilter(&with_prefilter);
        for secret in [
            "Authorization: Basic dXNlcjpwYXNz",
            "password=hunter2",
            "a@b.io",
        ] {
            for n_before in 0..600 {
                let text = format!("{} {secret} ok", "x".repeat(n_before));
                let redacted = with_prefilter.redact(&text);
                assert!(redacted.contains("[REDACTED:"), "{secret} after {n_before}");
                assert_eq!(redacted, without.redact(&text), "{secret} after {n_before}");
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_redacting_twice_equals_once(text in any::<String>()) {
            let redactor = Redactor::default_patterns();
            let once = redactor.redact(&text);
            let twice = redactor.redact(&once);
            prop_assert_eq!(&once, &twice);
        }

        #[test]
        fn the_prefilter_never_changes_what_is_masked(
            fragment_indices in prop::collection::vec(0..FRAGMENTS.len(), 0..24),
            noise in "[a-zA-Z0-9 :=_-]{0,40}",
        ) {
            let text: String = fragment_indices.iter().map(|&idx| FRAGMENTS[idx]).chain([noise.as_str()]).collect();
            let with_prefilter = Redactor::default_patterns();
            let without = without_prefilter(&with_prefilter);
            prop_assert_eq!(with_prefilter.redact(&text), without.redact(&text), "input: {:?}", text);
        }

        #[test]
        fn secret_laden_text_is_redacted_idempotently(
            fragment_indices in prop::collection::vec(0..FRAGMENTS.len(), 0..24)
        ) {
            let text: String = fragment_indices.iter().map(|&idx| FRAGMENTS[idx]).collect();
            let redactor = Redactor::default_patterns();
            let once = redactor.redact(&text);
            let twice = redactor.redact(&once);
            prop_assert_eq!(&once, &twice, "input: {:?}", text);
            prop_assert!(matches!(twice, Cow::Borrowed(_)), "input: {:?}", text);
        }
    }
}
