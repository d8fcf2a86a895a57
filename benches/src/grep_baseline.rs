//! The grep-and-read baseline: what an agent without a context service does to answer a question
//! from a repository's documentation, as the pydantic corpus's README defines it.
//!
//! The agent greps the checkout for each of the question's words and reads the files that matched
//! the most of them:
//!
//! - The question's words are the maximal runs of letters, digits and `_` (the characters
//!   `grep -w` counts as word characters), lower-cased, distinct, less the [`STOP_WORDS`].
//! - A file contains a word when the word is one of the file's words, split and lower-cased the
//!   same way: whole words, as `grep -w -i` matches (so `dict` does not match `dictionary`).
//! - Files rank by how many distinct question words they contain, most first, and then by path, so
//!   the ranking is deterministic. A file that contains none of the words is never read.
//! - The agent reads the top [`N_FILES_READ`] files whole, and pays each file's tokens.

use std::collections::HashSet;
use std::path::Path;

use crate::context_corpus::{read_text_tree, CorpusError};

/// How many of the top-ranked files the agent reads.
pub const N_FILES_READ: usize = 3;

/// Words the agent does not grep for: NLTK's English stop word list, less its entries with an
/// apostrophe (words split there, so `don't` is `don` and `t`, both listed).
#[rustfmt::skip]
pub const STOP_WORDS: &[&str] = &[
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours", "yourself",
    "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its",
    "itself", "they", "them", "their", "theirs", "themselves", "what", "which", "who", "whom",
    "this", "that", "these", "those", "am", "is", "are", "was", "were", "be", "been", "being",
    "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but",
    "if", "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about",
    "against", "between", "into", "through", "during", "before", "after", "above", "below", "to",
    "from", "up", "down", "in", "out", "on", "off", "over", "under", "again", "further", "then",
    "once", "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few",
    "more", "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so",
    "than", "too", "very", "s", "t", "can", "will", "just", "don", "should", "now", "d", "ll", "m",
    "o", "re", "ve", "y", "ain", "aren", "couldn", "didn", "doesn", "hadn", "hasn", "haven", "isn",
    "ma", "mightn", "mustn", "needn", "shan", "shouldn", "wasn", "weren", "won", "wouldn",
];

/// The words of `text`: maximal runs of alphanumeric characters and `_`, lower-cased.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|character: char| !(character.is_alphanumeric() || character == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// The words the agent greps for: the question's distinct words less the stop words, in the order
/// they first appear.
pub fn query_words(question: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words(question)
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
        .filter(|word| seen.insert(word.clone()))
        .collect()
}

/// One file of the checkout, as the agent sees it.
#[derive(Clone, Debug)]
struct GrepFile {
    path: String,
    words: HashSet<String>,
    n_tokens: u64,
}

/// What the agent read for one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineRead {
    /// The files read, best first, relative to the checkout with `/` separators.
    pub files: Vec<String>,
    /// How many distinct query words each file contains.
    pub n_matched_words: Vec<usize>,
    /// The tokens of the files read, added up.
    pub tokens: u64,
}

/// The grep-and-read baseline over one checkout.
#[derive(Clone, Debug)]
pub struct GrepBaseline {
    files: Vec<GrepFile>,
}

impl GrepBaseline {
    /// Reads every text file under `root`; `count_tokens` counts a whole file's tokens.
    pub fn from_dir(
        root: &Path,
        count_tokens: impl Fn(&str) -> usize,
    ) -> Result<Self, CorpusError> {
        let mut skipped = Vec::new();
        let files = read_text_tree(root, root, &mut skipped)?;
        Ok(Self::from_files(files, count_tokens))
    }

    /// The baseline over (path, text) pairs.
    pub fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
        count_tokens: impl Fn(&str) -> usize,
    ) -> Self {
        let mut files: Vec<GrepFile> = files
            .into_iter()
            .map(|(path, text)| GrepFile {
                words: words(&text).collect(),
                n_tokens: count_tokens(&text) as u64,
                path,
            })
            .collect();
        files.sort_by(|left, right| left.path.cmp(&right.path));
        Self { files }
    }

    /// The number of files in the checkout.
    pub fn n_files(&self) -> usize {
        self.files.len()
    }

    /// What the agent reads to answer `question`.
    pub fn read(&self, question: &str) -> BaselineRead {
        let query = query_words(question);
        let mut ranked: Vec<(usize, &GrepFile)> = self
            .files
            .iter()
            .map(|file| {
                let n_matched = query
                    .iter()
                    .filter(|word| file.words.contains(*word))
                    .count();
                (n_matched, file)
            })
            .filter(|(n_matched, _)| *n_matched > 0)
            .collect();
        // INVARIANT: `self.files` is sorted by path and the sort is stable, so ties keep path order.
        ranked.sort_by_key(|(n_matched, _)| std::cmp::Reverse(*n_matched));
        ranked.truncate(N_FILES_READ);
        BaselineRead {
            files: ranked.iter().map(|(_, file)| file.path.clone()).collect(),
            n_matched_words: ranked.iter().map(|(n_matched, _)| *n_matched).collect(),
            tokens: ranked.iter().map(|(_, file)| file.n_tokens).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_query_words(question: &str, expected: &[&str]) {
        assert_eq!(query_words(question), expected, "{question:?}");
    }

    #[test]
    fn query_words_drop_stop_words_and_repeats() {
        check_query_words(
            "How do I exclude a field? Our old code did user.dict(exclude={'password'}).",
            &[
                "exclude", "field", "old", "code", "user", "dict", "password",
            ],
        );
        check_query_words(
            "What's the way to set str_strip_whitespace?",
            &["way", "set", "str_strip_whitespace"],
        );
        check_query_words("I used a __root__ field", &["used", "__root__", "field"]);
    }

    fn baseline() -> GrepBaseline {
        let files = [
            ("docs/b.md", "model dump exclude fields"),
            ("docs/a.md", "model dump fields"),
            ("legacy/a.md", "dict exclude model"),
            ("docs/c.md", "dictionary of models"),
            ("docs/d.md", "nothing relevant"),
        ];
        GrepBaseline::from_files(
            files.map(|(path, text)| (path.to_string(), text.to_string())),
            |text| text.len(),
        )
    }

    fn check_read(question: &str, expected_files: &[&str], expected_tokens: u64) {
        let read = baseline().read(question);
        assert_eq!(read.files, expected_files, "{question:?}");
        assert_eq!(read.tokens, expected_tokens, "{question:?}");
    }

    #[test]
    fn reads_the_files_with_most_words_ties_by_path() {
        check_read(
            "How do I dump a model but exclude fields?",
            &["docs/b.md", "docs/a.md", "legacy/a.md"],
            25 + 17 + 18,
        );
        check_read(
            "model",
            &["docs/a.md", "docs/b.md", "legacy/a.md"],
            17 + 25 + 18,
        );
        check_read("dict", &["legacy/a.md"], 18);
        check_read("the", &[], 0);
    }
}
