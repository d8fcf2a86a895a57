//! Exact token counts with the `o200k_base` tokenizer.
//!
//! The context store reports a token count for every section it serves, and the cost meter
//! counts prompt and completion tokens, so both use this one module and agree on every number.
//! The encoder is built once per process, the first time a count is asked for, and is shared
//! by all threads.

/// The name of the tokenizer behind [`count_tokens`].
///
/// `o200k_base` is the byte-pair encoding of OpenAI's GPT-4o, GPT-4.1, GPT-5 and `o` series
/// models (about 200,000 tokens), as published in OpenAI's `tiktoken`.
/// Counts made with it are exact for those models and a close estimate for others.
pub const TOKENIZER: &str = "o200k_base";

/// The longest text encoded in one call to the encoder.
///
/// The encoder's pre-tokenizer is a backtracking regex that gives up (and the encoder then
/// panics) on a single run of about 700,000 whitespace characters, so longer texts are cut into
/// chunks first, at boundaries where the pre-tokenizer splits anyway (see [`chunks`]).
const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Returns the number of `o200k_base` tokens in `text`.
///
/// The text is encoded as ordinary text: special tokens such as `<|endoftext|>` are counted as
/// the plain characters they are made of, as they are when a prompt is sent to a model.
/// The count is exact unless some 64 KiB stretch of the text has no line that starts with a
/// character other than whitespace or `/` (a single huge line, say); such a stretch is cut at
/// 64 KiB, which may change the count by a token or so per cut, instead of letting the encoder
/// fail on it.
///
/// Safe to call from many threads at once.
///
/// ```
/// assert_eq!(fourfold::tokens::count_tokens("hello world"), 2);
/// ```
pub fn count_tokens(text: &str) -> usize {
    count_in_chunks(text, MAX_CHUNK_BYTES)
}

/// Counts the tokens of `text`, encoding at most about `max_chunk` bytes at a time.
fn count_in_chunks(text: &str, max_chunk: usize) -> usize {
    let encoder = tiktoken_rs::o200k_base_singleton();
    if text.len() <= max_chunk {
        return encoder.encode_ordinary(text).len();
    }
    chunks(text, max_chunk)
        .map(|(chunk, _)| encoder.encode_ordinary(chunk).len())
        .sum()
}

/// Cuts `text` into pieces of at most about `max_chunk` bytes whose token counts add up to the
/// count of the whole.
///
/// A piece ends just after a `\n` that is followed by a character that is neither whitespace
/// nor `/`: the `o200k_base` pre-tokenizer never lets a piece run across such a point (a run of
/// newlines ends there, and only `/` may follow newlines inside a punctuation piece), and its
/// only look-ahead (`\s+(?!\S)`) cannot see past it either.
/// Where a stretch of more than `max_chunk` bytes has no such point, it is cut at the last
/// character boundary that fits, and the count may then differ by a token or so; such a piece
/// comes with `false`.
fn chunks(text: &str, max_chunk: usize) -> impl Iterator<Item = (&str, bool)> {
    let max_chunk = max_chunk.max(4);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= max_chunk {
            let chunk = rest;
            rest = "";
            return Some((chunk, true));
        }
        let bytes = rest.as_bytes();
        // The last safe boundary at or before `max_chunk`.
        let mut cut = None;
        let mut idx = max_chunk.min(bytes.len() - 1);
        while idx > 0 {
            if bytes[idx - 1] == b'\n' && is_safe_start(&rest[idx..]) {
                cut = Some(idx);
                break;
            }
            idx -= 1;
        }
        let exact = cut.is_some();
        let cut = cut.unwrap_or_else(|| {
            let mut end = max_chunk;
            // INVARIANT: `max_chunk >= 4` and a character is at most 4 bytes long, so this
            // stops at a boundary above 0.
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            end
        });
        let (chunk, tail) = rest.split_at(cut);
        rest = tail;
        Some((chunk, exact))
    })
}

/// Whether a pre-tokenizer piece can be relied on to start at the beginning of `tail`, given
/// that the text before it ends with `\n`.
fn is_safe_start(tail: &str) -> bool {
    match tail.chars().next() {
        Some(first) => !first.is_whitespace() && first != '/',
        None => false,
    }
}

#[cfg(test)]
mod tests {
    // Covers exact counts against known `o200k_base` values and the chunking of long texts.
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
    fn chunked_counts_equal_whole_counts() {
        let texts = [
            "# Title\n\nSome text.\n/path/after/newline\n  indented\n\n\n\tx\nend",
            "line one\nline two\n\n## Heading {#anchor}\n```python\nprint(1)\n```\n",
            "a.\n/b\n.\n/c\nplain\n",
            "no newline at all in this text but it is long enough to be cut",
            "   \n   \n   \nx\n   y\n",
            "unicode ünïcödé 世界\n世界 more\n",
        ];
        for text in texts {
            let whole = tiktoken_rs::o200k_base_singleton()
                .encode_ordinary(text)
                .len();
            for max_chunk in [4, 7, 16, 33] {
                let pieces: Vec<(&str, bool)> = chunks(text, max_chunk).collect();
                let joined: String = pieces.iter().map(|(piece, _)| *piece).collect();
                assert_eq!(joined, text);
                if pieces.iter().all(|(_, exact)| *exact) {
                    assert_eq!(count_in_chunks(text, max_chunk), whole, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn long_whitespace_run_does_not_panic() {
        let text = " ".repeat(1_000_000);
        let count = count_tokens(&text);
        assert!(count > 0);
    }

    #[test]
    fn many_threads_agree() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| count_tokens("hello world")))
            .collect();
        for handle in handles {
            assert_eq!(handle.join().ok(), Some(2));
        }
    }
}
