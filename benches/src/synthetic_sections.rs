//! A synthetic documentation store, generated deterministically, to time `ask` on many sections.
//!
//! The vocabulary has [`N_COMMON_WORDS`] (120) common English words (ranks 1 to 120) followed by
//! pseudo-words made of two to four syllables (`ravelo`, `tinemuka`), [`VOCABULARY_SIZE`] words in
//! all. Body words are drawn with a Zipf distribution (the word of rank `r` with weight `1 / r`),
//! so about half of a body's words are common words, as in English prose, and the rest spread over
//! a long tail; each body is [`WORDS_PER_SECTION`] words, which o200k_base counts as about 300
//! tokens, in paragraphs of 40 to 80 words.
//!
//! A document is Markdown: a `# Title` with an intro paragraph, then `## Heading` sections. Titles
//! and headings take two to five words from templates such as `Configuring the {w} {w}`, with
//! content words (not common ones) drawn from the same Zipf distribution. Every section, the title's
//! included, is one section of the store and one document of the peer's index.
//!
//! A query names what a section is about, as an agent would: it picks a section, and takes one or
//! two words of its heading and two to four words of its body, each a content word (a heading's
//! template words such as `Configuring` count as heading words); every other query also gets one
//! common word (`how`, `with`) in place of its sixth word, if it has one. That makes three to six
//! words.
//!
//! Nothing depends on the clock or on a random source: the same arguments give the same store.

use std::collections::HashSet;

/// The number of common English words at the head of the vocabulary.
pub const N_COMMON_WORDS: usize = COMMON_WORDS.len();

/// The number of words in the vocabulary.
pub const VOCABULARY_SIZE: usize = 20_000;

/// The words in a section's body.
pub const WORDS_PER_SECTION: usize = 175;

/// Common English words, most frequent first (after the usual frequency lists of written English).
const COMMON_WORDS: [&str; 120] = [
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "be", "on",
    "not", "this", "by", "are", "or", "from", "at", "which", "an", "you", "can", "if", "will",
    "all", "has", "but", "its", "have", "one", "when", "each", "so", "more", "they", "use", "any",
    "other", "new", "how", "there", "set", "may", "also", "into", "only", "value", "first", "some",
    "then", "than", "these", "used", "two", "must", "time", "data", "way", "name", "same", "like",
    "should", "does", "default", "field", "type", "call", "list", "file", "run", "return", "error",
    "before", "after", "where", "model", "code", "change", "over", "without", "object", "case",
    "both", "what", "check", "example", "second", "string", "number", "own", "need", "most",
    "every", "key", "user", "point", "line", "class", "test", "method", "option", "path",
    "between", "while", "mode", "state", "level", "order", "part", "under", "next", "config",
    "text", "result", "word", "input", "output",
];

/// Templates of titles and headings: `{W}` is a capitalised content word, `{w}` a lower-case one.
const HEADING_TEMPLATES: [&str; 12] = [
    "{W} {w}",
    "Configuring the {w} {w}",
    "Using {w} with {w}",
    "{W} and {w}",
    "The {w} {w}",
    "How {w} {w} works",
    "{W} {w} {w}",
    "Migrating from {w} to {w}",
    "Custom {w} {w}",
    "{W} for {w}",
    "Troubleshooting {w}",
    "{W} {w} options",
];

/// The folders documents are spread over.
const AREAS: [&str; 8] = [
    "concepts",
    "guides",
    "api",
    "reference",
    "errors",
    "integrations",
    "internals",
    "examples",
];

const SYLLABLES: [&str; 40] = [
    "ba", "be", "di", "do", "fa", "fe", "ga", "gi", "ka", "ke", "ko", "la", "le", "li", "lo", "ma",
    "me", "mi", "mo", "mu", "na", "ne", "ni", "no", "pa", "pe", "po", "ra", "re", "ri", "ro", "sa",
    "se", "si", "ta", "te", "ti", "to", "va", "vo",
];

/// SplitMix64: a small, fast, deterministic generator, enough to draw words.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }

    /// A number in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The vocabulary and its Zipf distribution.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    words: Vec<String>,
    /// Cumulative weights of the words, by rank.
    cumulative: Vec<f64>,
    /// Cumulative weights of the content words only (ranks after the common words).
    content_cumulative: Vec<f64>,
}

impl Vocabulary {
    /// The common words, then pseudo-words up to [`VOCABULARY_SIZE`].
    pub fn new() -> Self {
        let mut words: Vec<String> = COMMON_WORDS.iter().map(|word| word.to_string()).collect();
        let mut seen: HashSet<String> = words.iter().cloned().collect();
        let mut random = SplitMix64::new(0x005E_ED0F_C0DE);
        while words.len() < VOCABULARY_SIZE {
            let n_syllables = 2 + random.below(3);
            let word: String = (0..n_syllables)
                .map(|_| SYLLABLES[random.below(SYLLABLES.len())])
                .collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let cumulative = cumulative_weights(1..=words.len());
        let content_cumulative = cumulative_weights(1..=words.len() - N_COMMON_WORDS);
        Self {
            words,
            cumulative,
            content_cumulative,
        }
    }

    /// A word drawn by Zipf over the whole vocabulary.
    pub fn word(&self, random: &mut SplitMix64) -> &str {
        &self.words[draw(&self.cumulative, random)]
    }

    /// A word drawn by Zipf over the content words (not the common ones).
    pub fn content_word(&self, random: &mut SplitMix64) -> &str {
        &self.words[N_COMMON_WORDS + draw(&self.content_cumulative, random)]
    }

    /// Whether `word` is one of the common words.
    pub fn is_common(&self, word: &str) -> bool {
        self.words[..N_COMMON_WORDS]
            .iter()
            .any(|common| common == word)
    }

    /// A common word, drawn uniformly.
    pub fn common_word(&self, random: &mut SplitMix64) -> &str {
        &self.words[random.below(N_COMMON_WORDS)]
    }
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new()
    }
}

fn cumulative_weights(ranks: std::ops::RangeInclusive<usize>) -> Vec<f64> {
    let mut total = 0.0;
    ranks
        .map(|rank| {
            total += 1.0 / rank as f64;
            total
        })
        .collect()
}

fn draw(cumulative: &[f64], random: &mut SplitMix64) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let target = random.unit() * total;
    cumulative
        .partition_point(|weight| *weight <= target)
        .min(cumulative.len().saturating_sub(1))
}

/// One section: its heading and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticSection {
    /// The heading's text (the document's title for its first section).
    pub heading: String,
    /// The body, paragraphs separated by blank lines.
    pub body: String,
}

/// One document: its key, its Markdown text and its sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticDocument {
    /// The key, such as `docs/guides/configuring-the-ravelo-tinemu-17.md`.
    pub key: String,
    /// The Markdown text: the title and its intro, then one `##` section each.
    pub text: String,
    /// The sections, the title's first.
    pub sections: Vec<SyntheticSection>,
}

/// Generates `n_documents` documents of `sections_per_document` sections each.
pub fn generate(
    vocabulary: &Vocabulary,
    n_documents: usize,
    sections_per_document: usize,
) -> Vec<SyntheticDocument> {
    let mut random = SplitMix64::new(0xD0C5);
    (0..n_documents)
        .map(|document_idx| {
            let title = heading(vocabulary, &mut random);
            let area = AREAS[document_idx % AREAS.len()];
            let key = format!("docs/{area}/{}-{document_idx}.md", slug(&title));
            let mut sections = Vec::with_capacity(sections_per_document);
            let mut text = String::new();
            for section_idx in 0..sections_per_document {
                let section_heading = if section_idx == 0 {
                    title.clone()
                } else {
                    heading(vocabulary, &mut random)
                };
                let body = body(vocabulary, &mut random);
                let marks = if section_idx == 0 { "#" } else { "##" };
                text.push_str(&format!("{marks} {section_heading}\n\n{body}\n\n"));
                sections.push(SyntheticSection {
                    heading: section_heading,
                    body,
                });
            }
            SyntheticDocument {
                key,
                text,
                sections,
            }
        })
        .collect()
}

fn heading(vocabulary: &Vocabulary, random: &mut SplitMix64) -> String {
    let template = HEADING_TEMPLATES[random.below(HEADING_TEMPLATES.len())];
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let word = vocabulary.content_word(random);
        if rest[open..].starts_with("{W}") {
            let mut characters = word.chars();
            if let Some(first) = characters.next() {
                out.extend(first.to_uppercase());
                out.push_str(characters.as_str());
            }
        } else {
            out.push_str(word);
        }
        rest = &rest[open + 3..];
    }
    out.push_str(rest);
    out
}

fn body(vocabulary: &Vocabulary, random: &mut SplitMix64) -> String {
    let mut out = String::with_capacity(WORDS_PER_SECTION * 8);
    let mut n_words = 0;
    while n_words < WORDS_PER_SECTION {
        let paragraph_len = (40 + random.below(41)).min(WORDS_PER_SECTION - n_words);
        if n_words > 0 {
            out.push_str("\n\n");
        }
        let mut sentence_len = 0;
        for word_idx in 0..paragraph_len {
            let word = vocabulary.word(random);
            if sentence_len == 0 {
                let mut characters = word.chars();
                if let Some(first) = characters.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(characters.as_str());
                }
            } else {
                out.push(' ');
                out.push_str(word);
            }
            sentence_len += 1;
            let last = word_idx + 1 == paragraph_len;
            if last || (sentence_len >= 8 && random.below(6) == 0) {
                out.push('.');
                if !last {
                    out.push(' ');
                }
                sentence_len = 0;
            }
        }
        n_words += paragraph_len;
    }
    out
}

fn slug(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// `n_queries` queries, each naming one section (see the module's docs).
pub fn queries(
    vocabulary: &Vocabulary,
    documents: &[SyntheticDocument],
    n_queries: usize,
) -> Vec<String> {
    let mut random = SplitMix64::new(0x0A5C);
    let n_sections: usize = documents
        .iter()
        .map(|document| document.sections.len())
        .sum();
    if n_sections == 0 {
        return Vec::new();
    }
    (0..n_queries)
        .map(|query_idx| {
            let mut section_idx = random.below(n_sections);
            let section = documents
                .iter()
                .find_map(|document| {
                    if section_idx < document.sections.len() {
                        Some(&document.sections[section_idx])
                    } else {
                        section_idx -= document.sections.len();
                        None
                    }
                })
                .unwrap_or(&documents[0].sections[0]);
            let content = |text: &str| -> Vec<String> {
                let mut seen = HashSet::new();
                text.split(|character: char| !character.is_alphanumeric())
                    .map(str::to_lowercase)
                    .filter(|word| !word.is_empty() && !vocabulary.is_common(word))
                    .filter(|word| seen.insert(word.clone()))
                    .collect()
            };
            let heading_words = content(&section.heading);
            let body_words = content(&section.body);
            let mut words: Vec<String> = Vec::new();
            let n_heading = 1 + random.below(2);
            let n_body = 2 + random.below(3);
            for (pool, n_wanted) in [(&heading_words, n_heading), (&body_words, n_body)] {
                let n_new = pool.iter().filter(|word| !words.contains(word)).count();
                let n_wanted = n_wanted.min(n_new);
                let target = words.len() + n_wanted;
                while words.len() < target {
                    let word = &pool[random.below(pool.len())];
                    if !words.contains(word) {
                        words.push(word.clone());
                    }
                }
            }
            let with_common = query_idx % 2 == 1;
            words.truncate(if with_common { 5 } else { 6 });
            if with_common {
                let common = vocabulary.common_word(&mut random).to_string();
                let at = random.below(words.len() + 1);
                words.insert(at, common);
            }
            words.join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_shaped() {
        let vocabulary = Vocabulary::new();
        let first = generate(&vocabulary, 3, 4);
        let second = generate(&vocabulary, 3, 4);
        assert_eq!(first, second);
        assert_eq!(first.len(), 3);
        for document in &first {
            assert_eq!(document.sections.len(), 4);
            assert!(document.text.starts_with("# "));
            assert_eq!(document.text.matches("\n## ").count(), 3);
            for section in &document.sections {
                assert_eq!(section.body.split_whitespace().count(), WORDS_PER_SECTION);
            }
        }
    }

    #[test]
    fn common_words_are_distinct() {
        let distinct: HashSet<&str> = COMMON_WORDS.iter().copied().collect();
        assert_eq!(distinct.len(), COMMON_WORDS.len());
    }

    #[test]
    fn zipf_puts_about_half_the_words_among_the_common_ones() {
        let vocabulary = Vocabulary::new();
        let mut random = SplitMix64::new(1);
        let n_common = (0..10_000)
            .filter(|_| vocabulary.is_common(vocabulary.word(&mut random)))
            .count();
        assert!((4_000..6_000).contains(&n_common), "{n_common}");
    }

    #[test]
    fn queries_have_three_to_six_words() {
        let vocabulary = Vocabulary::new();
        let documents = generate(&vocabulary, 10, 10);
        let queries = queries(&vocabulary, &documents, 50);
        assert_eq!(queries.len(), 50);
        for query in &queries {
            let n_words = query.split(' ').count();
            assert!((3..=6).contains(&n_words), "{query:?}");
        }
    }
}
