//! Token counts of short pieces by `tiktoken`'s own merge loop, over rank tables made for it.
//!
//! `tiktoken` encodes a pre-tokenizer piece that is not itself a token by starting from its bytes
//! and merging, again and again, the adjacent pair whose joined bytes have the lowest rank (the
//! leftmost such pair on a tie), until no adjacent pair joins into a token.
//! That loop is quadratic in the length of the piece, which is why long pieces go to `bpe-openai`'s
//! linear encoder instead; on a short piece it is the fastest exact count there is, because it
//! does a handful of rank lookups and nothing else (no allocation, no automaton).
//! Being the reference algorithm, it is exact by construction; a property test compares it with
//! `bpe-openai` on random pieces, and the exactness test compares every count with `tiktoken`'s.
//!
//! The lookups are what costs, so the ranks are kept in tables shaped for them: a flat table for
//! two-byte tokens, and one hash map per length for tokens of three to sixteen bytes, keyed by the
//! bytes packed into an integer, so a lookup hashes and compares one or two machine words.
//! Longer tokens (about 2% of either encoding) sit in one map keyed by their bytes.

use rustc_hash::FxHashMap;

/// Pieces up to this many bytes are counted by the merge loop; longer ones go to `bpe-openai`.
pub(crate) const SHORT_PIECE: usize = 32;

/// What a lookup returns for bytes that are not a token; above every rank, as in `tiktoken`.
const NO_RANK: u32 = u32::MAX;

/// The longest token kept in a map keyed by packed bytes.
const PACKED_TOKEN: usize = 16;

/// An encoding's ranks, laid out for the merge loop.
pub(crate) struct MergeRanks {
    // INVARIANT: entry `first * 256 + second` is the rank of the two-byte token of those bytes, or
    // `NO_RANK`.
    pairs: Box<[u32]>,
    // INVARIANT: entry `len - 3` maps every token of `len` bytes (3 to 8), packed by `pack_word`,
    // to its rank.
    words: [FxHashMap<u64, u32>; 6],
    // INVARIANT: entry `len - 9` maps every token of `len` bytes (9 to 16), packed by `pack_wide`,
    // to its rank.
    wides: [FxHashMap<u128, u32>; 8],
    // INVARIANT: maps every token longer than `PACKED_TOKEN` bytes to its rank.
    longs: FxHashMap<&'static [u8], u32>,
}

/// The bytes of `bytes` (two to eight) as a little-endian integer, zero above them.
#[inline(always)]
fn pack_word(bytes: &[u8]) -> u64 {
    // Two overlapping loads cover any length without a byte loop; the bytes they share are
    // equal, so or-ing them is exact.
    let len = bytes.len();
    if len >= 4 {
        let head = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let tail = u32::from_le_bytes([
            bytes[len - 4],
            bytes[len - 3],
            bytes[len - 2],
            bytes[len - 1],
        ]);
        u64::from(head) | (u64::from(tail) << ((len - 4) * 8))
    } else {
        let head = u16::from_le_bytes([bytes[0], bytes[1]]);
        let tail = u16::from_le_bytes([bytes[len - 2], bytes[len - 1]]);
        u64::from(head) | (u64::from(tail) << ((len - 2) * 8))
    }
}

/// The bytes of `bytes` (nine to sixteen) as a little-endian integer, zero above them.
#[inline(always)]
fn pack_wide(bytes: &[u8]) -> u128 {
    let len = bytes.len();
    let mut head = [0u8; 8];
    head.copy_from_slice(&bytes[..8]);
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&bytes[len - 8..]);
    // The tail load starts `16 - len` bytes before the ninth byte; shift those out.
    let tail = u64::from_le_bytes(tail) >> ((16 - len) * 8);
    u128::from(u64::from_le_bytes(head)) | (u128::from(tail) << 64)
}

impl MergeRanks {
    /// Lays out the ranks of `tokens`, given as (bytes, rank) pairs.
    pub(crate) fn new(tokens: impl Iterator<Item = (&'static [u8], u32)>) -> MergeRanks {
        let mut pairs = vec![NO_RANK; 1 << 16].into_boxed_slice();
        let mut words: [FxHashMap<u64, u32>; 6] = Default::default();
        let mut wides: [FxHashMap<u128, u32>; 8] = Default::default();
        let mut longs = FxHashMap::default();
        for (bytes, rank) in tokens {
            match bytes.len() {
                0 | 1 => {}
                2 => pairs[usize::from(bytes[0]) * 256 + usize::from(bytes[1])] = rank,
                len @ 3..=8 => {
                    words[len - 3].insert(pack_word(bytes), rank);
                }
                len @ 9..=PACKED_TOKEN => {
                    wides[len - 9].insert(pack_wide(bytes), rank);
                }
                _ => {
                    longs.insert(bytes, rank);
                }
            }
        }
        MergeRanks {
            pairs,
            words,
            wides,
            longs,
        }
    }

    /// The rank of the two-byte token `first second`, or `NO_RANK`.
    #[inline(always)]
    fn pair_rank(&self, first: u8, second: u8) -> u32 {
        self.pairs[usize::from(first) * 256 + usize::from(second)]
    }

    /// The rank of the token made of `bytes` (at least two), or `NO_RANK`.
    #[inline]
    fn rank(&self, bytes: &[u8]) -> u32 {
        let found = match bytes.len() {
            0 | 1 => None,
            2 => return self.pair_rank(bytes[0], bytes[1]),
            len @ 3..=8 => self.words[len - 3].get(&pack_word(bytes)),
            len @ 9..=PACKED_TOKEN => self.wides[len - 9].get(&pack_wide(bytes)),
            _ => self.longs.get(bytes),
        };
        found.copied().unwrap_or(NO_RANK)
    }

    /// Whether `piece` is itself one token.
    pub(crate) fn is_token(&self, piece: &[u8]) -> bool {
        piece.len() == 1 || self.rank(piece) != NO_RANK
    }

    /// The number of tokens `tiktoken` encodes `piece` into, for a piece that is not itself a
    /// token, or `None` for a piece longer than [`SHORT_PIECE`] bytes.
    pub(crate) fn count_merged(&self, piece: &[u8]) -> Option<usize> {
        let n_bytes = piece.len();
        if n_bytes > SHORT_PIECE {
            return None;
        }
        if n_bytes <= 2 {
            // Bytes are tokens, and two bytes that are not one token are two.
            return Some(n_bytes);
        }
        // Each part is named by the index of its first byte. For a live part `start`,
        // `ends[start]` is where it ends, `prevs[start]` where the part before it starts, and
        // `ranks[start]` the rank of it joined with the next part, or `NO_RANK`; a part merged
        // into the one before it has `NO_RANK`, so the scan below skips it.
        let mut ends = [0u8; SHORT_PIECE];
        let mut prevs = [0u8; SHORT_PIECE];
        let mut ranks = [NO_RANK; SHORT_PIECE];
        for byte_idx in 0..n_bytes - 1 {
            ends[byte_idx] = byte_idx as u8 + 1;
            prevs[byte_idx + 1] = byte_idx as u8;
            ranks[byte_idx] = self.pair_rank(piece[byte_idx], piece[byte_idx + 1]);
        }
        ends[n_bytes - 1] = n_bytes as u8;
        let mut n_parts = n_bytes;
        loop {
            // The leftmost pair of lowest rank, as `tiktoken` picks it.
            let mut min_rank = NO_RANK;
            let mut min_start = 0;
            for (start, &rank) in ranks[..n_bytes - 1].iter().enumerate() {
                if rank < min_rank {
                    min_rank = rank;
                    min_start = start;
                }
            }
            if min_rank == NO_RANK {
                return Some(n_parts);
            }
            // Merge the part at `min_start` with the next, then rank it with its neighbours.
            let next = usize::from(ends[min_start]);
            let end = usize::from(ends[next]);
            ends[min_start] = end as u8;
            ranks[next] = NO_RANK;
            n_parts -= 1;
            ranks[min_start] = if end < n_bytes {
                prevs[end] = min_start as u8;
                self.rank(&piece[min_start..usize::from(ends[end])])
            } else {
                NO_RANK
            };
            if min_start > 0 {
                let prev = usize::from(prevs[min_start]);
                ranks[prev] = self.rank(&piece[prev..end]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    // Covers the merge loop against `bpe-openai`'s own count, an independent exact encoder, on
    // hand-picked and random pieces of every kind: ASCII, base64, other scripts, and pieces made
    // of real tokens so that every table (pairs, 3-8, 9-16 and longer tokens) is looked up.
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn encodings() -> &'static [(&'static bpe_openai::Tokenizer, MergeRanks); 2] {
        static ENCODINGS: OnceLock<[(&'static bpe_openai::Tokenizer, MergeRanks); 2]> =
            OnceLock::new();
        ENCODINGS.get_or_init(|| {
            [bpe_openai::o200k_base(), bpe_openai::cl100k_base()].map(|tokenizer| {
                let bpe = &tokenizer.bpe;
                let n_tokens = bpe.num_tokens() as u32;
                let merge_ranks =
                    MergeRanks::new((0..n_tokens).map(|id| (bpe.token_bytes(id), id)));
                (tokenizer, merge_ranks)
            })
        })
    }

    /// The merge loop's count of `piece` (with the one-token check before it), if it is short.
    fn merge_count(merge_ranks: &MergeRanks, piece: &[u8]) -> Option<usize> {
        if merge_ranks.is_token(piece) {
            return Some(1);
        }
        merge_ranks.count_merged(piece)
    }

    fn check(piece: &[u8]) -> Result<(), TestCaseError> {
        for (tokenizer, merge_ranks) in encodings() {
            let expected = tokenizer.bpe.count(piece);
            match merge_count(merge_ranks, piece) {
                Some(count) => prop_assert_eq!(count, expected, "piece {:?}", piece),
                None => prop_assert!(piece.len() > SHORT_PIECE, "piece {:?}", piece),
            }
        }
        Ok(())
    }

    #[test]
    fn counts_equal_bpe_openai() {
        for piece in [
            "a",
            "ab",
            "the",
            " hello",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlq",
            "pneumonoultramicroscopicsilicov",
            " internationalization",
            "\u{0}\u{0}\u{0}\u{1}",
            " नमस्ते",
            "👨\u{200d}👩\u{200d}👧\u{200d}👦",
            "e\u{301}\u{301}\u{301}",
            "       ",
            "\n\n\n\n\n",
        ] {
            check(piece.as_bytes()).unwrap();
        }
    }

    #[test]
    fn tables_hold_every_token() {
        for (tokenizer, merge_ranks) in encodings() {
            let bpe = &tokenizer.bpe;
            for id in 0..bpe.num_tokens() as u32 {
                let bytes = bpe.token_bytes(id);
                assert!(merge_ranks.is_token(bytes), "token {id}");
                if bytes.len() >= 2 {
                    assert_eq!(merge_ranks.rank(bytes), id, "token {id}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn equal_on_ascii(piece in "[ -~\t\n]{1,40}") {
            check(piece.as_bytes())?;
        }

        #[test]
        fn equal_on_base64(piece in "[A-Za-z0-9+/=]{1,40}") {
            check(piece.as_bytes())?;
        }

        #[test]
        fn equal_on_any_text(piece in "\\PC{1,12}") {
            check(piece.as_bytes())?;
        }

        #[test]
        fn equal_on_any_bytes(piece in prop::collection::vec(any::<u8>(), 1..40)) {
            check(&piece)?;
        }

        #[test]
        fn equal_on_joined_tokens(ids in prop::collection::vec(0u32..100_000, 1..6), cut in 1usize..40) {
            for (tokenizer, _) in encodings() {
                let mut piece: Vec<u8> = ids
                    .iter()
                    .flat_map(|&id| tokenizer.bpe.token_bytes(id).iter().copied())
                    .collect();
                piece.truncate(cut);
                check(&piece)?;
            }
        }
    }
}
