//! The default redactor's prefilter: finds out fast that text holds no secret.
//!
//! Every match of a default pattern holds one of [`DEFAULT_LITERALS`] (compared without case) or
//! an `@`, so text holding none of them holds no secret, and the redactor need not run its regex.
//! The prefilter looks at the text two bytes at a time, at even offsets only: a literal of three
//! bytes or more starting at an even offset shows its first two bytes there, and one starting at
//! an odd offset its second and third. Two 256-entry tables give, for the first and the second
//! byte of a pair, the set of literals (and of their offsets) that have this byte there, without
//! case; the pair is a candidate when the two sets meet, and only a candidate is compared with its
//! literals. An `@` shows at either byte of a pair. There is no copy of the text and no
//! lowercasing, and the scan costs about three instructions a byte, against about twelve for a
//! lowercased copy searched with SIMD (aho-corasick's Teddy), which this replaces.

/// A literal of which every match of a default pattern holds one, compared without case, besides
/// the `@` of an e-mail address: `sk-`, the GitHub prefixes (`gh` and one of `pousr`, as the
/// pattern requires) and `github_pat_`, the AWS, Slack, Google and Stripe prefixes, `bearer`,
/// `authorization`, and the secret keys (`pass` for password, passwd and passphrase; `api` for
/// api_key). Each is lowercase and at least three bytes long, and there are at most 31.
///
/// Keep it in step with the default patterns: a property test compares redaction with and
/// without the prefilter.
pub(super) const DEFAULT_LITERALS: &[&str] = &[
    "sk-",
    "ghp",
    "gho",
    "ghu",
    "ghs",
    "ghr",
    "github_pat_",
    "akia",
    "asia",
    "xox",
    "aiza",
    "_live_",
    "_test_",
    "bearer",
    "authorization",
    "pass",
    "secret",
    "token",
    "api",
    "access",
    "private",
];

/// The shortest text a default pattern matches: an e-mail address such as `a@b.io`, or
/// `token=x`.
pub(super) const MIN_DEFAULT_MATCH_LEN: usize = 6;

/// The bit of a pair whose first byte is an `@`: every second byte has it.
const AT_FIRST: u64 = 1 << 62;

/// The bit of a pair whose second byte is an `@`: every first byte has it.
const AT_SECOND: u64 = 1 << 63;

/// For each byte, the literals that have it first in a pair, and second.
///
/// Literal `k` has two bits: bit `2k` for its pair at its own start (its bytes 0 and 1), bit
/// `2k + 1` for its pair one byte in (its bytes 1 and 2).
struct PairTables {
    first: [u64; 256],
    second: [u64; 256],
}

/// Sets `bit` for `byte` in `table`, and for its other case if it is an ASCII letter.
const fn set_without_case(table: &mut [u64; 256], byte: u8, bit: u64) {
    table[byte.to_ascii_lowercase() as usize] |= bit;
    table[byte.to_ascii_uppercase() as usize] |= bit;
}

const fn pair_tables() -> PairTables {
    assert!(DEFAULT_LITERALS.len() <= 31);
    let mut first = [AT_SECOND; 256];
    let mut second = [AT_FIRST; 256];
    first[b'@' as usize] |= AT_FIRST;
    second[b'@' as usize] |= AT_SECOND;
    let mut literal_idx = 0;
    while literal_idx < DEFAULT_LITERALS.len() {
        let literal = DEFAULT_LITERALS[literal_idx].as_bytes();
        assert!(literal.len() >= 3);
        let at_start = 1 << (2 * literal_idx);
        let one_in = 1 << (2 * literal_idx + 1);
        set_without_case(&mut first, literal[0], at_start);
        set_without_case(&mut second, literal[1], at_start);
        set_without_case(&mut first, literal[1], one_in);
        set_without_case(&mut second, literal[2], one_in);
        literal_idx += 1;
    }
    PairTables { first, second }
}

static PAIR_TABLES: PairTables = pair_tables();

/// Whether `text` may hold a match of a default pattern: false only if it is shorter than any
/// match, or holds neither an `@` nor any of [`DEFAULT_LITERALS`] (compared without case).
pub(super) fn may_match(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < MIN_DEFAULT_MATCH_LEN {
        return false;
    }
    let tables = &PAIR_TABLES;
    let mut pairs = bytes.chunks_exact(2);
    let mut pair_start = 0;
    for pair in &mut pairs {
        let candidates = tables.first[usize::from(pair[0])] & tables.second[usize::from(pair[1])];
        if candidates != 0 && is_match_at(bytes, pair_start, candidates) {
            return true;
        }
        pair_start += 2;
    }
    // An odd last byte pairs with a byte that is in no literal, so only an `@` there is a match.
    if let [last] = pairs.remainder() {
        return *last == b'@';
    }
    false
}

/// Whether a candidate literal of the pair at `pair_start` is there.
#[cold]
fn is_match_at(bytes: &[u8], pair_start: usize, mut candidates: u64) -> bool {
    while candidates != 0 {
        let bit = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        if bit >= 62 {
            return true;
        }
        let literal = DEFAULT_LITERALS[bit / 2].as_bytes();
        // The pair is the literal's bytes 0 and 1 (even bits), or its bytes 1 and 2 (odd bits).
        let Some(start) = pair_start.checked_sub(bit % 2) else {
            continue;
        };
        if bytes
            .get(start..start + literal.len())
            .is_some_and(|there| there.eq_ignore_ascii_case(literal))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    // Unit tests of the prefilter against a plain search for each literal: every literal at every
    // offset in either case, near misses, and random text; and against the prefilter it replaced.

    use super::*;
    use proptest::prelude::*;

    /// What `may_match` must answer, the slow way.
    fn reference(text: &str) -> bool {
        let lowercase = text.to_ascii_lowercase();
        text.len() >= MIN_DEFAULT_MATCH_LEN
            && (text.contains('@')
                || DEFAULT_LITERALS
                    .iter()
                    .any(|literal| lowercase.contains(literal)))
    }

    fn check(text: &str) {
        assert_eq!(may_match(text), reference(text), "input: {text:?}");
    }

    /// The literals with the `@`, in lowercase, uppercase and mixed case.
    fn every_literal_in_every_case() -> Vec<String> {
        let mut literals = vec!["@".to_string()];
        for literal in DEFAULT_LITERALS {
            literals.push(literal.to_string());
            literals.push(literal.to_ascii_uppercase());
            literals.push(
                literal
                    .chars()
                    .enumerate()
                    .map(|(idx, char)| match idx % 2 {
                        0 => char.to_ascii_uppercase(),
                        _ => char,
                    })
                    .collect(),
            );
        }
        literals
    }

    #[test]
    fn every_literal_is_found_at_every_offset_in_every_case() {
        for literal in every_literal_in_every_case() {
            for n_before in 0..9 {
                for n_after in 0..9 {
                    let text = format!("{}{literal}{}", "x".repeat(n_before), "y".repeat(n_after));
                    check(&text);
                    assert_eq!(
                        may_match(&text),
                        text.len() >= MIN_DEFAULT_MATCH_LEN,
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn literals_cut_short_or_broken_are_not_found() {
        for text in [
            "",
            "plain text with nothing in it",
            "skeleton_key",
            "gh_pages, ghost, GHz",
            "githu",
            "akiasi",
            "_liv_ _tes_",
            "beare",
            "authorizatio",
            "pas sec ret tok en",
            "ap-i acces privat",
            "xo-x aiz-a",
            "@@@@@",
            "12345",
        ] {
            check(text);
        }
        check("x token");
        check("xxxxxxxxxxtoke");
        check("xxxxxxxxxx@");
        check("xxxxxxxxx@");
    }

    #[test]
    fn unicode_and_bytes_near_the_letters_are_not_taken_for_them() {
        for text in [
            "ſk-ſecret",
            "tоken with a Cyrillic o",
            "\u{0}\u{1}\u{7f}ÿ`{[^~",
            "é@",
            "日本語のテキスト",
        ] {
            check(text);
        }
    }

    /// Pieces of random text: every literal in every case, parts of literals, and fillers.
    fn fragments() -> Vec<String> {
        let mut fragments = every_literal_in_every_case();
        for literal in DEFAULT_LITERALS {
            fragments.push(literal[..literal.len() - 1].to_string());
            fragments.push(literal[1..].to_string());
        }
        for filler in ["x", "ab", " ", "_", "-", "=", "\"", "é", "G", "H"] {
            fragments.push(filler.to_string());
        }
        fragments
    }

    /// The prefilter this one replaced: a lowercased copy searched for the literals of the time
    /// (with `gh` for the GitHub prefixes), and an `@`.
    fn previous_prefilter(text: &str) -> bool {
        let lowercase = text.to_ascii_lowercase();
        text.len() >= MIN_DEFAULT_MATCH_LEN
            && (text.contains('@')
                || lowercase.contains("gh")
                || DEFAULT_LITERALS
                    .iter()
                    .filter(|literal| !literal.starts_with("gh"))
                    .any(|literal| lowercase.contains(literal)))
    }

    proptest! {
        #[test]
        fn random_text_gets_the_plain_search_answer(text in any::<String>()) {
            prop_assert_eq!(may_match(&text), reference(&text), "input: {:?}", text);
        }

        #[test]
        fn text_made_of_literals_and_their_parts_gets_the_plain_search_answer(
            fragment_indices in prop::collection::vec(0..1_000usize, 0..12),
        ) {
            let fragments = fragments();
            let text: String = fragment_indices
                .iter()
                .map(|&idx| fragments[idx % fragments.len()].as_str())
                .collect();
            prop_assert_eq!(may_match(&text), reference(&text), "input: {:?}", text);
            // It never lets through what the previous prefilter stopped.
            prop_assert!(!may_match(&text) || previous_prefilter(&text), "input: {:?}", text);
        }
    }
}
