//! Exact token counts with the `o200k_base` tokenizer.
//!
//! The context store reports a token count for every section it serves, and the cost meter
//! counts prompt and completion tokens, so both use one encoder and agree on every number.
//! The counting itself lives in [`crate::cost`], which also has `cl100k_base` and maps model
//! names to encodings; this module keeps the one-call form the context store uses.

use crate::cost::Encoding;

/// The name of the tokenizer behind [`count_tokens`].
///
/// `o200k_base` is the byte-pair encoding of OpenAI's GPT-4o, GPT-4.1, GPT-5 and `o` series
/// models (about 200,000 tokens), as published in OpenAI's `tiktoken`.
/// Counts made with it are exact for those models and a close estimate for others.
pub const TOKENIZER: &str = "o200k_base";

/// Returns the number of `o200k_base` tokens in `text`, exactly as `tiktoken` counts them.
///
/// The text is encoded as ordinary text: special tokens such as `<|endoftext|>` are counted as
/// the plain characters they are made of, as they are when a prompt is sent to a model.
/// Counting takes time linear in the length of the text, whatever the text (a megabyte of
/// spaces included). Safe to call from many threads at once.
///
/// ```
/// assert_eq!(fourfold::tokens::count_tokens("hello world"), 2);
/// ```
pub fn count_tokens(text: &str) -> usize {
    usize::try_from(Encoding::O200kBase.count(text)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    // Covers exact counts against known `o200k_base` values and huge inputs.
    use super::*;

    fn check(text: &str, expected: usize) {
        assert_eq!(count_tokens(text), expected, "text: {text:?}");
    }

    #[test]
    fn known_counts() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            (" ", 1),
            ("hello world", 2),
            ("Hello, world!", 4),
            ("model_dump", 2),
            ("The quick brown fox jumps over the lazy dog.", 10),
            ("def f(x):\n    return x\n", 8),
            ("héllo 世界", 3),
            // Special tokens are counted as ordinary text.
            ("<|endoftext|>", 7),
        ];
        for &(text, expected) in cases {
            check(text, expected);
        }
    }

    #[test]
    fn long_whitespace_run_is_counted_whole() {
        // `tiktoken` itself gives 8,192 for this (see `tests/fixtures/tokens/cases.json`).
        check(&" ".repeat(1 << 20), 8192);
    }
}
