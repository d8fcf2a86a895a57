//! A hand-written pre-tokenizer for ASCII text, equal to the `o200k_base` and `cl100k_base`
//! regexes on it, and a cut of any text into stretches it can take.
//!
//! The regexes (`tiktoken`'s, which `bpe-openai` runs with `regex-automata`) are most of the cost
//! of counting ordinary text. On ASCII their Unicode classes shrink to byte tests (`\p{L}` is a
//! letter, `\p{Lu}` upper case, `\p{N}` a digit, `\s` one of `\t \n \v \f \r` and space), so a
//! loop over bytes finds the same pieces several times faster. A property test compares the two
//! on random ASCII text, and the exactness test compares the counts with `tiktoken`'s.

use super::count::Encoding;

/// The pieces the encoding's pre-tokenizer cuts the ASCII `text` into, in order.
pub(crate) fn ascii_pieces(text: &[u8], encoding: Encoding) -> AsciiPieces<'_> {
    AsciiPieces {
        text,
        position: 0,
        encoding,
    }
}

/// An iterator over the pieces of ASCII text.
pub(crate) struct AsciiPieces<'a> {
    text: &'a [u8],
    position: usize,
    encoding: Encoding,
}

impl<'a> Iterator for AsciiPieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.position;
        if start >= self.text.len() {
            return None;
        }
        let end = match self.encoding {
            Encoding::O200kBase => o200k_piece_end(self.text, start),
            Encoding::Cl100kBase => cl100k_piece_end(self.text, start),
        };
        // INVARIANT: every alternative consumes at least one byte, so `end > start`.
        let end = end.max(start + 1);
        self.position = end;
        Some(&self.text[start..end])
    }
}

fn is_letter(byte: u8) -> bool {
    byte.is_ascii_alphabetic()
}

fn is_space(byte: u8) -> bool {
    // `\s` on ASCII: tab, line feed, vertical tab, form feed, carriage return and space.
    matches!(byte, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

fn is_newline(byte: u8) -> bool {
    byte == b'\r' || byte == b'\n'
}

/// `[^\s\p{L}\p{N}]`: punctuation and the other symbols and controls.
fn is_other(byte: u8) -> bool {
    !is_space(byte) && !byte.is_ascii_alphanumeric()
}

/// `[^\r\n\p{L}\p{N}]`: what may lead a word.
fn may_lead_word(byte: u8) -> bool {
    !is_newline(byte) && !byte.is_ascii_alphanumeric()
}

fn at(text: &[u8], idx: usize) -> Option<u8> {
    text.get(idx).copied()
}

fn run_end(text: &[u8], mut idx: usize, class: impl Fn(u8) -> bool) -> usize {
    while at(text, idx).is_some_and(&class) {
        idx += 1;
    }
    idx
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `idx`: where it ends, if it is there.
fn contraction_end(text: &[u8], idx: usize) -> Option<usize> {
    if at(text, idx) != Some(b'\'') {
        return None;
    }
    let first = at(text, idx + 1)?.to_ascii_lowercase();
    let second = at(text, idx + 2).map(|byte| byte.to_ascii_lowercase());
    match (first, second) {
        (b's' | b't' | b'm' | b'd', _) => Some(idx + 2),
        (b'r' | b'v', Some(b'e')) | (b'l', Some(b'l')) => Some(idx + 3),
        _ => None,
    }
}

/// Digits, at most three: `\p{N}{1,3}`.
fn digits_end(text: &[u8], idx: usize) -> Option<usize> {
    // Looks at three bytes at most, so a long run of digits is not rescanned for every piece.
    let end = idx
        + text[idx.min(text.len())..]
            .iter()
            .take(3)
            .take_while(|byte| byte.is_ascii_digit())
            .count();
    (end > idx).then_some(end)
}

/// The whitespace alternatives both encodings end with: `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`.
fn space_end(text: &[u8], idx: usize) -> Option<usize> {
    let end = run_end(text, idx, is_space);
    if end == idx {
        return None;
    }
    // `\s*[\r\n]+`: through the last line break of the run.
    if let Some(last_break) = (idx..end)
        .rev()
        .find(|&byte_idx| is_newline(text[byte_idx]))
    {
        return Some(last_break + 1);
    }
    // `\s+(?!\S)`: the run, less its last character when something other than space follows;
    // `\s+` when the run is that one character.
    if end < text.len() && end - idx > 1 {
        Some(end - 1)
    } else {
        Some(end)
    }
}

/// Where the letters of a word piece starting at `start` begin: at `start`, or after the one
/// character of `[^\r\n\p{L}\p{N}]` that may lead a word; `None` if no word starts here.
fn word_start(text: &[u8], start: usize) -> Option<usize> {
    let first = text[start];
    if is_letter(first) {
        Some(start)
    } else if may_lead_word(first) && at(text, start + 1).is_some_and(is_letter) {
        Some(start + 1)
    } else {
        None
    }
}

fn o200k_piece_end(text: &[u8], start: usize) -> usize {
    // `[^\r\n\p{L}\p{N}]?[\p{Lu}..]*[\p{Ll}..]+(?i:...)?|[^\r\n\p{L}\p{N}]?[\p{Lu}..]+[\p{Ll}..]*(?i:...)?`
    let first = text[start];
    if let Some(word_start) = word_start(text, start) {
        let upper_end = run_end(text, word_start, |byte| byte.is_ascii_uppercase());
        let lower_end = run_end(text, upper_end, |byte| byte.is_ascii_lowercase());
        return contraction_end(text, lower_end).unwrap_or(lower_end);
    }
    if let Some(end) = digits_end(text, start) {
        return end;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
    let other_start = if first == b' ' { start + 1 } else { start };
    let other_end = run_end(text, other_start, is_other);
    if other_end > other_start {
        return run_end(text, other_end, |byte| is_newline(byte) || byte == b'/');
    }
    space_end(text, start).unwrap_or(start + 1)
}

fn cl100k_piece_end(text: &[u8], start: usize) -> usize {
    // `(?i:'s|'t|'re|'ve|'m|'ll|'d)` comes first.
    if let Some(end) = contraction_end(text, start) {
        return end;
    }
    // `[^\r\n\p{L}\p{N}]?\p{L}+`
    let first = text[start];
    if let Some(word_start) = word_start(text, start) {
        return run_end(text, word_start, is_letter);
    }
    if let Some(end) = digits_end(text, start) {
        return end;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    let other_start = if first == b' ' { start + 1 } else { start };
    let other_end = run_end(text, other_start, is_other);
    if other_end > other_start {
        return run_end(text, other_end, is_newline);
    }
    space_end(text, start).unwrap_or(start + 1)
}

/// Cuts `text` into stretches that no pre-tokenizer piece of either encoding crosses: each ends
/// just after a `\n` that is followed by a character that is neither whitespace nor `/` (a run of
/// line breaks, and a punctuation run's trailing breaks and slashes, end there, and the only
/// look-ahead, `\s+(?!\S)`, cannot see past it). Each stretch comes with whether it is ASCII.
pub(crate) fn stretches(text: &str) -> impl Iterator<Item = (&str, bool)> {
    let bytes = text.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let mut end = start;
        let mut ascii = true;
        loop {
            match bytes[end..]
                .iter()
                .position(|&byte| byte == b'\n' || byte >= 0x80)
            {
                None => {
                    end = bytes.len();
                    break;
                }
                Some(offset) => {
                    let idx = end + offset;
                    if bytes[idx] >= 0x80 {
                        ascii = false;
                        end = idx + 1;
                        continue;
                    }
                    end = idx + 1;
                    if bytes
                        .get(end)
                        .is_some_and(|&next| next != b'/' && !is_space(next) && next < 0x80)
                    {
                        break;
                    }
                }
            }
        }
        // A multi-byte character is never cut: the cut points follow a `\n`.
        let stretch = &text[start..end];
        start = end;
        Some((stretch, ascii))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn regex_pieces(text: &str, encoding: Encoding) -> Vec<String> {
        let tokenizer = match encoding {
            Encoding::O200kBase => bpe_openai::o200k_base(),
            Encoding::Cl100kBase => bpe_openai::cl100k_base(),
        };
        tokenizer.split(text).map(str::to_string).collect()
    }

    fn own_pieces(text: &str, encoding: Encoding) -> Vec<String> {
        ascii_pieces(text.as_bytes(), encoding)
            .map(|piece| String::from_utf8(piece.to_vec()).unwrap())
            .collect()
    }

    fn check(text: &str) {
        for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
            assert_eq!(
                own_pieces(text, encoding),
                regex_pieces(text, encoding),
                "{encoding} on {text:?}"
            );
        }
    }

    #[test]
    fn pieces_equal_the_regexes() {
        for text in [
            "",
            "hello world",
            "Hello WORLD HTTPServer don't they're I'M WE'LL it'S '",
            "  leading and trailing  ",
            "a\n\nb\r\n\r\n  c\t\td \u{b}\u{c}e",
            "x = foo(bar, 12345) + 0.5; // comment\n    return y;\n}\n",
            "((hello)) [a]b \"quoted\" 'single' --flag=value /path/to/file.rs",
            "!!!\n\n///\n/ /a ?b",
            "   \n   ",
            " 1 22 333 4444",
            "'s's 're've'll'd 'x 'S",
        ] {
            check(text);
        }
    }

    #[test]
    fn stretches_cover_the_text_and_say_whether_it_is_ascii() {
        let text = "line one\nline two é\n/still\n  indented\nnext\n";
        let parts: Vec<(&str, bool)> = stretches(text).collect();
        assert_eq!(
            parts.iter().map(|(part, _)| *part).collect::<String>(),
            text
        );
        assert_eq!(
            parts,
            [
                ("line one\n", true),
                ("line two é\n/still\n  indented\n", false),
                ("next\n", true)
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn pieces_equal_the_regexes_on_any_ascii(text in "[ -~\t\n\r\u{b}\u{c}]{0,80}") {
            check(&text);
        }

        #[test]
        fn pieces_equal_the_regexes_on_text_like_code(text in "([a-zA-Z]{1,6}|[0-9]{1,5}|[ ]{1,4}|\n|\r\n|[(){};.,'\"/=_-]|'[sStTmMdD]|'(re|ve|ll|RE|Ll)){0,40}") {
            check(&text);
        }
    }
}
