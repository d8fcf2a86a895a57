//! Exact token counts with OpenAI's `o200k_base` and `cl100k_base` encodings.
//!
//! Text is cut into pre-tokenizer pieces: ASCII text by a hand-written pre-tokenizer (`split.rs`)
//! equal to the encodings' regexes on ASCII, other text by `bpe-openai`'s regex.
//! A piece that is itself a token counts one, found by one hash lookup.
//! Other pieces of up to 32 bytes are counted by `tiktoken`'s own merge loop over rank tables
//! laid out for it (`merge.rs`), with the counts of repeated pieces kept in a per-thread cache.
//! Longer pieces go to GitHub's `bpe-openai` crate, whose byte-pair encoder gives the same tokens
//! as `tiktoken` in linear time (`tiktoken`'s merge loop is quadratic in the length of a piece,
//! and its backtracking regex overflows on huge whitespace runs).
//! The exactness test in `tests/cost.rs` checks every count against numbers made by `tiktoken`.
//! Each encoder is built once per process, on first use, and shared by all threads.

use std::cell::RefCell;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::err::CountError;
use super::merge::MergeRanks;
use super::split::{ascii_pieces, stretches};

/// A byte-pair encoding fourfold counts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `o200k_base`: GPT-4o, GPT-4.1, GPT-4.5, GPT-5 and the `o` series.
    O200kBase,
    /// `cl100k_base`: GPT-4, GPT-3.5 and the `text-embedding-3` models.
    Cl100kBase,
}

impl Encoding {
    /// The encoding's name as `tiktoken` writes it: `o200k_base` or `cl100k_base`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    /// The encoding named `name` (`o200k_base`, `cl100k_base`), if fourfold has it.
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "o200k_base" => Some(Encoding::O200kBase),
            "cl100k_base" => Some(Encoding::Cl100kBase),
            _ => None,
        }
    }

    /// The number of tokens of `text`, encoded as ordinary text: special tokens such as
    /// `<|endoftext|>` count as the plain characters they are made of.
    ///
    /// ```
    /// use fourfold::cost::Encoding;
    /// assert_eq!(Encoding::O200kBase.count("hello world"), 2);
    /// ```
    pub fn count(self, text: &str) -> u64 {
        self.counter().count(text, self)
    }

    fn counter(self) -> &'static Counter {
        static O200K_BASE: OnceLock<Counter> = OnceLock::new();
        static CL100K_BASE: OnceLock<Counter> = OnceLock::new();
        match self {
            Encoding::O200kBase => {
                O200K_BASE.get_or_init(|| Counter::new(bpe_openai::o200k_base()))
            }
            Encoding::Cl100kBase => {
                CL100K_BASE.get_or_init(|| Counter::new(bpe_openai::cl100k_base()))
            }
        }
    }
}

/// One encoding's counter: the tokenizer, and its ranks laid out for the merge loop.
struct Counter {
    tokenizer: &'static bpe_openai::Tokenizer,
    // INVARIANT: holds the bytes and rank (id) of every token of `tokenizer`.
    merge_ranks: MergeRanks,
}

/// Pieces up to this many bytes that are not a token have their count kept in a per-thread
/// cache, so a repeated identifier is merged once.
const CACHED_PIECE: usize = 32;

/// Pieces shorter than this are merged every time: their merge costs less than a cache lookup
/// (`callgrind` on random base64, where pieces are short and rarely repeat).
const MIN_CACHED_PIECE: usize = 5;

/// Slots of a thread's cache of piece counts, per encoding (a power of two).
const CACHE_SLOTS: usize = 1 << 13;

/// One slot of the piece cache: a piece of at most [`CACHED_PIECE`] bytes and its count.
#[derive(Clone, Copy)]
struct CachedPiece {
    n_bytes: u8,
    bytes: [u8; CACHED_PIECE],
    count: u32,
}

/// A direct-mapped cache of piece counts: a piece goes in the slot its hash picks, replacing
/// whatever was there, so filling it costs no allocation and unique pieces cost a copy each.
struct PieceCache {
    // INVARIANT: a slot with `n_bytes > 0` holds a piece (not itself a token) and its exact count.
    slots: Box<[CachedPiece]>,
}

impl Default for PieceCache {
    fn default() -> PieceCache {
        let empty = CachedPiece {
            n_bytes: 0,
            bytes: [0; CACHED_PIECE],
            count: 0,
        };
        PieceCache {
            slots: vec![empty; CACHE_SLOTS].into_boxed_slice(),
        }
    }
}

impl PieceCache {
    fn slot(piece: &[u8]) -> usize {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(piece);
        (hash as usize) & (CACHE_SLOTS - 1)
    }
}

thread_local! {
    // INVARIANT: entry `encoding as usize` holds counts in that encoding.
    static PIECE_COUNTS: RefCell<[PieceCache; 2]> = RefCell::default();
}

impl Counter {
    fn new(tokenizer: &'static bpe_openai::Tokenizer) -> Counter {
        let bpe = &tokenizer.bpe;
        let n_tokens = u32::try_from(bpe.num_tokens()).unwrap_or(u32::MAX);
        let merge_ranks = MergeRanks::new((0..n_tokens).map(|id| (bpe.token_bytes(id), id)));
        Counter {
            tokenizer,
            merge_ranks,
        }
    }

    fn count(&self, text: &str, encoding: Encoding) -> u64 {
        PIECE_COUNTS.with(|caches| {
            let mut caches = caches.borrow_mut();
            let cache = &mut caches[encoding as usize];
            if text.is_ascii() {
                return ascii_pieces(text.as_bytes(), encoding)
                    .map(|piece| self.count_piece(piece, cache))
                    .sum();
            }
            stretches(text)
                .map(|(stretch, ascii)| -> u64 {
                    if ascii {
                        ascii_pieces(stretch.as_bytes(), encoding)
                            .map(|piece| self.count_piece(piece, cache))
                            .sum()
                    } else {
                        self.tokenizer
                            .split(stretch)
                            .map(|piece| self.count_piece(piece.as_bytes(), cache))
                            .sum()
                    }
                })
                .sum()
        })
    }

    fn count_piece(&self, piece: &[u8], cache: &mut PieceCache) -> u64 {
        if piece.is_empty() {
            return 0;
        }
        if self.merge_ranks.is_token(piece) {
            return 1;
        }
        if !(MIN_CACHED_PIECE..=CACHED_PIECE).contains(&piece.len()) {
            return self.count_merged(piece);
        }
        let slot = &mut cache.slots[PieceCache::slot(piece)];
        if usize::from(slot.n_bytes) == piece.len() && &slot.bytes[..piece.len()] == piece {
            return u64::from(slot.count);
        }
        let count = self.count_merged(piece);
        slot.n_bytes = piece.len() as u8;
        slot.bytes[..piece.len()].copy_from_slice(piece);
        slot.count = u32::try_from(count).unwrap_or(u32::MAX);
        count
    }

    /// The count of a piece that is not itself a token.
    fn count_merged(&self, piece: &[u8]) -> u64 {
        match self.merge_ranks.count_merged(piece) {
            Some(count) => count as u64,
            None => self.tokenizer.bpe.count(piece) as u64,
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Exact names mapped to their encoding, as `tiktoken`'s `MODEL_TO_ENCODING` maps them.
const MODEL_TO_ENCODING: &[(&str, Encoding)] = &[
    ("o1", Encoding::O200kBase),
    ("o3", Encoding::O200kBase),
    ("o4-mini", Encoding::O200kBase),
    ("gpt-5", Encoding::O200kBase),
    ("gpt-4.1", Encoding::O200kBase),
    ("gpt-4o", Encoding::O200kBase),
    ("gpt-4", Encoding::Cl100kBase),
    ("gpt-3.5-turbo", Encoding::Cl100kBase),
    ("gpt-3.5", Encoding::Cl100kBase),
    ("gpt-35-turbo", Encoding::Cl100kBase),
    ("davinci-002", Encoding::Cl100kBase),
    ("babbage-002", Encoding::Cl100kBase),
    ("text-embedding-ada-002", Encoding::Cl100kBase),
    ("text-embedding-3-small", Encoding::Cl100kBase),
    ("text-embedding-3-large", Encoding::Cl100kBase),
];

/// Name prefixes mapped to their encoding, in `tiktoken`'s order (`MODEL_PREFIX_TO_ENCODING`).
/// `gpt-oss-` is `o200k_harmony` in `tiktoken`, which is `o200k_base` plus special tokens only, so
/// ordinary text counts the same.
const MODEL_PREFIX_TO_ENCODING: &[(&str, Encoding)] = &[
    ("o1-", Encoding::O200kBase),
    ("o3-", Encoding::O200kBase),
    ("o4-mini-", Encoding::O200kBase),
    ("gpt-5", Encoding::O200kBase),
    ("gpt-4.5-", Encoding::O200kBase),
    ("gpt-4.1-", Encoding::O200kBase),
    ("chatgpt-4o-", Encoding::O200kBase),
    ("gpt-4o-", Encoding::O200kBase),
    ("gpt-4-", Encoding::Cl100kBase),
    ("gpt-3.5-turbo-", Encoding::Cl100kBase),
    ("gpt-35-turbo-", Encoding::Cl100kBase),
    ("gpt-oss-", Encoding::O200kBase),
    ("ft:gpt-4o", Encoding::O200kBase),
    ("ft:gpt-4", Encoding::Cl100kBase),
    ("ft:gpt-3.5-turbo", Encoding::Cl100kBase),
    ("ft:davinci-002", Encoding::Cl100kBase),
    ("ft:babbage-002", Encoding::Cl100kBase),
];

/// The encoding OpenAI's model `model` uses, as `tiktoken` maps it, or `None` for a model with no
/// public tokenizer (Claude, Gemini, ...). A provider prefix (`openai/gpt-4o`) is ignored.
///
/// ```
/// use fourfold::cost::{encoding_for_model, Encoding};
/// assert_eq!(encoding_for_model("gpt-4o-mini"), Some(Encoding::O200kBase));
/// assert_eq!(encoding_for_model("gpt-4"), Some(Encoding::Cl100kBase));
/// assert_eq!(encoding_for_model("claude-sonnet-4-5"), None);
/// ```
pub fn encoding_for_model(model: &str) -> Option<Encoding> {
    let model = bare_model_name(model);
    if let Some((_, encoding)) = MODEL_TO_ENCODING.iter().find(|(name, _)| *name == model) {
        return Some(*encoding);
    }
    MODEL_PREFIX_TO_ENCODING
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map(|(_, encoding)| *encoding)
}

/// `model` without a LiteLLM-style provider prefix (`openai/gpt-4o` is `gpt-4o`); fine-tuned
/// names (`ft:gpt-4o:org:id`) are kept whole.
pub fn bare_model_name(model: &str) -> &str {
    if model.starts_with("ft:") {
        return model;
    }
    model.rsplit('/').next().unwrap_or(model)
}

/// A token count, with the encoding that made it and whether it is only an estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    /// The number of tokens.
    pub tokens: u64,
    /// The encoding that counted them.
    pub encoding: Encoding,
    /// True when the model's own tokenizer is not public (Claude, Gemini, ...): the count is the
    /// `o200k_base` count, a close estimate, and must be labelled as one.
    pub estimated: bool,
}

/// The encoding to count `model_or_encoding` with, and whether counts made with it are estimates.
pub fn resolve(model_or_encoding: &str) -> Result<(Encoding, bool), CountError> {
    let name = model_or_encoding.trim();
    if name.is_empty() {
        return Err(CountError::EmptyName);
    }
    if let Some(encoding) = Encoding::from_name(name) {
        return Ok((encoding, false));
    }
    if name.ends_with("_base") || name.ends_with("_harmony") || name == "gpt2" {
        return Err(CountError::UnknownEncoding(name.to_string()));
    }
    match encoding_for_model(name) {
        Some(encoding) => Ok((encoding, false)),
        None => Ok((Encoding::O200kBase, true)),
    }
}

/// Counts the tokens of `text` for a model (`gpt-4o`, `claude-sonnet-4-5`) or an encoding
/// (`o200k_base`, `cl100k_base`).
///
/// OpenAI models are counted exactly with their encoding. Models without a public tokenizer are
/// counted with `o200k_base` and the count is marked [`TokenCount::estimated`]. An encoding name
/// fourfold does not have (`p50k_base`) is an error.
///
/// ```
/// let count = fourfold::cost::count("gpt-4o", "hello world").unwrap();
/// assert_eq!((count.tokens, count.estimated), (2, false));
/// assert!(fourfold::cost::count("claude-sonnet-4-5", "hello").unwrap().estimated);
/// ```
pub fn count(model_or_encoding: &str, text: &str) -> Result<TokenCount, CountError> {
    let (encoding, estimated) = resolve(model_or_encoding)?;
    Ok(TokenCount {
        tokens: encoding.count(text),
        encoding,
        estimated,
    })
}

/// One chat message, as sent to a chat completions API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// The message text.
    pub content: String,
    /// The participant's name, if the message has one.
    #[serde(default)]
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message of `role` saying `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            name: None,
        }
    }
}

/// Counts the prompt tokens of a chat, with the per-message overhead of OpenAI's cookbook
/// (`num_tokens_from_messages`): 3 tokens per message (4 for `gpt-3.5-turbo-0301`), the tokens of
/// the role, content and name, 1 more per name (1 fewer for `gpt-3.5-turbo-0301`), and 3 tokens
/// that prime the reply.
///
/// ```
/// use fourfold::cost::{count_chat, ChatMessage};
/// let messages = [ChatMessage::new("user", "hello world")];
/// assert_eq!(count_chat("gpt-4o", &messages).unwrap().tokens, 3 + 1 + 2 + 3);
/// ```
pub fn count_chat(
    model_or_encoding: &str,
    messages: &[ChatMessage],
) -> Result<TokenCount, CountError> {
    let (encoding, estimated) = resolve(model_or_encoding)?;
    let legacy = bare_model_name(model_or_encoding.trim()) == "gpt-3.5-turbo-0301";
    let (per_message, per_name): (u64, i64) = if legacy { (4, -1) } else { (3, 1) };
    let mut tokens: u64 = 3;
    for message in messages {
        tokens += per_message + encoding.count(&message.role) + encoding.count(&message.content);
        if let Some(name) = &message.name {
            tokens = (tokens + encoding.count(name)).saturating_add_signed(per_name);
        }
    }
    Ok(TokenCount {
        tokens,
        encoding,
        estimated,
    })
}

#[cfg(test)]
mod tests {
    // Covers the name resolution rules and a few known counts; `tests/cost.rs` holds the
    // exactness test against `tiktoken`, and the proptest below compares with `tiktoken-rs`.
    use super::*;
    use proptest::prelude::*;

    /// A name and what it resolves to: the encoding, and whether counts with it are estimates.
    type Resolution = Result<(Encoding, bool), CountError>;

    #[test]
    fn names_resolve() {
        let cases: &[(&str, Resolution)] = &[
            ("o200k_base", Ok((Encoding::O200kBase, false))),
            ("cl100k_base", Ok((Encoding::Cl100kBase, false))),
            ("gpt-4o", Ok((Encoding::O200kBase, false))),
            ("openai/gpt-4.1-mini", Ok((Encoding::O200kBase, false))),
            ("gpt-5-nano", Ok((Encoding::O200kBase, false))),
            ("o3", Ok((Encoding::O200kBase, false))),
            ("gpt-4-turbo", Ok((Encoding::Cl100kBase, false))),
            ("azure/gpt-35-turbo", Ok((Encoding::Cl100kBase, false))),
            ("claude-opus-4-1", Ok((Encoding::O200kBase, true))),
            ("gemini/gemini-2.5-pro", Ok((Encoding::O200kBase, true))),
            (
                "p50k_base",
                Err(CountError::UnknownEncoding("p50k_base".into())),
            ),
            ("  ", Err(CountError::EmptyName)),
        ];
        for (name, expected) in cases {
            assert_eq!(&resolve(name), expected, "{name}");
        }
    }

    #[test]
    fn legacy_chat_overhead() {
        let mut message = ChatMessage::new("user", "hi");
        message.name = Some("bob".into());
        let new = count_chat("gpt-4", std::slice::from_ref(&message)).unwrap();
        let old = count_chat("gpt-3.5-turbo-0301", &[message]).unwrap();
        // Same text; the legacy format costs one more per message and two fewer per name.
        assert_eq!(old.tokens + 1, new.tokens);
    }

    #[test]
    fn many_threads_share_the_encoders() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| Encoding::Cl100kBase.count("hello world")))
            .collect();
        for handle in handles {
            assert_eq!(handle.join().ok(), Some(2));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        // A second, independent implementation of the same encodings agrees on random text.
        #[test]
        fn agrees_with_tiktoken_rs(text in "(\\PC|[ \\t\\n\\r]){0,60}") {
            let o200k = tiktoken_rs::o200k_base_singleton().encode_ordinary(&text).len() as u64;
            let cl100k = tiktoken_rs::cl100k_base_singleton().encode_ordinary(&text).len() as u64;
            prop_assert_eq!(Encoding::O200kBase.count(&text), o200k);
            prop_assert_eq!(Encoding::Cl100kBase.count(&text), cl100k);
        }
    }
}
