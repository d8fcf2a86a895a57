//! Near-identical text: word shingles, MinHash signatures and locality-sensitive hashing.
//!
//! Two sections are near-identical when the Jaccard similarity of their sets of 5-word shingles is
//! at least [`NEAR_IDENTICAL`]. A [`Signature`] estimates it from 64 MinHash values (the high 32
//! bits of each 64-bit minimum: two different minimums share them about once in 4 billion
//! comparisons, and a signature takes half the room); an [`Lsh`] table finds candidates (16
//! bands of 4 values: a pair at similarity 0.8 shares a band with probability 0.9997, a pair at
//! 0.3 with 0.12), which are then checked on their signatures.
//! Sections too short to judge ([`MIN_SHINGLES`]) get no signature: a one-line section such as
//! "See the API reference." is the same everywhere without being a copy of anything.

use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hasher};

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use smallvec::SmallVec;

/// Words per shingle.
const SHINGLE_WORDS: usize = 5;
/// MinHash values per signature.
const N_HASHES: usize = 64;
/// LSH bands; each covers `N_HASHES / N_BANDS` values.
const N_BANDS: usize = 16;
const ROWS: usize = N_HASHES / N_BANDS;

/// The estimated Jaccard similarity from which two sections count as copies of each other.
pub const NEAR_IDENTICAL: f32 = 0.8;

/// The fewest shingles (a section of about 14 words) for a section to be judged at all.
pub const MIN_SHINGLES: usize = 10;

/// A MinHash signature of a text's 5-word shingles: of each of 64 hash functions, the high 32
/// bits of its least value over the shingles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature(Vec<u32>);

/// A signature as snapshots of format 4 and before saved it: the whole 64-bit minimums.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub struct WideSignature(Vec<u64>);

impl WideSignature {
    /// The signature [`Signature::of`] gives the same text: the high half of a 64-bit minimum
    /// is the least of the high halves.
    pub fn narrow(self) -> Signature {
        Signature(self.0.into_iter().map(|min| (min >> 32) as u32).collect())
    }

    /// A wide signature that narrows to `signature`, for tests that write old snapshots.
    #[cfg(test)]
    pub fn of(signature: &Signature) -> WideSignature {
        WideSignature(
            signature
                .0
                .iter()
                .map(|high| u64::from(*high) << 32)
                .collect(),
        )
    }
}

/// Multipliers and offsets of the 64 hash functions, fixed so that signatures are comparable across
/// processes and snapshots (a splitmix64 sequence from a constant seed).
fn hash_params() -> &'static [(u64, u64); N_HASHES] {
    static PARAMS: std::sync::OnceLock<[(u64, u64); N_HASHES]> = std::sync::OnceLock::new();
    PARAMS.get_or_init(|| {
        let mut state: u64 = 0x5eed_f00d_cafe_d00d;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut params = [(0, 0); N_HASHES];
        for param in &mut params {
            *param = (next() | 1, next());
        }
        params
    })
}

impl Signature {
    /// The signature of `text`, or `None` if it has fewer than [`MIN_SHINGLES`] shingles.
    pub fn of(text: &str) -> Option<Signature> {
        // The lower-cased words, one after another in one buffer, and where each ends: two
        // allocations for a section instead of one a word.
        let mut lowered = String::with_capacity(text.len());
        let mut ends: Vec<usize> = Vec::new();
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
        {
            if word.is_ascii() {
                let start = lowered.len();
                lowered.push_str(word);
                lowered[start..].make_ascii_lowercase();
            } else {
                lowered.push_str(&word.to_lowercase());
            }
            ends.push(lowered.len());
        }
        if ends.len() < SHINGLE_WORDS + MIN_SHINGLES - 1 {
            return None;
        }
        // INVARIANT: `ends` is increasing and its last entry is `lowered`'s length, so every
        // index below its length gives a word.
        let word = |idx: usize| {
            let start = idx.checked_sub(1).map_or(0, |previous| ends[previous]);
            &lowered.as_bytes()[start..ends[idx]]
        };
        let shingles: Vec<u64> = (0..=ends.len() - SHINGLE_WORDS)
            .map(|first| {
                let mut hasher = FxBuildHasher.build_hasher();
                for idx in first..first + SHINGLE_WORDS {
                    hasher.write(word(idx));
                    hasher.write_u8(0xff);
                }
                hasher.finish()
            })
            .collect();
        // One hash function at a time over all the shingles: its parameters and its running
        // minimum stay in registers, and four independent minimums keep the multiplier busy.
        let mins = hash_params()
            .iter()
            .map(|&(mul, add)| {
                let value = |shingle: u64| {
                    let value = shingle.wrapping_mul(mul).wrapping_add(add);
                    // Mix the high bits down: a multiply alone leaves the low bits weak.
                    value ^ (value >> 29)
                };
                let mut lanes = [u64::MAX; 4];
                let mut quads = shingles.chunks_exact(4);
                for quad in &mut quads {
                    for (lane, shingle) in lanes.iter_mut().zip(quad) {
                        *lane = (*lane).min(value(*shingle));
                    }
                }
                let rest = quads.remainder().iter().map(|shingle| value(*shingle));
                let min = lanes.into_iter().chain(rest).min().unwrap_or(u64::MAX);
                (min >> 32) as u32
            })
            .collect();
        Some(Signature(mins))
    }

    /// The estimated Jaccard similarity of the two texts' shingle sets, from 0 to 1.
    pub fn similarity(&self, other: &Signature) -> f32 {
        let n_equal = self
            .0
            .iter()
            .zip(&other.0)
            .filter(|(mine, theirs)| mine == theirs)
            .count();
        n_equal as f32 / self.0.len().max(1) as f32
    }

    fn band_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.chunks(ROWS).enumerate().map(|(band, rows)| {
            let mut hasher = FxBuildHasher.build_hasher();
            hasher.write_usize(band);
            for row in rows {
                hasher.write_u32(*row);
            }
            hasher.finish()
        })
    }
}

/// Finds the signatures that may be near-identical to a given one.
///
/// Nearly every bucket holds one item (only copies share a band), so a bucket is the index of
/// its one item, and only a bucket of several has a list of its own: a band of a signature costs
/// a key and an index (16 bytes in the table) rather than a key and a list. Not saved: it is
/// made again from the signatures (snapshots of format 4 and before hold one, which [`SavedLsh`]
/// reads past).
#[derive(Clone, Debug)]
pub struct Lsh<T: Copy + Eq> {
    /// Band key to the index in `items` of the one item in that band, or [`SHARED`] and the
    /// index in `shared` of the list of the items in it.
    buckets: FxHashMap<u64, u32>,
    /// Each item, in the order added.
    items: Vec<T>,
    /// The buckets of more than one item: their items' indexes in `items`, in the order added.
    shared: Vec<SmallVec<[u32; 2]>>,
}

/// Marks a bucket of several items in [`Lsh::buckets`]; an index in `items` or `shared` stays
/// below it.
const SHARED: u32 = 1 << 31;

/// The index the next entry of a list of `len` entries gets in [`Lsh::buckets`], if it stays
/// below [`SHARED`].
fn next_index(len: usize) -> Option<u32> {
    u32::try_from(len).ok().filter(|index| *index < SHARED)
}

impl<T: Copy + Eq> Default for Lsh<T> {
    fn default() -> Lsh<T> {
        Lsh::new()
    }
}

impl<T: Copy + Eq> Lsh<T> {
    /// An empty table.
    pub fn new() -> Lsh<T> {
        Lsh::with_capacity(0)
    }

    /// An empty table with room for `n_items` signatures without growing.
    pub fn with_capacity(n_items: usize) -> Lsh<T> {
        Lsh {
            buckets: FxHashMap::with_capacity_and_hasher(
                n_items.saturating_mul(N_BANDS),
                FxBuildHasher,
            ),
            items: Vec::with_capacity(n_items),
            shared: Vec::new(),
        }
    }

    /// Adds `item` under its signature. Past 2^31 items, or buckets of several, an item is not
    /// added (and then not found as a copy): far more sections than a store can hold in memory.
    pub fn insert(&mut self, signature: &Signature, item: T) {
        let Some(id) = next_index(self.items.len()) else {
            return;
        };
        self.items.push(item);
        for key in signature.band_keys() {
            let bucket = match self.buckets.entry(key) {
                Entry::Vacant(vacant) => {
                    vacant.insert(id);
                    continue;
                }
                Entry::Occupied(occupied) => occupied.into_mut(),
            };
            let items = &self.items;
            if *bucket & SHARED == 0 {
                let one = *bucket;
                if items.get(one as usize) == Some(&item) {
                    continue;
                }
                let Some(list) = next_index(self.shared.len()) else {
                    continue;
                };
                self.shared.push(SmallVec::from_slice(&[one, id]));
                *bucket = SHARED | list;
            } else if let Some(list) = self.shared.get_mut((*bucket & !SHARED) as usize) {
                if !list.iter().any(|at| items.get(*at as usize) == Some(&item)) {
                    list.push(id);
                }
            }
        }
    }

    /// Calls `each` with the items of a bucket (a value of `buckets`), in the order added.
    fn each_in(&self, bucket: u32, mut each: impl FnMut(T)) {
        let ids: &[u32] = if bucket & SHARED == 0 {
            std::slice::from_ref(&bucket)
        } else {
            self.shared
                .get((bucket & !SHARED) as usize)
                .map_or(&[], |list| list.as_slice())
        };
        for id in ids {
            if let Some(item) = self.items.get(*id as usize) {
                each(*item);
            }
        }
    }

    /// Every item, once per band it is in.
    #[cfg(test)]
    pub fn items(&self) -> Vec<T> {
        let mut all = Vec::new();
        for bucket in self.buckets.values() {
            self.each_in(*bucket, |item| all.push(item));
        }
        all
    }

    /// The items sharing at least one band with `signature`, each once: band by band, each
    /// band's in the order they were added (which the store's marking relies on, to choose
    /// between equally good copies as it did before the table was made again).
    pub fn candidates(&self, signature: &Signature) -> Vec<T> {
        let mut found: Vec<T> = Vec::new();
        for key in signature.band_keys() {
            if let Some(bucket) = self.buckets.get(&key) {
                self.each_in(*bucket, |item| {
                    if !found.contains(&item) {
                        found.push(item);
                    }
                });
            }
        }
        found
    }
}

/// The similarity table of a snapshot of format 4 or before (a map of band keys to the section
/// references in that band), read and dropped: the table is made again from the signatures.
#[derive(Clone, Copy, Debug, Default)]
pub struct SavedLsh;

impl<'de> Deserialize<'de> for SavedLsh {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SavedLsh, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = SavedLsh;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a map of band keys to section references")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SavedLsh, A::Error> {
                // A reference was three integers.
                while map.next_entry::<u64, Vec<(u32, u32, u32)>>()?.is_some() {}
                Ok(SavedLsh)
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// Written as an empty table, for tests that write old snapshots.
#[cfg(test)]
impl Serialize for SavedLsh {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        serializer.serialize_map(Some(0))?.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature as first written: a `String` per word. Signatures are saved in snapshots,
    /// so [`Signature::of`] must give exactly these values.
    fn reference_signature(text: &str) -> Option<Signature> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.len() < SHINGLE_WORDS + MIN_SHINGLES - 1 {
            return None;
        }
        let mut mins = vec![u64::MAX; N_HASHES];
        for window in words.windows(SHINGLE_WORDS) {
            let mut hasher = FxBuildHasher.build_hasher();
            for word in window {
                hasher.write(word.as_bytes());
                hasher.write_u8(0xff);
            }
            let shingle = hasher.finish();
            for (min, (mul, add)) in mins.iter_mut().zip(hash_params()) {
                let value = shingle.wrapping_mul(*mul).wrapping_add(*add);
                let value = value ^ (value >> 29);
                *min = (*min).min(value);
            }
        }
        Some(WideSignature(mins).narrow())
    }

    proptest::proptest! {
        #[test]
        fn signatures_match_the_reference(text in "([a-zA-Z0-9_ÄÉßİ]{0,6}[ ,.\n-]{1,2}){0,40}") {
            proptest::prop_assert_eq!(Signature::of(&text), reference_signature(&text));
        }
    }

    const PARAGRAPH: &str = "Pydantic models can be converted to dictionaries with model_dump, \
        which accepts include and exclude arguments to choose the fields that are exported, and \
        by_alias to use the fields' aliases as keys of the resulting dictionary instead of names.";

    #[test]
    fn identical_texts_are_similar_and_unrelated_ones_are_not() {
        let this = Signature::of(PARAGRAPH).unwrap();
        assert_eq!(this.similarity(&this), 1.0);
        let reformatted = PARAGRAPH.replace(", ", ",\n  ").to_uppercase();
        assert_eq!(Signature::of(&reformatted).unwrap().similarity(&this), 1.0);
        let unrelated = Signature::of(
            "The policy file lists rules; each rule names the agents it applies to, the actions \
             it allows or denies, and the paths, hosts or commands those actions concern.",
        )
        .unwrap();
        assert!(this.similarity(&unrelated) < 0.1);
    }

    #[test]
    fn a_small_edit_keeps_a_copy_near_identical_and_a_rewrite_does_not() {
        let original = format!("{PARAGRAPH} {PARAGRAPH}");
        let edited = original.replacen("dictionaries", "dicts", 1);
        let rewritten = original
            .replace("model_dump", "dict")
            .replace("include", "only");
        let signature = Signature::of(&original).unwrap();
        let edited_similarity = Signature::of(&edited).unwrap().similarity(&signature);
        let rewritten_similarity = Signature::of(&rewritten).unwrap().similarity(&signature);
        assert!(edited_similarity >= NEAR_IDENTICAL, "{edited_similarity}");
        assert!(
            rewritten_similarity < NEAR_IDENTICAL,
            "{rewritten_similarity}"
        );
    }

    #[test]
    fn short_texts_are_not_judged() {
        assert!(Signature::of("See the API reference for details.").is_none());
        assert!(Signature::of("").is_none());
    }

    /// The table as first written: a list per bucket.
    fn reference_candidates(inserted: &[(Signature, u8)], signature: &Signature) -> Vec<u8> {
        let mut buckets: FxHashMap<u64, Vec<u8>> = FxHashMap::default();
        for (signed, item) in inserted {
            for key in signed.band_keys() {
                let bucket = buckets.entry(key).or_default();
                if !bucket.contains(item) {
                    bucket.push(*item);
                }
            }
        }
        let mut found = Vec::new();
        for key in signature.band_keys() {
            for item in buckets.get(&key).into_iter().flatten() {
                if !found.contains(item) {
                    found.push(*item);
                }
            }
        }
        found
    }

    proptest::proptest! {
        /// Signatures of values from a small range share bands often, so buckets of one, of
        /// several and an item added twice all occur; the candidates come as the list per
        /// bucket gave them, in the same order.
        #[test]
        fn lsh_candidates_are_those_of_a_list_per_bucket(
            inserted in proptest::collection::vec(
                (proptest::collection::vec(0u32..3, N_HASHES), 0u8..12),
                0..40,
            ),
            query in proptest::collection::vec(0u32..3, N_HASHES),
        ) {
            let inserted: Vec<(Signature, u8)> = inserted
                .into_iter()
                .map(|(values, item)| (Signature(values), item))
                .collect();
            let mut lsh = Lsh::new();
            for (signature, item) in &inserted {
                lsh.insert(signature, *item);
            }
            for signature in inserted.iter().map(|(signature, _)| signature).chain([&Signature(query)]) {
                proptest::prop_assert_eq!(
                    lsh.candidates(signature),
                    reference_candidates(&inserted, signature)
                );
            }
        }
    }

    #[test]
    fn lsh_finds_near_identical_items_only() {
        let mut lsh: Lsh<u32> = Lsh::new();
        let original = Signature::of(PARAGRAPH).unwrap();
        let copy = Signature::of(&PARAGRAPH.replacen("names", "field names", 1)).unwrap();
        let other = Signature::of(
            "Agents record decisions, actions, costs and gate outcomes into a trace file whose \
             frames are chained by hashes, so that an altered frame is found by verify.",
        )
        .unwrap();
        lsh.insert(&original, 1);
        lsh.insert(&other, 2);
        assert_eq!(lsh.candidates(&copy), vec![1]);
        assert_eq!(lsh.candidates(&other), vec![2]);
        assert_eq!(
            lsh.items().iter().filter(|item| **item == 1).count(),
            N_BANDS
        );
    }
}
