//! Turning text into search terms.
//!
//! The analyzer reads words as runs of letters, digits and `_`, so code such as `.dict()` or
//! `@validator` gives `dict` and `validator`. It cuts a word into parts at `_` and at camelCase
//! humps, lowercases them, drops English stop words and stems the ASCII ones with the Snowball
//! English (Porter2) stemmer. A word of two or more parts also gives its whole lowercased form,
//! unstemmed (`model_dump` gives `model`, `dump` and `model_dump`; `BaseModel` gives `base`,
//! `model` and `basemodel`), so a query for the identifier prefers the exact identifier while
//! a query for its words still finds it.

use std::cell::RefCell;

use compact_str::CompactString;
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap;

/// Terms longer than this many bytes (hashes, base64 blobs) are dropped.
const MAX_TERM_BYTES: usize = 64;

/// An analyzer remembers at most this many stems; past it, it forgets them all and starts over.
/// Text repeats its words, so a few thousand stems cover most of any corpus.
const MAX_CACHED_STEMS: usize = 1 << 15;

/// English stop words, sorted for binary search.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "d",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "ll",
    "m",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "re",
    "s",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "ve",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Returns the search terms of `text`, in order, with repeats.
///
/// ```
/// use fourfold::context::analyze;
/// assert_eq!(analyze("How do I use model_dump?"), ["use", "model", "dump", "model_dump"]);
/// assert_eq!(analyze("Validators"), ["valid"]);
/// ```
pub fn analyze(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    Analyzer::with(|analyzer| analyzer.each_term(text, |term| terms.push(term.to_string())));
    terms
}

/// The analyzer, holding its stemmer, the stems it has computed and scratch buffers, so that
/// analysing many texts does not allocate per word and stems each distinct word once.
pub(crate) struct Analyzer {
    stemmer: Stemmer,
    /// Lower-case ASCII word to its stem, or `None` for a stop word.
    stems: FxHashMap<CompactString, Option<CompactString>>,
    part: String,
    whole: String,
}

thread_local! {
    static ANALYZER: RefCell<Analyzer> = RefCell::new(Analyzer::new());
}

impl Analyzer {
    pub(crate) fn new() -> Analyzer {
        Analyzer {
            stemmer: Stemmer::create(Algorithm::English),
            stems: FxHashMap::default(),
            part: String::new(),
            whole: String::new(),
        }
    }

    /// Runs `f` with this thread's analyzer, whose stems outlive the call.
    pub(crate) fn with<R>(f: impl FnOnce(&mut Analyzer) -> R) -> R {
        ANALYZER.with(|cell| match cell.try_borrow_mut() {
            Ok(mut analyzer) => f(&mut analyzer),
            // Only if `f` itself analyses: a fresh analyzer gives the same terms.
            Err(_) => f(&mut Analyzer::new()),
        })
    }

    /// Calls `emit` with each term of `text`, in order.
    pub(crate) fn each_term(&mut self, text: &str, mut emit: impl FnMut(&str)) {
        for word in text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|word| !word.is_empty())
        {
            self.word(word, &mut emit);
        }
    }

    fn word(&mut self, word: &str, emit: &mut impl FnMut(&str)) {
        let mut n_parts = 0;
        for part in parts(word) {
            n_parts += 1;
            self.part.clear();
            if part.is_ascii() {
                self.part.push_str(part);
                self.part.make_ascii_lowercase();
            } else {
                self.part.extend(part.chars().flat_map(char::to_lowercase));
            }
            if self.part.len() > MAX_TERM_BYTES {
                continue;
            }
            if self.part.is_ascii() {
                // The cache also remembers stop words, so a cached word is one lookup.
                match self.stems.get(self.part.as_str()) {
                    Some(Some(stem)) => emit(stem),
                    Some(None) => {}
                    None => {
                        let stem: Option<CompactString> = (!is_stop_word(&self.part))
                            .then(|| self.stemmer.stem(&self.part).into());
                        if let Some(stem) = &stem {
                            emit(stem);
                        }
                        if self.stems.len() >= MAX_CACHED_STEMS {
                            self.stems.clear();
                        }
                        self.stems.insert(self.part.as_str().into(), stem);
                    }
                }
            } else if !is_stop_word(&self.part) {
                emit(&self.part);
            }
        }
        if n_parts > 1 {
            self.whole.clear();
            self.whole
                .extend(word.trim_matches('_').chars().flat_map(char::to_lowercase));
            if self.whole.len() <= MAX_TERM_BYTES {
                emit(&self.whole);
            }
        }
    }
}

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// Cuts an identifier into its parts at `_` and at camelCase humps (`getHTTPResponse` gives
/// `get`, `HTTP` and `Response`).
fn parts(word: &str) -> impl Iterator<Item = &str> {
    word.split('_')
        .filter(|piece| !piece.is_empty())
        .flat_map(camel_parts)
}

fn camel_parts(piece: &str) -> impl Iterator<Item = &str> {
    let mut rest = piece;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (part, tail) = rest.split_at(camel_cut(rest));
        rest = tail;
        Some(part)
    })
}

/// Where the first camelCase part of `piece` ends.
fn camel_cut(piece: &str) -> usize {
    let mut chars = piece.char_indices().peekable();
    let mut previous: Option<char> = None;
    while let Some((at, current)) = chars.next() {
        if let Some(previous) = previous {
            let next_is_lower = chars.peek().is_some_and(|(_, next)| next.is_lowercase());
            let hump = current.is_uppercase()
                && (previous.is_lowercase()
                    || previous.is_ascii_digit()
                    || (previous.is_uppercase() && next_is_lower));
            if hump {
                return at;
            }
        }
        previous = Some(current);
    }
    piece.len()
}

#[cfg(test)]
mod tests {
    // Covers word splitting, identifiers, stop words and stemming.
    use super::*;

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(analyze(text), expected, "text: {text:?}");
    }

    #[test]
    fn terms() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ...  ", &[]),
            ("the and of", &[]),
            ("Hello, World!", &["hello", "world"]),
            ("model_dump", &["model", "dump", "model_dump"]),
            ("model dump", &["model", "dump"]),
            (
                "user.dict(exclude={'password'})",
                &["user", "dict", "exclud", "password"],
            ),
            ("@validator", &["valid"]),
            ("@field_validator", &["field", "valid", "field_validator"]),
            ("__root__", &["root"]),
            ("BaseModel", &["base", "model", "basemodel"]),
            (
                "getHTTPResponse",
                &["get", "http", "respons", "gethttpresponse"],
            ),
            ("JSONSchema", &["json", "schema", "jsonschema"]),
            ("v2 utf8 3.14", &["v2", "utf8", "3", "14"]),
            (
                "Serialization serialize serializing",
                &["serial", "serial", "serial"],
            ),
            (
                "validators validator validation",
                &["valid", "valid", "valid"],
            ),
            ("don't", &[]),
            ("Ünïcödé 世界", &["ünïcödé", "世界"]),
            ("a_the_of", &["a_the_of"]),
        ];
        for (text, expected) in cases {
            check(text, expected);
        }
    }

    #[test]
    fn cached_stems_match_the_stemmer() {
        let text = "Serialization serializing validators validated models modelling";
        let first = analyze(text);
        let mut fresh = Analyzer::new();
        let mut again = Vec::new();
        fresh.each_term(text, |term| again.push(term.to_string()));
        assert_eq!(first, again);
        // A full cache starts over rather than growing.
        Analyzer::with(|analyzer| {
            for n in 0..MAX_CACHED_STEMS + 10 {
                analyzer.each_term(&format!("word{n}s"), |_| {});
            }
            assert!(analyzer.stems.len() <= MAX_CACHED_STEMS);
        });
        assert_eq!(analyze(text), first);
        // Stop words stay out once cached.
        assert!(analyze("The the THE of").is_empty());
        assert!(analyze("The the THE of").is_empty());
    }

    #[test]
    fn stop_words_are_sorted() {
        assert!(STOP_WORDS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn long_terms_are_dropped() {
        let long = "x".repeat(MAX_TERM_BYTES + 1);
        check(&long, &[]);
        check(&format!("{long}_y"), &["y"]);
    }
}
