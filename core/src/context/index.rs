//! BM25 search over sections, with an `fst` term dictionary.
//!
//! The index holds documents under `u32` slots, each made of weighted fields (heading, key,
//! body). It keeps a main segment, whose term dictionary is an [`fst::Map`] from term to term
//! id and whose postings sit in flat vectors, and a small delta segment (a hash map from term to
//! postings) for documents inserted since the last [`Index::merge`]. A removed document is only
//! marked dead until the next merge. Global statistics (the number of documents, their average
//! length and each term's document frequency) count live documents only, so results do not
//! depend on when merges happen.
//!
//! Scores are BM25F-style: a term's frequency in a document is the sum over fields of
//! `weight × occurrences`, the document's length is the sum over fields of
//! `weight × terms in the field`, and
//! `score = Σ idf × tf × (k1 + 1) / (tf + k1 × (1 − b + b × length / average length))`
//! with `idf = ln(1 + (N − n + 0.5) / (n + 0.5))`, `k1 = 1.2` and `b = 0.75`.
//!
//! Search is exact (the same results and score bits as scoring every document) and prunes with
//! MaxScore, one segment after the other ([`search_segment`]):
//!
//! 1. The query's lists are sorted by their score bounds. A seed scores the first postings of
//!    the most selective list in full, which sets a first threshold (the `limit`-th best
//!    score, or the caller's share of the best one if higher).
//! 2. The lists whose bounds, added up from the lowest, stay under the threshold cannot lift a
//!    document on their own: they are only probed. The others (the essential lists) are read
//!    term at a time into per-thread partial scores ([`accumulate`]); a document is started
//!    only if its weight plus the bounds of the lists not yet read can reach the threshold.
//! 3. The started documents are completed in ordinal order, read back from a bitset
//!    ([`complete_candidates`]): each is probed in the other lists, highest bound first,
//!    until it is scored or cannot reach the threshold, which rises as results come in.
//!
//! The main segment's long lists (those holding at least one in sixty-four of its documents)
//! keep a membership bitmap with ranks and a bitmap of their frequency-1 postings
//! ([`DenseList`]), so that a probe tests a bit instead of searching the list. An essential
//! list with a bitmap may be probed instead of read, when that costs less: the documents that
//! only such lists hold, and whose bounds there can reach the threshold, are then found from
//! the bitmaps by a decision diagram ([`Reach`]), worked out again as the threshold rises.
//! `docs/benchmarks.md` ("Latency on 100,000 sections") has what each step saves and what was
//! tried instead.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use compact_str::CompactString;
use fst::Streamer;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::analyze::Analyzer;

/// BM25's term frequency saturation.
const K1: f32 = 1.2;

/// BM25's length normalisation.
const B: f32 = 0.75;

/// `insert` merges automatically once the delta segment holds more documents than this, or
/// than a tenth of the main segment, whichever is more.
const AUTO_MERGE_DOCS: usize = 4_096;

/// Upper bounds are widened by this factor so that rounding never makes them too tight.
const BOUND_SLACK: f32 = 1.000_1;

/// The first bytes of a snapshot made by [`Index::to_bytes`].
const MAGIC: &[u8; 8] = b"FFINDEX\0";

/// The snapshot format's version.
const FORMAT_VERSION: u32 = 1;

/// An error from loading an index snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The bytes are not a snapshot this version can read.
    #[error(transparent)]
    Corrupt(#[from] IndexCorruptError),
}

/// An index snapshot that failed validation.
#[derive(Debug, thiserror::Error)]
#[error("corrupt search index snapshot: {reason}")]
pub struct IndexCorruptError {
    reason: &'static str,
}

impl IndexCorruptError {
    /// What was wrong with the snapshot.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

fn corrupt<T>(reason: &'static str) -> Result<T, IndexError> {
    Err(IndexError::Corrupt(IndexCorruptError { reason }))
}

/// A document's terms with their weighted frequencies, and its weighted length: what
/// [`Index::analyze`] makes of its fields.
#[derive(Clone, Debug, Default)]
pub struct AnalyzedDocument {
    terms: Vec<(CompactString, f32)>,
    len: f32,
}

/// An index's segments merged into one by [`Index::merged`] or [`MergePlan::build`], for
/// [`Index::install`].
pub struct MergedIndex {
    main: MainSegment,
    /// Where each of its documents was in the index it was planned from: in the delta segment
    /// or not, and its ordinal there.
    origins: Vec<(bool, u32)>,
    /// How many documents the delta segment held when the merge was planned.
    delta_cutoff: usize,
    /// The [`Index::epoch`] it was planned from.
    epoch: u64,
}

/// What [`Index::plan_merge`] copies out of an index to build a merge from, so that the build
/// ([`MergePlan::build`]) needs no access to the index and may run while it changes.
pub struct MergePlan {
    /// The main segment's postings, shared with the index (they never change once built).
    postings: Arc<MainPostings>,
    /// The live documents of both segments, in slot order: slot, length, whether in the
    /// delta segment, and the ordinal there.
    live: Vec<(u32, f32, bool, u32)>,
    n_main: usize,
    /// The delta segment's postings, by term in byte order.
    delta_terms: Vec<(CompactString, Vec<u32>, Vec<f32>)>,
    delta_cutoff: usize,
    epoch: u64,
}

impl std::fmt::Debug for MergePlan {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MergePlan")
            .field("live_documents", &self.live.len())
            .finish()
    }
}

impl std::fmt::Debug for MergedIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MergedIndex")
            .field("live_documents", &self.main.docs.n_live())
            .finish()
    }
}

/// A fresh value for [`Index::epoch`], never handed out before in this process.
fn next_epoch() -> u64 {
    static EPOCHS: AtomicU64 = AtomicU64::new(1);
    EPOCHS.fetch_add(1, AtomicOrdering::Relaxed)
}

/// A BM25 index over documents identified by `u32` slots.
///
/// ```
/// use fourfold::context::Index;
/// let mut index = Index::new();
/// index.insert(0, &[("Serialization", 3.0), ("Use model_dump to get a dict.", 1.0)]);
/// index.insert(1, &[("Validators", 3.0), ("Field validators run after parsing.", 1.0)]);
/// let hits = index.search("how do I serialize a model", 10, |_| true);
/// assert_eq!(hits[0].0, 0);
/// ```
#[derive(Clone)]
pub struct Index {
    main: MainSegment,
    delta: DeltaSegment,
    n_live: usize,
    total_len: f64,
    /// Names the index's segments as they were last built (by [`Index::new`], a load or an
    /// install): between two builds, inserts and removes only append documents to the delta
    /// segment and mark documents dead, which [`Index::install`] can replay onto a merge
    /// planned in the same epoch. Not saved.
    epoch: u64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Index")
            .field("live_documents", &self.n_live)
            .field("main_documents", &self.main.docs.slots.len())
            .field("main_terms", &self.main.terms.len())
            .field("delta_documents", &self.delta.docs.slots.len())
            .field("delta_terms", &self.delta.terms.len())
            .finish()
    }
}

impl Default for Index {
    fn default() -> Index {
        Index::new()
    }
}

/// Slots, lengths and tombstones of a segment's documents, by ordinal.
#[derive(Clone, Debug, Default)]
struct Docs {
    slots: Vec<u32>,
    lens: Vec<f32>,
    dead: Vec<bool>,
    n_dead: usize,
    /// Live slot to ordinal; derived, never serialised.
    ordinals: FxHashMap<u32, u32>,
}

impl Docs {
    fn push(&mut self, slot: u32, len: f32) -> u32 {
        // INVARIANT: a segment never holds more than `u32::MAX` documents, since each live
        // slot is in one segment and dead ones are dropped by every merge.
        let ordinal = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(slot);
        self.lens.push(len);
        self.dead.push(false);
        self.ordinals.insert(slot, ordinal);
        ordinal
    }

    /// Marks `slot` dead; returns its length if it was live here.
    fn kill(&mut self, slot: u32) -> Option<f32> {
        let ordinal = self.ordinals.remove(&slot)? as usize;
        self.dead[ordinal] = true;
        self.n_dead += 1;
        Some(self.lens[ordinal])
    }

    fn n_live(&self) -> usize {
        self.slots.len() - self.n_dead
    }

    /// The number of live documents in a posting list.
    fn live_count(&self, ordinals: &[u32]) -> usize {
        if self.n_dead == 0 {
            return ordinals.len();
        }
        ordinals
            .iter()
            .filter(|ordinal| !self.dead[**ordinal as usize])
            .count()
    }
}

/// A posting list's upper-bound ingredients: the largest term frequency and the shortest
/// document in it.
#[derive(Clone, Copy, Debug)]
struct Bound {
    max_tf: f32,
    min_len: f32,
}

impl Default for Bound {
    fn default() -> Bound {
        Bound {
            max_tf: 0.0,
            min_len: f32::INFINITY,
        }
    }
}

impl Bound {
    fn widen(&mut self, tf: f32, len: f32) {
        self.max_tf = self.max_tf.max(tf);
        self.min_len = self.min_len.min(len);
    }
}

/// The main segment: its postings, shared with any merge being built from them, and its
/// documents, which removes mark dead.
#[derive(Clone)]
struct MainSegment {
    postings: Arc<MainPostings>,
    docs: Docs,
}

impl Deref for MainSegment {
    type Target = MainPostings;

    fn deref(&self) -> &MainPostings {
        &self.postings
    }
}

/// A main segment's term dictionary, postings and what is derived from them: never changed
/// once built.
struct MainPostings {
    terms: fst::Map<Vec<u8>>,
    /// Term id to the start of its postings; one more entry than there are terms.
    offsets: Vec<u64>,
    ordinals: Vec<u32>,
    tfs: Vec<f32>,
    bounds: Vec<Bound>,
    /// Per term, the largest `tf / (tf + k1 × (1 − b + b × length / bound_average))` over its
    /// postings: a tighter bound than `bounds` while the average length stays near
    /// `bound_average`. Derived, never serialised.
    max_weights: Vec<f32>,
    bound_average: f32,
    /// Per term, an index into `dense_lists`, or [`NOT_DENSE`]. Derived, never serialised.
    dense_of: Vec<u32>,
    /// The membership bitmaps of the long posting lists. Derived, never serialised.
    dense_lists: Vec<DenseList>,
}

/// `MainSegment::dense_of`'s entry for a term without a membership bitmap.
const NOT_DENSE: u32 = u32::MAX;

/// A posting list gets a membership bitmap when it holds at least one in this many of its
/// segment's documents: the bitmap and its ranks (12 bytes per 64 documents) then take at
/// most one and a half times the list's own postings (8 bytes each). On the 100,000-section
/// synthetic store that is 1,045 lists and 19 MB beside 80 MB of postings; one in 32 costs
/// asks 8% more instructions and a third more L1 misses, one in 128 twice the memory and half
/// as many more misses in the last-level cache, for 2% fewer instructions.
const DENSE_FRACTION: usize = 64;

/// A long posting list's membership as a bitmap over its segment's ordinals, with the number
/// of postings before each 64-bit word, so that completion finds a document's posting with one
/// bit test and a population count instead of a search through the list.
///
/// Completion probes common terms' lists for a few thousand candidates spread over the whole
/// segment; a search there touches a new stretch of a long list (cold in cache) for every
/// candidate, while the bitmap of 100,000 documents is 12.5 KB and stays in cache.
///
/// A second bitmap marks the postings whose frequency is exactly 1, most of any list's
/// postings (84% of those completion finds on the synthetic store): their frequency is known
/// from the bitmap, without a load from the list, which is the probe's cache miss.
#[derive(Clone, Debug, Default)]
struct DenseList {
    words: Vec<u64>,
    /// Postings before each word of `words`.
    before: Vec<u32>,
    /// The members whose term frequency is exactly 1.
    ones: Vec<u64>,
}

impl DenseList {
    /// The bitmaps of `ordinals` (strictly increasing, each below `n_docs`) and their term
    /// frequencies `tfs`.
    fn new(ordinals: &[u32], tfs: &[f32], n_docs: usize) -> DenseList {
        let mut words = vec![0u64; n_docs.div_ceil(64)];
        let mut ones = vec![0u64; words.len()];
        for (ordinal, tf) in ordinals.iter().zip(tfs) {
            let word_idx = *ordinal as usize / 64;
            let bit = 1u64 << (ordinal % 64);
            if let (Some(word), Some(one)) = (words.get_mut(word_idx), ones.get_mut(word_idx)) {
                *word |= bit;
                if *tf == 1.0 {
                    *one |= bit;
                }
            }
        }
        let mut before = Vec::with_capacity(words.len());
        let mut count = 0u32;
        for word in &words {
            before.push(count);
            count += word.count_ones();
        }
        DenseList {
            words,
            before,
            ones,
        }
    }

    /// The term frequency of `ordinal`'s posting, if it has one, with `tfs` the list's own.
    fn tf(&self, ordinal: u32, tfs: &[f32]) -> Option<f32> {
        let word_idx = ordinal as usize / 64;
        let word = *self.words.get(word_idx)?;
        let bit = 1u64 << (ordinal % 64);
        if word & bit == 0 {
            return None;
        }
        if self.ones.get(word_idx).is_some_and(|ones| ones & bit != 0) {
            return Some(1.0);
        }
        let before = *self.before.get(word_idx)? as usize;
        let position = before + (word & (bit - 1)).count_ones() as usize;
        Some(tfs.get(position).copied().unwrap_or(0.0))
    }
}

impl MainSegment {
    fn empty() -> MainSegment {
        MainSegment::new(
            fst::Map::default(),
            vec![0],
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Docs::default(),
            1.0,
        )
    }

    /// A segment of `docs` with these postings, and what derives from them: the bounds for an
    /// average length of `average` and the bitmaps of the long lists.
    fn new(
        terms: fst::Map<Vec<u8>>,
        offsets: Vec<u64>,
        ordinals: Vec<u32>,
        tfs: Vec<f32>,
        bounds: Vec<Bound>,
        docs: Docs,
        average: f32,
    ) -> MainSegment {
        let mut postings = MainPostings {
            terms,
            offsets,
            ordinals,
            tfs,
            bounds,
            max_weights: Vec::new(),
            bound_average: 1.0,
            dense_of: Vec::new(),
            dense_lists: Vec::new(),
        };
        postings.compute_max_weights(average, &docs.lens);
        postings.build_dense_lists(docs.lens.len());
        MainSegment {
            postings: Arc::new(postings),
            docs,
        }
    }
}

impl MainPostings {
    #[allow(clippy::type_complexity)]
    fn postings(&self, term: &str) -> Option<(&[u32], &[f32], Bound, f32, Option<&DenseList>)> {
        let term_id = self.terms.get(term)? as usize;
        let start = *self.offsets.get(term_id)? as usize;
        let end = *self.offsets.get(term_id + 1)? as usize;
        let dense = self
            .dense_of
            .get(term_id)
            .and_then(|idx| self.dense_lists.get(*idx as usize));
        Some((
            self.ordinals.get(start..end)?,
            self.tfs.get(start..end)?,
            *self.bounds.get(term_id)?,
            *self.max_weights.get(term_id)?,
            dense,
        ))
    }

    /// Builds the membership bitmaps of the lists that hold at least one in
    /// [`DENSE_FRACTION`] of the segment's `n_docs` documents.
    fn build_dense_lists(&mut self, n_docs: usize) {
        self.dense_of = Vec::with_capacity(self.offsets.len().saturating_sub(1));
        self.dense_lists = Vec::new();
        for pair in self.offsets.windows(2) {
            let (start, end) = (pair[0] as usize, pair[1] as usize);
            let ordinals = self.ordinals.get(start..end).unwrap_or(&[]);
            if ordinals.is_empty() || ordinals.len().saturating_mul(DENSE_FRACTION) < n_docs {
                self.dense_of.push(NOT_DENSE);
                continue;
            }
            let tfs = self.tfs.get(start..end).unwrap_or(&[]);
            self.dense_of.push(self.dense_lists.len() as u32);
            self.dense_lists.push(DenseList::new(ordinals, tfs, n_docs));
        }
    }

    /// Recomputes `max_weights` for the average document length `average`, with `lens` the
    /// lengths of the segment's documents.
    fn compute_max_weights(&mut self, average: f32, lens: &[f32]) {
        let norm = Norm::for_average(average);
        self.bound_average = norm.average;
        self.max_weights = self
            .offsets
            .windows(2)
            .map(|pair| {
                let (start, end) = (pair[0] as usize, pair[1] as usize);
                let ordinals = self.ordinals.get(start..end).unwrap_or(&[]);
                let tfs = self.tfs.get(start..end).unwrap_or(&[]);
                ordinals
                    .iter()
                    .zip(tfs)
                    .map(|(ordinal, tf)| {
                        let len = lens.get(*ordinal as usize).copied().unwrap_or(0.0);
                        norm.weight(*tf, len) / (K1 + 1.0)
                    })
                    .fold(0.0f32, f32::max)
            })
            .collect();
    }

    /// An upper bound on `tf × (k1 + 1) / (tf + norm's denominator)` over a term's postings,
    /// from its `max_weights` entry.
    fn weight_bound(&self, max_weight: f32, norm: Norm) -> f32 {
        // With a longer average than at bound time, the per-length factor shrinks, and every
        // weight grows by at most the ratio of the two averages.
        max_weight * (K1 + 1.0) * (norm.average / self.bound_average).max(1.0)
    }
}

#[derive(Clone, Debug, Default)]
struct DeltaPostings {
    ordinals: Vec<u32>,
    tfs: Vec<f32>,
    bound: Bound,
}

#[derive(Clone, Debug, Default)]
struct DeltaSegment {
    terms: FxHashMap<CompactString, DeltaPostings>,
    docs: Docs,
}

/// One query term's walk over one segment's postings.
struct Cursor<'a> {
    ordinals: &'a [u32],
    tfs: &'a [f32],
    position: usize,
    idf: f32,
    upper: f32,
    /// The list's membership bitmap, if it is long enough to have one.
    dense: Option<&'a DenseList>,
}

impl Cursor<'_> {
    /// The term frequency of `target`'s posting, if it has one; `target`s must come in
    /// increasing order, since without a bitmap this moves the cursor past them.
    fn tf(&mut self, target: u32) -> Option<f32> {
        match self.dense {
            Some(dense) => dense.tf(target, self.tfs),
            None => {
                let position = self.seek(target)?;
                self.position = position + 1;
                Some(self.tfs.get(position).copied().unwrap_or(0.0))
            }
        }
    }

    /// Moves to the first posting at or after `target`, galloping, and returns that posting's
    /// index if it is `target`'s.
    fn seek(&mut self, target: u32) -> Option<usize> {
        let ordinals = self.ordinals;
        let first = *ordinals.get(self.position)?;
        if first >= target {
            return (first == target).then_some(self.position);
        }
        // `ordinals[below] < target` throughout; `above` is past it or at or after `target`.
        let mut below = self.position;
        let mut step = 1;
        let above = loop {
            let probe = below + step;
            match ordinals.get(probe) {
                Some(ordinal) if *ordinal < target => {
                    below = probe;
                    step *= 2;
                }
                Some(_) => break probe,
                None => break ordinals.len(),
            }
        };
        let from = below + 1;
        let position = from
            + ordinals
                .get(from..above)
                .map_or(0, |gap| gap.partition_point(|ordinal| *ordinal < target));
        self.position = position;
        (ordinals.get(position) == Some(&target)).then_some(position)
    }
}

/// A scored slot, ordered so that the better one is greater: higher score, then lower slot.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scored {
    score: f32,
    slot: u32,
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Scored) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Scored) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.slot.cmp(&self.slot))
    }
}

/// The best `limit` results so far, none below `min_relative` times the best score.
struct TopK {
    limit: usize,
    heap: BinaryHeap<Reverse<Scored>>,
    min_relative: f32,
    best: f32,
}

impl TopK {
    fn accepts(&self, candidate: Scored) -> bool {
        if candidate.score < self.best * self.min_relative {
            return false;
        }
        self.heap.len() < self.limit || self.heap.peek().is_some_and(|worst| candidate > worst.0)
    }

    fn push(&mut self, candidate: Scored) {
        if self.heap.len() == self.limit {
            self.heap.pop();
        }
        self.best = self.best.max(candidate.score);
        self.heap.push(Reverse(candidate));
    }

    /// The score a document must reach to have a chance: the worst of a full heap, and never
    /// less than `min_relative` times the best score so far.
    fn threshold(&self) -> f32 {
        let floor = if self.min_relative > 0.0 {
            self.best * self.min_relative
        } else {
            f32::NEG_INFINITY
        };
        match self.heap.peek() {
            Some(worst) if self.heap.len() == self.limit => worst.0.score.max(floor),
            _ => floor,
        }
    }

    /// The results, best first, without those that fell below the floor after they came in.
    fn into_sorted(self) -> Vec<Scored> {
        let floor = self.best * self.min_relative;
        let mut results: Vec<Scored> = self
            .heap
            .into_iter()
            .map(|entry| entry.0)
            .filter(|scored| scored.score >= floor)
            .collect();
        results.sort_unstable_by(|a, b| b.cmp(a));
        results
    }
}

/// The per-query parts of the BM25 length normalisation.
#[derive(Clone, Copy)]
struct Norm {
    average: f32,
    constant: f32,
    per_len: f32,
}

impl Norm {
    fn for_average(average: f32) -> Norm {
        let average = if average.is_finite() && average > 0.0 {
            average
        } else {
            1.0
        };
        Norm {
            average,
            constant: K1 * (1.0 - B),
            per_len: K1 * B / average,
        }
    }

    fn weight(self, tf: f32, len: f32) -> f32 {
        tf * (K1 + 1.0) / (tf + self.constant + self.per_len * len)
    }
}

impl Index {
    /// The average length of the live documents, or 1 when there are none.
    fn average_len(&self) -> f32 {
        average(self.total_len, self.n_live)
    }

    /// Returns an empty index.
    pub fn new() -> Index {
        Index {
            main: MainSegment::empty(),
            delta: DeltaSegment::default(),
            n_live: 0,
            total_len: 0.0,
            epoch: next_epoch(),
        }
    }

    /// The number of live documents.
    pub fn len(&self) -> usize {
        self.n_live
    }

    /// Whether the index has no live documents.
    pub fn is_empty(&self) -> bool {
        self.n_live == 0
    }

    /// Whether `slot` holds a live document.
    pub fn contains(&self, slot: u32) -> bool {
        self.main.docs.ordinals.contains_key(&slot) || self.delta.docs.ordinals.contains_key(&slot)
    }

    /// Indexes the document made of `fields` (`(text, weight)` pairs) under `slot`, replacing
    /// any document already there.
    ///
    /// A weight that is negative or not finite counts as 0. This may merge the delta segment
    /// into the main one (see [`Index::merge`]) when the delta has grown large.
    pub fn insert(&mut self, slot: u32, fields: &[(&str, f32)]) {
        self.insert_analyzed(slot, Index::analyze(fields));
    }

    /// Analyses a document's `fields` for [`Index::insert_analyzed`], without touching an index:
    /// the part of an insert that can run before taking a writer's lock, or on another thread.
    pub fn analyze(fields: &[(&str, f32)]) -> AnalyzedDocument {
        let mut tfs: FxHashMap<CompactString, f32> = FxHashMap::default();
        let mut len = 0.0f32;
        Analyzer::with(|analyzer| {
            for (text, weight) in fields {
                let weight = if weight.is_finite() && *weight > 0.0 {
                    *weight
                } else {
                    0.0
                };
                if weight == 0.0 {
                    continue;
                }
                analyzer.each_term(text, |term| {
                    len += weight;
                    match tfs.get_mut(term) {
                        Some(tf) => *tf += weight,
                        None => {
                            tfs.insert(term.into(), weight);
                        }
                    }
                });
            }
        });
        let len = if len.is_finite() { len } else { f32::MAX };
        let terms = tfs
            .into_iter()
            .map(|(term, tf)| (term, if tf.is_finite() { tf } else { f32::MAX }))
            .collect();
        AnalyzedDocument { terms, len }
    }

    /// [`Index::insert`] for a document [`Index::analyze`] has analysed.
    pub fn insert_analyzed(&mut self, slot: u32, document: AnalyzedDocument) {
        self.insert_unmerged(slot, document);
        if self.merge_due() {
            self.merge();
        }
    }

    /// Whether the delta segment holds more documents than a tenth of the main segment's, and
    /// more than 4,096: then [`Index::insert_analyzed`] merges it.
    pub fn merge_due(&self) -> bool {
        self.delta.docs.slots.len() > AUTO_MERGE_DOCS.max(self.main.docs.n_live() / 10)
    }

    /// Whether the delta segment holds more documents than the main segment's, and more than
    /// 4,096: when the puts of a bulk load merge, so that each merge at least doubles the main
    /// segment, and a load rebuilds about twice its sections in merges instead of about ten
    /// times (a merge every tenth).
    pub fn merge_due_in_bulk(&self) -> bool {
        self.delta.docs.slots.len() > AUTO_MERGE_DOCS.max(self.main.docs.n_live())
    }

    /// [`Index::insert_analyzed`] without its automatic merge, for a caller that merges when
    /// [`Index::merge_due`] says so, and may then build the merge while readers search
    /// ([`Index::merged`]) rather than under its writer's lock.
    pub fn insert_unmerged(&mut self, slot: u32, document: AnalyzedDocument) {
        self.remove(slot);
        let AnalyzedDocument { terms, len } = document;
        let ordinal = self.delta.docs.push(slot, len);
        for (term, tf) in terms {
            let postings = self.delta.terms.entry(term).or_default();
            postings.ordinals.push(ordinal);
            postings.tfs.push(tf);
            postings.bound.widen(tf, len);
        }
        self.n_live += 1;
        self.total_len += f64::from(len);
    }

    /// Removes the document under `slot`; returns whether there was one.
    pub fn remove(&mut self, slot: u32) -> bool {
        let len = self
            .main
            .docs
            .kill(slot)
            .or_else(|| self.delta.docs.kill(slot));
        match len {
            Some(len) => {
                self.n_live -= 1;
                self.total_len -= f64::from(len);
                if self.n_live == 0 {
                    self.total_len = 0.0;
                }
                true
            }
            None => false,
        }
    }

    /// Rebuilds the main segment from its live documents and the delta segment's, leaving the
    /// delta empty and no dead documents. Does nothing when there is nothing to merge, and says
    /// whether there was.
    pub fn merge(&mut self) -> bool {
        match self.merged() {
            Some(merged) => self.install(merged),
            None => false,
        }
    }

    /// What [`Index::merge`] would make the index, built without changing it (so a caller may
    /// build it while readers still search), or `None` when there is nothing to merge.
    pub fn merged(&self) -> Option<MergedIndex> {
        self.plan_merge().map(MergePlan::build)
    }

    /// What a merge of the index as it is needs, copied out of it (the live documents and the
    /// delta segment's postings, a small part of the index) or shared with it (the main
    /// segment's postings), or `None` when there is nothing to merge. [`MergePlan::build`]
    /// then builds the merge, the costly part, with no access to the index: a caller may let
    /// writers change the index meanwhile, and [`Index::install`] takes their changes in.
    pub fn plan_merge(&self) -> Option<MergePlan> {
        if self.delta.docs.slots.is_empty() && self.main.docs.n_dead == 0 {
            return None;
        }
        // Live documents of both segments, in slot order, become the new ordinals.
        let mut live: Vec<(u32, f32, bool, u32)> = Vec::with_capacity(self.n_live);
        for (is_delta, docs) in [(false, &self.main.docs), (true, &self.delta.docs)] {
            for (ordinal, slot) in docs.slots.iter().enumerate() {
                if !docs.dead[ordinal] {
                    live.push((*slot, docs.lens[ordinal], is_delta, ordinal as u32));
                }
            }
        }
        live.sort_unstable_by_key(|(slot, ..)| *slot);
        let mut delta_terms: Vec<(CompactString, Vec<u32>, Vec<f32>)> = self
            .delta
            .terms
            .iter()
            .map(|(term, postings)| {
                (
                    term.clone(),
                    postings.ordinals.clone(),
                    postings.tfs.clone(),
                )
            })
            .collect();
        delta_terms.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Some(MergePlan {
            postings: Arc::clone(&self.main.postings),
            live,
            n_main: self.main.docs.slots.len(),
            delta_terms,
            delta_cutoff: self.delta.docs.slots.len(),
            epoch: self.epoch,
        })
    }

    /// Makes `merged` the index's main segment, with the delta segment holding only what was
    /// inserted since the merge was planned, if it was planned from this index in its current
    /// epoch (since the last install or load); says whether it was. Documents removed or
    /// replaced since the plan are marked dead in the merged segment, so no change is lost.
    pub fn install(&mut self, merged: MergedIndex) -> bool {
        if merged.epoch != self.epoch {
            return false;
        }
        let MergedIndex {
            mut main,
            origins,
            delta_cutoff,
            epoch: _,
        } = merged;
        // What was removed since the plan (a replaced document is removed first).
        for (ordinal, (is_delta, old)) in origins.iter().enumerate() {
            let docs = if *is_delta {
                &self.delta.docs
            } else {
                &self.main.docs
            };
            if docs.dead.get(*old as usize).copied().unwrap_or(true) {
                let slot = main.docs.slots[ordinal];
                main.docs.kill(slot);
            }
        }
        // What was inserted since the plan stays in the delta segment, under new ordinals.
        let old_delta = std::mem::take(&mut self.delta);
        let mut renumbered =
            vec![u32::MAX; old_delta.docs.slots.len().saturating_sub(delta_cutoff)];
        for (old, new) in (delta_cutoff..old_delta.docs.slots.len()).zip(renumbered.iter_mut()) {
            if !old_delta.docs.dead[old] {
                *new = self
                    .delta
                    .docs
                    .push(old_delta.docs.slots[old], old_delta.docs.lens[old]);
            }
        }
        if !self.delta.docs.slots.is_empty() {
            for (term, postings) in old_delta.terms {
                let from = postings
                    .ordinals
                    .partition_point(|ordinal| (*ordinal as usize) < delta_cutoff);
                let mut kept = DeltaPostings::default();
                for (ordinal, tf) in postings.ordinals[from..].iter().zip(&postings.tfs[from..]) {
                    let new = renumbered[*ordinal as usize - delta_cutoff];
                    if new != u32::MAX {
                        kept.ordinals.push(new);
                        kept.tfs.push(*tf);
                        kept.bound.widen(*tf, self.delta.docs.lens[new as usize]);
                    }
                }
                if !kept.ordinals.is_empty() {
                    self.delta.terms.insert(term, kept);
                }
            }
        }
        self.main = main;
        self.n_live = self.main.docs.n_live() + self.delta.docs.n_live();
        self.total_len = live_len([&self.main.docs, &self.delta.docs]);
        self.epoch = next_epoch();
        true
    }

    /// Returns up to `limit` `(slot, score)` pairs for the documents that best match `query`
    /// and pass `filter`, best first; equal scores come in slot order.
    ///
    /// An empty query, or one made only of stop words, matches nothing. `filter` is called only
    /// for documents that would otherwise make the results.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        filter: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        self.search_within(query, limit, 0.0, filter)
    }

    /// [`Index::search`], leaving out every document that scores below `min_relative` times
    /// the best score (0 keeps all; values outside 0 to 1 are clamped).
    ///
    /// Those documents are skipped during the search, not dropped after it: the floor rises
    /// with the best score found so far and prunes whole stretches of posting lists, so a
    /// caller that serves only documents close to the best pays only for those.
    pub fn search_within(
        &self,
        query: &str,
        limit: usize,
        min_relative: f32,
        filter: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let min_relative = if min_relative.is_finite() {
            min_relative.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if limit == 0 || self.n_live == 0 {
            return Vec::new();
        }
        let mut terms: Vec<CompactString> = Vec::new();
        Analyzer::with(|analyzer| analyzer.each_term(query, |term| terms.push(term.into())));
        terms.sort_unstable();
        terms.dedup();
        let n_docs = self.n_live as f32;
        let norm = Norm::for_average(self.average_len());
        let mut main_cursors = Vec::with_capacity(terms.len());
        let mut delta_cursors = Vec::with_capacity(terms.len());
        for term in &terms {
            let main = self.main.postings(term);
            let delta = self.delta.terms.get(term.as_str());
            let main_df = main.map_or(0, |(ordinals, ..)| self.main.docs.live_count(ordinals));
            let delta_df =
                delta.map_or(0, |postings| self.delta.docs.live_count(&postings.ordinals));
            let df = (main_df + delta_df) as f32;
            if df == 0.0 {
                continue;
            }
            let idf = (1.0 + (n_docs - df + 0.5) / (df + 0.5)).ln();
            let upper = |bound: Bound| idf * norm.weight(bound.max_tf, bound.min_len) * BOUND_SLACK;
            if let Some((ordinals, tfs, bound, max_weight, dense)) = main {
                let tight = idf * self.main.weight_bound(max_weight, norm) * BOUND_SLACK;
                main_cursors.push(Cursor {
                    ordinals,
                    tfs,
                    position: 0,
                    idf,
                    upper: upper(bound).min(tight),
                    dense,
                });
            }
            if let Some(postings) = delta {
                delta_cursors.push(Cursor {
                    ordinals: &postings.ordinals,
                    tfs: &postings.tfs,
                    position: 0,
                    idf,
                    upper: upper(postings.bound),
                    dense: None,
                });
            }
        }
        let mut top = TopK {
            limit: limit.min(self.n_live),
            heap: BinaryHeap::new(),
            min_relative,
            best: 0.0,
        };
        search_segment(&mut main_cursors, &self.main.docs, norm, &mut top, &filter);
        search_segment(
            &mut delta_cursors,
            &self.delta.docs,
            norm,
            &mut top,
            &filter,
        );
        top.into_sorted()
            .into_iter()
            .map(|scored| (scored.slot, scored.score))
            .collect()
    }
}

impl MergePlan {
    /// Builds the merge this plan describes: the live documents of both segments, renumbered
    /// in slot order, and every term's postings from both, in one main segment. The costly part
    /// of a merge (160 to 320 ms on 100,000 sections), and it needs no lock on the index.
    pub fn build(self) -> MergedIndex {
        let MergePlan {
            postings: main,
            live,
            n_main,
            delta_terms,
            delta_cutoff,
            epoch,
        } = self;
        let mut main_map = vec![u32::MAX; n_main];
        let mut delta_map = vec![u32::MAX; delta_cutoff];
        let mut docs = Docs::default();
        let mut origins = Vec::with_capacity(live.len());
        for (slot, len, is_delta, old) in &live {
            let new = docs.push(*slot, *len);
            let map = if *is_delta {
                &mut delta_map
            } else {
                &mut main_map
            };
            map[*old as usize] = new;
            origins.push((*is_delta, *old));
        }
        let mut builder = fst::MapBuilder::memory();
        let mut offsets = vec![0u64];
        let mut ordinals = Vec::with_capacity(main.ordinals.len());
        let mut tfs = Vec::with_capacity(main.tfs.len());
        let mut bounds = Vec::new();
        let mut postings: Vec<(u32, f32)> = Vec::new();
        let mut main_stream = main.terms.stream();
        let mut main_next = main_stream
            .next()
            .map(|(term, id)| (term.to_vec(), id as usize));
        let mut delta_iter = delta_terms.into_iter().peekable();
        loop {
            let order = match (&main_next, delta_iter.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((main_term, _)), Some((delta_term, ..))) => {
                    main_term.as_slice().cmp(delta_term.as_bytes())
                }
            };
            postings.clear();
            let mut term = Vec::new();
            if order != Ordering::Greater {
                if let Some((main_term, term_id)) = main_next.take() {
                    let start = main.offsets[term_id] as usize;
                    let end = main.offsets[term_id + 1] as usize;
                    for (ordinal, tf) in main.ordinals[start..end].iter().zip(&main.tfs[start..end])
                    {
                        let new = main_map[*ordinal as usize];
                        if new != u32::MAX {
                            postings.push((new, *tf));
                        }
                    }
                    term = main_term;
                }
                main_next = main_stream
                    .next()
                    .map(|(term, id)| (term.to_vec(), id as usize));
            }
            if order != Ordering::Less {
                if let Some((delta_term, delta_ordinals, delta_tfs)) = delta_iter.next() {
                    for (ordinal, tf) in delta_ordinals.iter().zip(&delta_tfs) {
                        let new = delta_map
                            .get(*ordinal as usize)
                            .copied()
                            .unwrap_or(u32::MAX);
                        if new != u32::MAX {
                            postings.push((new, *tf));
                        }
                    }
                    term = delta_term.as_bytes().to_vec();
                }
            }
            if postings.is_empty() {
                continue;
            }
            postings.sort_unstable_by_key(|(ordinal, _)| *ordinal);
            let mut bound = Bound::default();
            for (ordinal, tf) in &postings {
                bound.widen(*tf, docs.lens[*ordinal as usize]);
                ordinals.push(*ordinal);
                tfs.push(*tf);
            }
            // INVARIANT: terms come out of a merge of two byte-sorted lists without repeats,
            // so they are strictly increasing, and the builder writes to memory.
            builder
                .insert(&term, bounds.len() as u64)
                .expect("merged terms are strictly increasing");
            bounds.push(bound);
            offsets.push(ordinals.len() as u64);
        }
        // INVARIANT: a finished in-memory builder yields a valid fst.
        let terms = builder.into_map().into_fst().into_inner();
        let terms = fst::Map::new(terms).expect("a freshly built fst is valid");
        let total_len: f64 = docs.lens.iter().map(|len| f64::from(*len)).sum();
        let n_live = docs.slots.len();
        let main = MainSegment::new(
            terms,
            offsets,
            ordinals,
            tfs,
            bounds,
            docs,
            average(total_len, n_live),
        );
        MergedIndex {
            main,
            origins,
            delta_cutoff,
            epoch,
        }
    }
}

/// Postings of the most selective list scored up front to find a first threshold.
const SEED_POSTINGS: usize = 256;

/// Reused per thread, so that a search allocates nothing in the steady state.
#[derive(Default)]
struct Scratch {
    /// Partial scores by ordinal; zero outside a search.
    scores: Vec<f32>,
    /// One bit per ordinal: has a partial score in this search. Read back in ordinal order,
    /// which is the order the completion needs, so nothing is sorted.
    seen: Vec<u64>,
    /// Room for a [`Reach`]'s node words.
    reach_values: Vec<[u64; REACH_CHUNK]>,
}

impl Scratch {
    /// Keeps the documents at `ordinals` out of the completion (the seed has offered them).
    fn exclude(&mut self, ordinals: &[u32]) {
        for ordinal in ordinals {
            let doc_idx = *ordinal as usize;
            if let (Some(score), Some(word)) = (
                self.scores.get_mut(doc_idx),
                self.seen.get_mut(doc_idx / 64),
            ) {
                *word |= 1u64 << (doc_idx % 64);
                *score = f32::NEG_INFINITY;
            }
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Scores one segment's documents with MaxScore pruning, term at a time.
///
/// The cursors are sorted by their score bounds. A document found only in the cursors below
/// `first_essential` cannot reach the threshold, so only the essential cursors' postings are
/// read in full, adding into one partial score per document; a document is then completed
/// from the other cursors (by galloping search) only if its partial score plus their bounds
/// can still reach the threshold. The threshold starts from the documents of the most
/// selective cursor, scored in full up front.
///
/// Essential cursors with a membership bitmap are not read: the documents that only they and
/// the non-essential cursors hold, and whose bounds there can reach the threshold, are found
/// word by word from the bitmaps (a [`Reach`]), and such cursors are probed like the
/// non-essential ones.
fn search_segment(
    cursors: &mut [Cursor<'_>],
    docs: &Docs,
    norm: Norm,
    top: &mut TopK,
    filter: &impl Fn(u32) -> bool,
) {
    if cursors.is_empty() {
        return;
    }
    cursors.sort_unstable_by(|a, b| a.upper.total_cmp(&b.upper));
    let mut cumulative = cumulative_bounds(cursors);
    let n_seeded = seed(cursors, &cumulative, docs, norm, top, filter);
    let threshold = |top: &TopK| top.threshold();
    let bar = threshold(top);
    let first_essential = cumulative.iter().take_while(|bound| **bound < bar).count();
    if first_essential == cursors.len() {
        return;
    }
    // The documents the seed offered, all from the first postings of the most selective cursor.
    let seeded = cursors
        .last()
        .and_then(|selective| selective.ordinals.get(..n_seeded))
        .unwrap_or(&[]);
    // The essential cursors with bitmaps may move down, next to the non-essential ones, to be
    // probed instead of read: the first `n_moved` of them in bound order (a stable sort keeps
    // each group in bound order), for the `n_moved` that costs least; none if no diagram is
    // cheaper than reading them, or if the diagram takes too many nodes.
    let n_bitmapped = cursors[first_essential..]
        .iter()
        .filter(|cursor| cursor.dense.is_some())
        .count();
    let mut n_probed = first_essential;
    let mut reach = None;
    // Below a positive bar, any document with a posting may make the results: all are read.
    if n_bitmapped > 0 && bar > 0.0 {
        cursors[first_essential..].sort_by_key(|cursor| cursor.dense.is_none());
        // Each choice is costed by the postings it reads and the documents its diagram brings
        // up (estimated as if terms were independent); the cheapest wins.
        let n_docs = docs.lens.len() as f32;
        let read_cost = |read: &[Cursor<'_>]| {
            read.iter()
                .map(|cursor| cursor.ordinals.len() as f32)
                .sum::<f32>()
        };
        let mut best = read_cost(&cursors[first_essential..]);
        for n_moved in 1..=n_bitmapped {
            let probed = first_essential + n_moved;
            let Some(found) = Reach::new(&cursors[..probed], bar, n_docs) else {
                break;
            };
            let cost = read_cost(&cursors[probed..]) + REACH_DOCUMENT_COST * found.documents;
            if cost < best || reach_forced() {
                best = cost;
                n_probed = probed;
                reach = Some(found);
            }
        }
        cursors[n_probed..].sort_by(|a, b| a.upper.total_cmp(&b.upper));
        cumulative = cumulative_bounds(cursors);
    }
    let (probed, read) = cursors.split_at_mut(n_probed);
    let rest = n_probed.checked_sub(1).map_or(0.0, |idx| cumulative[idx]);
    SCRATCH.with(|scratch| {
        let mut borrowed = scratch.try_borrow_mut();
        let mut fresh = Scratch::default();
        // INVARIANT: a search never runs inside another on the same thread (the filter is the
        // caller's, and the store's filters do not search), so the borrow succeeds; were it to
        // fail, a fresh scratch gives the same results.
        let scratch: &mut Scratch = match &mut borrowed {
            Ok(scratch) => scratch,
            Err(_) => &mut fresh,
        };
        accumulate(read, rest, bar, docs, norm, scratch);
        scratch.exclude(seeded);
        complete_candidates(
            probed,
            &cumulative,
            rest,
            reach.as_ref(),
            docs,
            norm,
            top,
            filter,
            &threshold,
            scratch,
        );
    });
}

/// `cumulative[i]` bounds the score of a document found only in cursors `0..=i`.
fn cumulative_bounds(cursors: &[Cursor<'_>]) -> Vec<f32> {
    let mut sum = 0.0f32;
    cursors
        .iter()
        .map(|cursor| {
            sum += cursor.upper;
            sum * BOUND_SLACK
        })
        .collect()
}

/// Where a membership bitmap is missing from a [`Reach`]: every document may be there.
const EVERY_DOCUMENT: u64 = u64::MAX;

/// The most nodes a [`Reach`] may take before the search reads the postings instead.
const MAX_REACH_NODES: usize = 64;

/// Words of a [`Reach`] worked out together: a node's words sit side by side, so that each
/// step is a loop the compiler can vectorise.
const REACH_CHUNK: usize = 8;

/// A chunk of a [`Reach`] that holds no document.
const NO_WORDS: [u64; REACH_CHUNK] = [0; REACH_CHUNK];

/// A chunk of a [`Reach`] that holds every document.
const ALL_WORDS: [u64; REACH_CHUNK] = [u64::MAX; REACH_CHUNK];

/// The documents whose bounds, over the cursors that hold them, can reach a bar, as a decision
/// diagram over the cursors' membership bitmaps: a node tests one cursor and leads to the
/// rest of the test with what is still needed with and without that cursor's bound. It is
/// worked out a few 64-bit words at a time, one `and` and one `or` per node and word.
struct Reach<'a> {
    /// Children before their parents.
    nodes: Vec<ReachNode<'a>>,
    root: Branch,
    /// How many documents it holds, estimated as if terms were independent.
    documents: f32,
}

/// One test of a [`Reach`].
struct ReachNode<'a> {
    /// The cursor's membership bitmap; `None`: [`EVERY_DOCUMENT`].
    words: Option<&'a [u64]>,
    /// Where a document in the cursor goes next.
    with: Branch,
    /// Where a document not in the cursor goes next.
    without: Branch,
}

/// What completing a document the [`Reach`] brings up costs, in postings read.
const REACH_DOCUMENT_COST: f32 = 2.0;

#[cfg(test)]
thread_local! {
    /// Set by tests to make every search that can use a [`Reach`] use the widest one.
    static FORCE_REACH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the search must use a [`Reach`] where it can (only ever in tests).
fn reach_forced() -> bool {
    #[cfg(test)]
    return FORCE_REACH.with(std::cell::Cell::get);
    #[cfg(not(test))]
    false
}

/// Completion works a [`Reach`] out again when the bar has risen by this factor since it
/// was last worked out.
const REACH_REBUILD_RISE: f32 = 1.02;

/// Where a [`Reach`] node leads.
#[derive(Clone, Copy, PartialEq)]
enum Branch {
    Never,
    Always,
    Node(usize),
}

impl Branch {
    /// What the branch holds: `never`, `always`, or its node's entry in `values` (which are
    /// by node, children first, so a node's children are always there before it).
    fn value<T: Copy>(self, never: T, always: T, values: &[T]) -> T {
        match self {
            Branch::Never => never,
            Branch::Always => always,
            Branch::Node(idx) => values.get(idx).copied().unwrap_or(always),
        }
    }
}

/// A cursor as a [`Reach`] sees it.
#[derive(Clone, Copy)]
struct ReachList<'a> {
    words: Option<&'a [u64]>,
    bound: f32,
    /// The share of the segment's documents it holds.
    share: f32,
}

impl<'a> Reach<'a> {
    /// The diagram for `cursors` (in bound order) and `bar`, or `None` if it takes more than
    /// [`MAX_REACH_NODES`] nodes.
    ///
    /// Building stays cheap: a step either makes a node, ends at a constant, or finds its
    /// (list, need) pair already built, so it takes about twice as many steps as nodes.
    fn new(cursors: &[Cursor<'a>], bar: f32, n_docs: f32) -> Option<Reach<'a>> {
        let mut reach = Reach {
            nodes: Vec::new(),
            root: Branch::Never,
            documents: 0.0,
        };
        // Highest bound first; `left[i]` bounds what cursors `i..` can add.
        let lists: Vec<ReachList<'a>> = cursors
            .iter()
            .rev()
            .map(|cursor| ReachList {
                words: cursor.dense.map(|dense| dense.words.as_slice()),
                bound: cursor.upper * BOUND_SLACK,
                share: match cursor.dense {
                    Some(_) => cursor.ordinals.len() as f32 / n_docs.max(1.0),
                    None => 1.0,
                },
            })
            .collect();
        let mut left = vec![0.0f32; lists.len() + 1];
        for idx in (0..lists.len()).rev() {
            left[idx] = (left[idx + 1] + lists[idx].bound) * BOUND_SLACK;
        }
        let mut memo = FxHashMap::default();
        let mut shares = Vec::new();
        reach.root = reach.build(&lists, &left, 0, bar, &mut memo, &mut shares)?;
        reach.documents = n_docs * reach.root.value(0.0, 1.0, &shares);
        Some(reach)
    }

    /// The branch that tests `lists[idx..]` for `needed`; `shares` gets each new node's share
    /// of documents.
    fn build(
        &mut self,
        lists: &[ReachList<'a>],
        left: &[f32],
        idx: usize,
        needed: f32,
        memo: &mut FxHashMap<(usize, u32), Branch>,
        shares: &mut Vec<f32>,
    ) -> Option<Branch> {
        if needed <= 0.0 {
            return Some(Branch::Always);
        }
        let Some(list) = lists.get(idx).copied() else {
            return Some(Branch::Never);
        };
        if left.get(idx).copied().unwrap_or(0.0) < needed {
            return Some(Branch::Never);
        }
        if let Some(branch) = memo.get(&(idx, needed.to_bits())) {
            return Some(*branch);
        }
        let with = self.build(lists, left, idx + 1, needed - list.bound, memo, shares)?;
        let without = self.build(lists, left, idx + 1, needed, memo, shares)?;
        let branch = if with == without {
            with
        } else if self.nodes.len() >= MAX_REACH_NODES {
            return None;
        } else {
            let share = list.share * with.value(0.0, 1.0, shares)
                + (1.0 - list.share) * without.value(0.0, 1.0, shares);
            shares.push(share);
            self.nodes.push(ReachNode {
                words: list.words,
                with,
                without,
            });
            Branch::Node(self.nodes.len() - 1)
        };
        memo.insert((idx, needed.to_bits()), branch);
        Some(branch)
    }

    /// The words `first..first + REACH_CHUNK` of the set (zero past the segment's end), using
    /// `values` as room for the nodes' words.
    fn words(&self, first: usize, values: &mut Vec<[u64; REACH_CHUNK]>) -> [u64; REACH_CHUNK] {
        values.clear();
        for node in &self.nodes {
            let own: [u64; REACH_CHUNK] = match node.words {
                None => [EVERY_DOCUMENT; REACH_CHUNK],
                Some(words) => match words.get(first..first + REACH_CHUNK) {
                    Some(whole) => whole.try_into().unwrap_or([0; REACH_CHUNK]),
                    // The segment's last words.
                    None => {
                        let present = words.get(first..).unwrap_or(&[]);
                        std::array::from_fn(|lane| present.get(lane).copied().unwrap_or(0))
                    }
                },
            };
            let with = node.with.value(NO_WORDS, ALL_WORDS, values);
            let without = node.without.value(NO_WORDS, ALL_WORDS, values);
            values.push(std::array::from_fn(|lane| {
                (own[lane] & with[lane]) | without[lane]
            }));
        }
        self.root.value(NO_WORDS, ALL_WORDS, values)
    }
}

/// Adds every posting of the cursors that are read to its document's partial score.
///
/// The cursors are read from the highest bound down. A document that no earlier cursor has
/// shown is started only if its weight in this cursor, plus the bounds of every cursor that is
/// not read before it, can reach `bar`:
/// a document missing from all the cursors read before cannot reach it otherwise. `rest` is
/// the bound of the cursors that are only probed.
fn accumulate(
    read: &[Cursor<'_>],
    rest: f32,
    bar: f32,
    docs: &Docs,
    norm: Norm,
    scratch: &mut Scratch,
) {
    let n_docs = docs.lens.len();
    if scratch.scores.len() < n_docs {
        scratch.scores.resize(n_docs, 0.0);
    }
    let n_words = n_docs.div_ceil(64);
    if scratch.seen.len() < n_words {
        scratch.seen.resize(n_words, 0);
    }
    let Scratch { scores, seen, .. } = scratch;
    // The bounds of the cursors read after each one, from the probed ones up.
    let mut after = rest;
    let mut below = vec![0.0f32; read.len()];
    for (idx, cursor) in read.iter().enumerate() {
        below[idx] = after;
        after = (after + cursor.upper) * BOUND_SLACK;
    }
    for (read_idx, cursor) in read.iter().enumerate().rev() {
        let start_at = bar - below[read_idx];
        let postings = cursor.ordinals.iter().zip(cursor.tfs);
        if read_idx + 1 == read.len() {
            // The first cursor read: no document has a partial score yet.
            for (ordinal, tf) in postings {
                let doc_idx = *ordinal as usize;
                let Some(len) = docs.lens.get(doc_idx) else {
                    continue;
                };
                let weight = cursor.idf * norm.weight(*tf, *len);
                if weight < start_at {
                    continue;
                }
                if let (Some(score), Some(word)) =
                    (scores.get_mut(doc_idx), seen.get_mut(doc_idx / 64))
                {
                    *word |= 1u64 << (doc_idx % 64);
                    *score = weight;
                }
            }
        } else {
            for (ordinal, tf) in postings {
                let doc_idx = *ordinal as usize;
                let (Some(len), Some(score), Some(word)) = (
                    docs.lens.get(doc_idx),
                    scores.get_mut(doc_idx),
                    seen.get_mut(doc_idx / 64),
                ) else {
                    continue;
                };
                let weight = cursor.idf * norm.weight(*tf, *len);
                let bit = 1u64 << (doc_idx % 64);
                if *word & bit != 0 {
                    *score += weight;
                } else if weight >= start_at {
                    *word |= bit;
                    *score = weight;
                }
            }
        }
    }
}

/// Completes, in ordinal order, the documents whose partial scores may still make the results,
/// and the documents of `reach`, and offers them; leaves the scratch clean.
#[allow(clippy::too_many_arguments)]
fn complete_candidates(
    probed: &mut [Cursor<'_>],
    cumulative: &[f32],
    rest: f32,
    reach: Option<&Reach<'_>>,
    docs: &Docs,
    norm: Norm,
    top: &mut TopK,
    filter: &impl Fn(u32) -> bool,
    threshold: &impl Fn(&TopK) -> f32,
    scratch: &mut Scratch,
) {
    let n_words = docs.lens.len().div_ceil(64);
    if scratch.seen.len() < n_words {
        scratch.seen.resize(n_words, 0);
    }
    let Scratch {
        scores,
        seen,
        reach_values,
    } = scratch;
    // The bar only rises when a document makes the results.
    let mut bar = threshold(top);
    // The diagram for a higher bar holds fewer documents, so it is worked out again once the
    // bar has risen; if it would take too many nodes, the one for the lower bar still holds
    // every document that can reach the higher one.
    let mut rebuilt: Option<Reach<'_>> = None;
    let mut reach_bar = bar;
    let n_docs = docs.lens.len() as f32;
    let mut reached = [0u64; REACH_CHUNK];
    for (chunk_idx, chunk) in seen[..n_words].chunks_mut(REACH_CHUNK).enumerate() {
        let first_word = chunk_idx * REACH_CHUNK;
        if reach.is_some() && bar > reach_bar * REACH_REBUILD_RISE {
            reach_bar = bar;
            if let Some(higher) = Reach::new(probed, bar, n_docs) {
                rebuilt = Some(higher);
            }
        }
        if let Some(reach) = rebuilt.as_ref().or(reach) {
            reached = reach.words(first_word, reach_values);
        }
        for (lane, word) in chunk.iter_mut().enumerate() {
            let started = std::mem::take(word);
            let mut bits = started | reached[lane];
            while bits != 0 {
                let bit_idx = bits.trailing_zeros();
                bits &= bits - 1;
                let doc_idx = (first_word + lane) * 64 + bit_idx as usize;
                // A document that was not started holds a zero partial score.
                let partial = if started & (1u64 << bit_idx) != 0 {
                    scores.get_mut(doc_idx).map_or(0.0, std::mem::take)
                } else {
                    0.0
                };
                if partial == f32::NEG_INFINITY || partial + rest < bar {
                    continue;
                }
                let ordinal = doc_idx as u32;
                let len = docs.lens.get(doc_idx).copied().unwrap_or(0.0);
                let score = complete(probed, cumulative, bar, ordinal, partial, len, norm);
                // A score below the bar may be partial: `complete` stops early for such documents.
                if score >= bar {
                    offer(docs, ordinal, score, top, filter);
                    bar = threshold(top);
                }
            }
        }
    }
}

/// Scores the documents of the first postings of the most selective cursor (the last) in full
/// and offers them, to set a first threshold; returns how many postings it read.
///
/// The weights are added in the order the main pass adds them (the cursors by bound, highest
/// first), so a document gets the same score whichever pass scores it.
fn seed(
    cursors: &[Cursor<'_>],
    cumulative: &[f32],
    docs: &Docs,
    norm: Norm,
    top: &mut TopK,
    filter: &impl Fn(u32) -> bool,
) -> usize {
    let Some((selective, others)) = cursors.split_last() else {
        return 0;
    };
    let mut others: Vec<Cursor<'_>> = others
        .iter()
        .map(|cursor| Cursor {
            position: 0,
            ..*cursor
        })
        .collect();
    for (ordinal, tf) in selective
        .ordinals
        .iter()
        .zip(selective.tfs)
        .take(SEED_POSTINGS)
    {
        let len = docs.lens.get(*ordinal as usize).copied().unwrap_or(0.0);
        let partial = selective.idf * norm.weight(*tf, len);
        let bar = top.threshold();
        let score = complete(&mut others, cumulative, bar, *ordinal, partial, len, norm);
        // A score below the bar may be partial: `complete` stops early for such documents.
        if score >= bar {
            offer(docs, *ordinal, score, top, filter);
        }
    }
    selective
        .ordinals
        .len()
        .min(selective.tfs.len())
        .min(SEED_POSTINGS)
}

/// Adds the parts of `cursors` (all below the essential ones) to `score`, from the one with
/// the highest bound down, stopping as soon as the document cannot reach `bar`. The cursors
/// only move forward, so the documents must come in ordinal order.
fn complete(
    cursors: &mut [Cursor<'_>],
    cumulative: &[f32],
    bar: f32,
    ordinal: u32,
    mut score: f32,
    len: f32,
    norm: Norm,
) -> f32 {
    // INVARIANT: `cumulative` has an entry for each cursor of the search, and `cursors` are
    // its first ones, so zipping pairs each cursor with its own bound.
    let cumulative = cumulative.get(..cursors.len()).unwrap_or(cumulative);
    for (cursor, bound) in cursors.iter_mut().zip(cumulative).rev() {
        if score + *bound < bar {
            break;
        }
        if let Some(tf) = cursor.tf(ordinal) {
            score += cursor.idf * norm.weight(tf, len);
        }
    }
    score
}

/// Offers a fully scored document to the results.
fn offer(docs: &Docs, ordinal: u32, score: f32, top: &mut TopK, filter: &impl Fn(u32) -> bool) {
    let doc_idx = ordinal as usize;
    let Some(slot) = docs.slots.get(doc_idx).copied() else {
        return;
    };
    let candidate = Scored { score, slot };
    if !top.accepts(candidate) || docs.dead.get(doc_idx).copied().unwrap_or(true) || !filter(slot) {
        return;
    }
    top.push(candidate);
}

impl Index {
    /// Returns a snapshot of the index, which [`Index::from_bytes`] reads back without
    /// analysing any text again.
    ///
    /// The snapshot holds the main segment's `fst` bytes, the flat postings, the delta segment
    /// and the tombstones, all little-endian, followed by a CRC-32 of everything before it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, FORMAT_VERSION);
        put_bytes(&mut out, self.main.terms.as_fst().as_bytes());
        put_u64s(&mut out, &self.main.offsets);
        put_u32s(&mut out, &self.main.ordinals);
        put_f32s(&mut out, &self.main.tfs);
        put_docs(&mut out, &self.main.docs);
        put_docs(&mut out, &self.delta.docs);
        let mut delta_terms: Vec<(&str, &DeltaPostings)> = self
            .delta
            .terms
            .iter()
            .map(|(term, postings)| (&**term, postings))
            .collect();
        delta_terms.sort_unstable_by_key(|(term, _)| *term);
        put_u64(&mut out, delta_terms.len() as u64);
        for (term, postings) in delta_terms {
            put_bytes(&mut out, term.as_bytes());
            put_u32s(&mut out, &postings.ordinals);
            put_f32s(&mut out, &postings.tfs);
        }
        let checksum = crc32fast::hash(&out);
        put_u32(&mut out, checksum);
        out
    }

    /// Reads a snapshot made by [`Index::to_bytes`], checking it thoroughly: any damage gives an
    /// error, never a panic or a wrong index.
    pub fn from_bytes(bytes: &[u8]) -> Result<Index, IndexError> {
        if bytes.len() < MAGIC.len() + 8 {
            return corrupt("too short");
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 4);
        if !body.starts_with(MAGIC) {
            return corrupt("not an index snapshot");
        }
        if crc32fast::hash(body).to_le_bytes() != checksum {
            return corrupt("checksum mismatch");
        }
        let mut reader = Reader {
            bytes: &body[MAGIC.len()..],
        };
        if reader.u32()? != FORMAT_VERSION {
            return corrupt("unsupported format version");
        }
        let fst_bytes = reader.bytes()?.to_vec();
        let offsets = reader.u64s()?;
        let ordinals = reader.u32s()?;
        let tfs = reader.f32s()?;
        let main_docs = reader.docs()?;
        let delta_docs = reader.docs()?;
        let n_delta_terms = reader.u64()?;
        let mut delta_terms = FxHashMap::default();
        let mut previous: Option<CompactString> = None;
        for _ in 0..n_delta_terms {
            let Ok(term) = std::str::from_utf8(reader.bytes()?) else {
                return corrupt("a delta term is not utf-8");
            };
            let term = CompactString::from(term);
            if previous.as_ref().is_some_and(|previous| *previous >= term) {
                return corrupt("delta terms out of order");
            }
            let postings_ordinals = reader.u32s()?;
            let postings_tfs = reader.f32s()?;
            let bound = check_postings(&postings_ordinals, &postings_tfs, &delta_docs)?;
            delta_terms.insert(
                term.clone(),
                DeltaPostings {
                    ordinals: postings_ordinals,
                    tfs: postings_tfs,
                    bound,
                },
            );
            previous = Some(term);
        }
        if !reader.bytes.is_empty() {
            return corrupt("trailing bytes");
        }
        let Ok(terms) = fst::Map::new(fst_bytes) else {
            return corrupt("invalid term dictionary");
        };
        if terms.as_fst().verify().is_err() {
            return corrupt("term dictionary checksum mismatch");
        }
        let n_terms = terms.len();
        if offsets.len() != n_terms + 1
            || offsets.first() != Some(&0)
            || offsets.last() != Some(&(ordinals.len() as u64))
            || offsets.windows(2).any(|pair| pair[0] > pair[1])
            || ordinals.len() != tfs.len()
        {
            return corrupt("inconsistent postings offsets");
        }
        let mut seen = vec![false; n_terms];
        let mut stream = terms.stream();
        while let Some((_, term_id)) = stream.next() {
            match seen.get_mut(term_id as usize) {
                Some(seen) if !*seen => *seen = true,
                _ => return corrupt("invalid term id"),
            }
        }
        let mut bounds = Vec::with_capacity(n_terms);
        for pair in offsets.windows(2) {
            let (start, end) = (pair[0] as usize, pair[1] as usize);
            bounds.push(check_postings(
                &ordinals[start..end],
                &tfs[start..end],
                &main_docs,
            )?);
        }
        if main_docs.slots.windows(2).any(|pair| pair[0] >= pair[1]) {
            return corrupt("main segment slots out of order");
        }
        if delta_docs
            .ordinals
            .keys()
            .any(|slot| main_docs.ordinals.contains_key(slot))
        {
            return corrupt("a slot is live in both segments");
        }
        let n_live = main_docs.n_live() + delta_docs.n_live();
        let total_len = live_len([&main_docs, &delta_docs]);
        Ok(Index {
            main: MainSegment::new(
                terms,
                offsets,
                ordinals,
                tfs,
                bounds,
                main_docs,
                average(total_len, n_live),
            ),
            delta: DeltaSegment {
                terms: delta_terms,
                docs: delta_docs,
            },
            n_live,
            total_len,
            epoch: next_epoch(),
        })
    }
}

/// The average length of `n_live` documents of summed length `total_len`, or 1 when there are
/// none.
fn average(total_len: f64, n_live: usize) -> f32 {
    if n_live == 0 {
        return 1.0;
    }
    (total_len / n_live as f64) as f32
}

/// The summed length of the live documents of `segments`.
fn live_len(segments: [&Docs; 2]) -> f64 {
    segments
        .into_iter()
        .flat_map(|docs| docs.lens.iter().zip(&docs.dead))
        .filter(|(_, dead)| !**dead)
        .map(|(len, _)| f64::from(*len))
        .sum()
}

/// Checks that a posting list is strictly increasing, points at documents that exist and has
/// positive finite frequencies; returns its bound.
fn check_postings(ordinals: &[u32], tfs: &[f32], docs: &Docs) -> Result<Bound, IndexError> {
    if ordinals.len() != tfs.len() || ordinals.is_empty() {
        return corrupt("inconsistent posting list");
    }
    if ordinals.windows(2).any(|pair| pair[0] >= pair[1]) {
        return corrupt("posting list out of order");
    }
    let mut bound = Bound::default();
    for (ordinal, tf) in ordinals.iter().zip(tfs) {
        let Some(len) = docs.lens.get(*ordinal as usize) else {
            return corrupt("posting for a missing document");
        };
        if !(tf.is_finite() && *tf > 0.0) {
            return corrupt("invalid term frequency");
        }
        bound.widen(*tf, *len);
    }
    Ok(bound)
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_u32s(out: &mut Vec<u8>, values: &[u32]) {
    put_u64(out, values.len() as u64);
    for value in values {
        put_u32(out, *value);
    }
}

fn put_u64s(out: &mut Vec<u8>, values: &[u64]) {
    put_u64(out, values.len() as u64);
    for value in values {
        put_u64(out, *value);
    }
}

fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    put_u64(out, values.len() as u64);
    for value in values {
        put_u32(out, value.to_bits());
    }
}

fn put_docs(out: &mut Vec<u8>, docs: &Docs) {
    put_u32s(out, &docs.slots);
    put_f32s(out, &docs.lens);
    put_u64(out, docs.dead.len() as u64);
    out.extend(docs.dead.iter().map(|dead| u8::from(*dead)));
}

/// Reads a snapshot front to back; every read checks that the bytes are there before it
/// allocates anything.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n_bytes: usize) -> Result<&'a [u8], IndexError> {
        if n_bytes > self.bytes.len() {
            return corrupt("truncated");
        }
        let (head, tail) = self.bytes.split_at(n_bytes);
        self.bytes = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        let mut word = [0; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(word))
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        let mut word = [0; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }

    /// Reads a length, checking that `elem_bytes` bytes per element remain.
    fn count(&mut self, elem_bytes: usize) -> Result<usize, IndexError> {
        let count = self.u64()?;
        match usize::try_from(count).ok().and_then(|count| {
            count
                .checked_mul(elem_bytes)
                .map(|n_bytes| (count, n_bytes))
        }) {
            Some((count, n_bytes)) if n_bytes <= self.bytes.len() => Ok(count),
            _ => corrupt("truncated"),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], IndexError> {
        let count = self.count(1)?;
        self.take(count)
    }

    fn u32s(&mut self) -> Result<Vec<u32>, IndexError> {
        let count = self.count(4)?;
        let raw = self.take(count * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
            .collect())
    }

    fn u64s(&mut self) -> Result<Vec<u64>, IndexError> {
        let count = self.count(8)?;
        let raw = self.take(count * 8)?;
        Ok(raw
            .chunks_exact(8)
            .map(|word| {
                let mut bytes = [0; 8];
                bytes.copy_from_slice(word);
                u64::from_le_bytes(bytes)
            })
            .collect())
    }

    fn f32s(&mut self) -> Result<Vec<f32>, IndexError> {
        Ok(self.u32s()?.into_iter().map(f32::from_bits).collect())
    }

    fn docs(&mut self) -> Result<Docs, IndexError> {
        let slots = self.u32s()?;
        let lens = self.f32s()?;
        let n_dead_flags = self.count(1)?;
        let dead_flags = self.take(n_dead_flags)?;
        if lens.len() != slots.len() || dead_flags.len() != slots.len() {
            return corrupt("inconsistent document table");
        }
        if lens.iter().any(|len| !(len.is_finite() && *len >= 0.0)) {
            return corrupt("invalid document length");
        }
        let mut docs = Docs {
            slots,
            lens,
            dead: Vec::with_capacity(dead_flags.len()),
            n_dead: 0,
            ordinals: FxHashMap::default(),
        };
        for (ordinal, flag) in dead_flags.iter().enumerate() {
            match flag {
                0 => {
                    if docs
                        .ordinals
                        .insert(docs.slots[ordinal], ordinal as u32)
                        .is_some()
                    {
                        return corrupt("a slot is live twice");
                    }
                    docs.dead.push(false);
                }
                1 => {
                    docs.dead.push(true);
                    docs.n_dead += 1;
                }
                _ => return corrupt("invalid tombstone flag"),
            }
        }
        if u32::try_from(docs.slots.len()).is_err() {
            return corrupt("too many documents");
        }
        Ok(docs)
    }
}

impl Serialize for Index {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Index {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Index, D::Error> {
        struct SnapshotVisitor;

        impl<'de> serde::de::Visitor<'de> for SnapshotVisitor {
            type Value = Index;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("the bytes of a search index snapshot")
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Index, E> {
                Index::from_bytes(bytes).map_err(E::custom)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Index, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Index::from_bytes(&bytes).map_err(serde::de::Error::custom)
            }
        }

        deserializer.deserialize_bytes(SnapshotVisitor)
    }
}

#[cfg(test)]
mod tests {
    // Covers ranking, analysis through the index, updates against a naive reference model,
    // filters and snapshots.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Doc<'a> = (u32, &'a [(&'a str, f32)]);

    fn build(docs: &[Doc<'_>]) -> Index {
        let mut index = Index::new();
        for (slot, fields) in docs {
            index.insert(*slot, fields);
        }
        index
    }

    /// The slots `query` finds, in slot order.
    fn found(index: &Index, query: &str) -> Vec<u32> {
        let mut found = slots(index, query);
        found.sort_unstable();
        found
    }

    fn slots(index: &Index, query: &str) -> Vec<u32> {
        index
            .search(query, 10, |_| true)
            .into_iter()
            .map(|(slot, _)| slot)
            .collect()
    }

    /// Checks the slots a query returns, best first, both before and after a merge.
    fn check(docs: &[Doc<'_>], query: &str, expected: &[u32]) {
        let mut index = build(docs);
        assert_eq!(
            slots(&index, query),
            expected,
            "query {query:?} before merge"
        );
        index.merge();
        assert_eq!(
            slots(&index, query),
            expected,
            "query {query:?} after merge"
        );
    }

    #[test]
    fn ranking() {
        let body = |text| -> [(&str, f32); 1] { [(text, 1.0)] };
        let exact = body("model_dump returns a dict");
        let partial = body("the model can dump things");
        let heading: [(&str, f32); 2] = [("Validators", 3.0), ("how to check values", 1.0)];
        let mention: [(&str, f32); 2] =
            [("Other topic", 3.0), ("validators are mentioned here", 1.0)];
        let rare = body("common common rareword");
        let common = body("common common common");
        let serialize = body("serializing models to JSON");
        let unrelated = body("nothing to see here");
        let cases: &[(&[Doc<'_>], &str, &[u32])] = &[
            (&[(0, &partial), (1, &exact)], "model_dump", &[1, 0]),
            (&[(0, &mention), (1, &heading)], "validators", &[1, 0]),
            (&[(0, &common), (1, &rare)], "common rareword", &[1, 0]),
            (&[(0, &unrelated), (1, &serialize)], "serialization", &[1]),
            (&[(0, &unrelated), (1, &serialize)], "serialize", &[1]),
            (&[(0, &heading)], "validator", &[0]),
            (&[(0, &exact)], "dump model", &[0]),
            (&[(0, &exact)], ".model_dump()", &[0]),
            (&[(0, &exact)], "", &[]),
            (&[(0, &exact)], "the of and", &[]),
            (&[(0, &exact)], "absent", &[]),
            (&[(3, &exact), (1, &exact), (2, &exact)], "dict", &[1, 2, 3]),
        ];
        for (docs, query, expected) in cases {
            check(docs, query, expected);
        }
    }

    #[test]
    fn filter_and_limit() {
        let text: [(&str, f32); 1] = [("shared words", 1.0)];
        let docs: Vec<Doc<'_>> = (0..10).map(|slot| (slot, &text[..])).collect();
        let index = build(&docs);
        let hits = index.search("shared", 3, |slot| slot % 2 == 1);
        assert_eq!(hits.iter().map(|hit| hit.0).collect::<Vec<_>>(), [1, 3, 5]);
        assert!(index.search("shared", 0, |_| true).is_empty());
        assert_eq!(index.search("shared", 100, |_| true).len(), 10);
    }

    #[test]
    fn a_merge_planned_before_changes_installs_with_them() {
        let mut index = build(&[
            (0, &[("alpha beta", 1.0)]),
            (1, &[("alpha", 1.0)]),
            (3, &[("delta", 1.0)]),
        ]);
        let plan = index.plan_merge().unwrap();
        // Inserted, removed, replaced and inserted then removed after the plan.
        index.insert(2, &[("gamma", 1.0)]);
        assert!(index.remove(0));
        index.insert(1, &[("alpha gamma", 1.0)]);
        index.insert(4, &[("epsilon", 1.0)]);
        assert!(index.remove(4));
        let merged = plan.build();
        assert!(index.install(merged));
        assert_eq!(index.len(), 3);
        assert_eq!(found(&index, "alpha"), [1]);
        assert_eq!(found(&index, "beta"), Vec::<u32>::new());
        assert_eq!(found(&index, "gamma"), [1, 2]);
        assert_eq!(found(&index, "delta"), [3]);
        assert_eq!(found(&index, "epsilon"), Vec::<u32>::new());
        // What came after the plan is left to merge, and merges.
        assert!(index.merge());
        assert!(index.merged().is_none());
        assert_eq!(found(&index, "gamma"), [1, 2]);
    }

    #[test]
    fn a_merge_planned_before_another_install_is_refused() {
        let mut index = build(&[(0, &[("alpha beta", 1.0)]), (1, &[("alpha", 1.0)])]);
        assert!(index.remove(1));
        let first = index.plan_merge().unwrap();
        let second = index.plan_merge().unwrap();
        assert!(index.install(first.build()));
        index.insert(2, &[("beta", 1.0)]);
        assert!(
            !index.install(second.build()),
            "a merge of an older epoch was installed"
        );
        assert_eq!(found(&index, "beta"), [0, 2]);
        let reloaded = Index::from_bytes(&index.to_bytes()).unwrap();
        let plan = index.plan_merge().unwrap();
        let mut reloaded_too = reloaded.clone();
        assert!(
            !reloaded_too.install(plan.build()),
            "a merge of another index was installed"
        );
        assert_eq!(found(&reloaded, "beta"), [0, 2]);
    }

    #[test]
    fn remove_and_replace() {
        let mut index = build(&[(0, &[("alpha beta", 1.0)]), (1, &[("alpha", 1.0)])]);
        index.merge();
        assert!(index.remove(0));
        assert!(!index.remove(0));
        assert_eq!(slots(&index, "beta"), Vec::<u32>::new());
        index.insert(1, &[("gamma", 1.0)]);
        assert_eq!(slots(&index, "alpha"), Vec::<u32>::new());
        assert_eq!(slots(&index, "gamma"), [1]);
        assert_eq!(index.len(), 1);
        assert!(index.contains(1) && !index.contains(0));
        index.merge();
        assert_eq!(slots(&index, "gamma"), [1]);
        index.remove(1);
        index.merge();
        assert!(index.is_empty());
        assert!(slots(&index, "gamma").is_empty());
    }

    #[test]
    fn automatic_merge_keeps_results() {
        let mut index = Index::new();
        let texts = ["alpha beta", "beta gamma", "gamma delta alpha", "epsilon"];
        for slot in 0..(AUTO_MERGE_DOCS as u32 + 100) {
            index.insert(slot, &[(texts[slot as usize % texts.len()], 1.0)]);
        }
        assert!(index.delta.docs.slots.len() < 200);
        let before = index.search("alpha gamma", 5, |_| true);
        index.merge();
        assert_eq!(index.search("alpha gamma", 5, |_| true), before);
        assert_eq!(
            before.iter().map(|hit| hit.0).collect::<Vec<_>>(),
            [2, 6, 10, 14, 18]
        );
    }

    #[test]
    fn a_bulk_load_merges_when_the_delta_outgrows_the_main_segment() {
        let mut index = Index::new();
        let mut next_slot = 0u32;
        let mut insert = |index: &mut Index, n: usize| {
            for _ in 0..n {
                let document = Index::analyze(&[("alpha beta", 1.0)]);
                index.insert_unmerged(next_slot, document);
                next_slot += 1;
            }
        };
        insert(&mut index, AUTO_MERGE_DOCS);
        assert!(!index.merge_due() && !index.merge_due_in_bulk());
        insert(&mut index, 1);
        assert!(index.merge_due() && index.merge_due_in_bulk());
        index.merge();
        // Beyond a tenth of the main segment, but not beyond all of it.
        insert(&mut index, AUTO_MERGE_DOCS + 1);
        assert!(index.merge_due() && !index.merge_due_in_bulk());
        insert(&mut index, 1);
        assert!(index.merge_due_in_bulk());
    }

    #[test]
    fn snapshot_round_trip() {
        let mut index = build(&[
            (
                5,
                &[
                    ("Serialization", 3.0),
                    ("model_dump and model_dump_json", 1.0),
                ],
            ),
            (2, &[("Validators", 3.0), ("field validators", 1.0)]),
        ]);
        index.merge();
        index.insert(
            9,
            &[("Config", 3.0), ("model_config replaces class Config", 1.0)],
        );
        index.remove(2);
        let bytes = index.to_bytes();
        let loaded = Index::from_bytes(&bytes).expect("snapshot loads");
        for query in ["model", "config", "validators", "serialize dump"] {
            assert_eq!(
                loaded.search(query, 10, |_| true),
                index.search(query, 10, |_| true)
            );
        }
        assert_eq!(loaded.to_bytes(), bytes);
        let encoded =
            bincode::serde::encode_to_vec(&index, bincode::config::standard()).expect("encodes");
        let (decoded, _): (Index, usize) =
            bincode::serde::decode_from_slice(&encoded, bincode::config::standard())
                .expect("decodes");
        assert_eq!(
            decoded.search("model", 10, |_| true),
            index.search("model", 10, |_| true)
        );
        let json = serde_json::to_string(&index).expect("json");
        let from_json: Index = serde_json::from_str(&json).expect("json loads");
        assert_eq!(from_json.len(), index.len());
        let empty = Index::from_bytes(&Index::new().to_bytes()).expect("empty loads");
        assert!(empty.is_empty());
    }

    #[test]
    fn corrupt_snapshots_are_errors() {
        let mut index = build(&[(1, &[("alpha beta", 1.0)]), (2, &[("beta", 1.0)])]);
        index.merge();
        index.insert(3, &[("gamma", 1.0)]);
        let bytes = index.to_bytes();
        assert!(Index::from_bytes(&[]).is_err());
        assert!(Index::from_bytes(b"FFINDEX\0garbage").is_err());
        for cut in 0..bytes.len() {
            assert!(Index::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x5a;
            assert!(Index::from_bytes(&damaged).is_err(), "flip at {position}");
        }
        let error = Index::from_bytes(&bytes[..10]).expect_err("too short");
        assert!(error
            .to_string()
            .starts_with("corrupt search index snapshot"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_snapshot_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Index::from_bytes(&bytes);
            let mut prefixed = MAGIC.to_vec();
            prefixed.extend_from_slice(&bytes);
            let checksum = crc32fast::hash(&prefixed);
            prefixed.extend_from_slice(&checksum.to_le_bytes());
            let _ = Index::from_bytes(&prefixed);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn seek_matches_a_linear_search(mut ordinals in proptest::collection::vec(0..200u32, 0..80), mut targets in proptest::collection::vec(0..220u32, 0..20)) {
            ordinals.sort_unstable();
            ordinals.dedup();
            targets.sort_unstable();
            let tfs = vec![1.0; ordinals.len()];
            let mut cursor = Cursor {
                ordinals: &ordinals,
                tfs: &tfs,
                position: 0,
                idf: 1.0,
                upper: 1.0,
                dense: None,
            };
            for target in targets {
                let expected = cursor.position
                    + ordinals[cursor.position..].partition_point(|ordinal| *ordinal < target);
                let found = cursor.seek(target);
                prop_assert_eq!(cursor.position, expected);
                let at_target = ordinals.get(expected) == Some(&target);
                prop_assert_eq!(found, at_target.then_some(expected));
            }
        }

        #[test]
        fn dense_frequencies_match_the_list(
            postings in proptest::collection::btree_map(0..300u32, prop_oneof![Just(1.0f32), Just(2.0f32), 0.5..4.0f32], 0..200),
            extra in 0..130usize,
        ) {
            let (ordinals, tfs): (Vec<u32>, Vec<f32>) = postings.into_iter().unzip();
            let n_docs = ordinals.last().map_or(0, |last| *last as usize + 1) + extra;
            let dense = DenseList::new(&ordinals, &tfs, n_docs);
            for ordinal in 0..n_docs as u32 + 70 {
                let expected = ordinals.binary_search(&ordinal).ok().map(|idx| tfs[idx]);
                prop_assert_eq!(dense.tf(ordinal, &tfs), expected, "ordinal {}", ordinal);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A reach holds every document whose cursors' bounds add up to the bar, and none that
        /// falls short of it by more than rounding; a cursor without a bitmap may hold any.
        #[test]
        fn reach_holds_the_documents_that_can_reach_the_bar(
            lists in proptest::collection::vec(
                (proptest::collection::btree_set(0..700u32, 0..300), 0.1f32..8.0, any::<bool>()),
                1..6,
            ),
            bar in 0.5f32..25.0,
        ) {
            let n_docs = 700usize;
            let ordinals: Vec<Vec<u32>> =
                lists.iter().map(|(set, ..)| set.iter().copied().collect()).collect();
            let tfs = vec![1.0f32; 300];
            let dense: Vec<DenseList> = ordinals
                .iter()
                .map(|list| DenseList::new(list, &tfs[..list.len()], n_docs))
                .collect();
            let mut cursors: Vec<Cursor<'_>> = lists
                .iter()
                .enumerate()
                .map(|(idx, (_, upper, bitmapped))| Cursor {
                    ordinals: &ordinals[idx],
                    tfs: &tfs[..ordinals[idx].len()],
                    position: 0,
                    idf: 1.0,
                    upper: *upper,
                    dense: bitmapped.then_some(&dense[idx]),
                })
                .collect();
            cursors.sort_by(|a, b| a.upper.total_cmp(&b.upper));
            let Some(reach) = Reach::new(&cursors, bar, n_docs as f32) else {
                return Ok(());
            };
            let mut values = Vec::new();
            let mut held = Vec::new();
            for first in (0..n_docs.div_ceil(64)).step_by(REACH_CHUNK) {
                held.extend(reach.words(first, &mut values));
            }
            for doc in 0..n_docs as u32 {
                let is_held = held[doc as usize / 64] & (1u64 << (doc % 64)) != 0;
                let bound: f32 = cursors
                    .iter()
                    .filter(|cursor| {
                        cursor.dense.is_none() || cursor.ordinals.binary_search(&doc).is_ok()
                    })
                    .map(|cursor| cursor.upper)
                    .sum();
                if bound >= bar {
                    prop_assert!(is_held, "document {} with bound {} >= {}", doc, bound, bar);
                }
                if bound * 1.001 < bar {
                    prop_assert!(!is_held, "document {} with bound {} < {}", doc, bound, bar);
                }
            }
        }
    }

    /// Forty lists of nearly equal bounds with the bar halfway make billions of sums; building
    /// the diagram gives up at its node limit instead.
    #[test]
    fn reach_gives_up_on_long_queries() {
        let ordinals: Vec<u32> = (0..64).collect();
        let tfs = vec![1.0f32; ordinals.len()];
        let dense = DenseList::new(&ordinals, &tfs, 64);
        let cursors: Vec<Cursor<'_>> = (0..40)
            .map(|idx| Cursor {
                ordinals: &ordinals,
                tfs: &tfs,
                position: 0,
                idf: 1.0,
                upper: 1.0 + idx as f32 * 1e-3,
                dense: Some(&dense),
            })
            .collect();
        assert!(Reach::new(&cursors, 20.0, 64.0).is_none());
        // The first four lists alone, with the same bar halfway, are a small diagram.
        let reach = Reach::new(&cursors[..4], 2.0, 64.0).expect("a small diagram");
        assert!(!reach.nodes.is_empty() && reach.nodes.len() <= 16);
    }

    /// A naive BM25F over all live documents: the model the index is checked against.
    #[derive(Default)]
    struct Reference {
        docs: BTreeMap<u32, (BTreeMap<String, f64>, f64)>,
    }

    impl Reference {
        fn insert(&mut self, slot: u32, fields: &[(&str, f32)]) {
            let mut tfs = BTreeMap::new();
            let mut len = 0.0;
            for (text, weight) in fields {
                for term in crate::context::analyze(text) {
                    *tfs.entry(term).or_insert(0.0) += f64::from(*weight);
                    len += f64::from(*weight);
                }
            }
            self.docs.insert(slot, (tfs, len));
        }

        fn scores(&self, query: &str) -> BTreeMap<u32, f64> {
            let mut terms = crate::context::analyze(query);
            terms.sort();
            terms.dedup();
            let n_docs = self.docs.len() as f64;
            let average = self.docs.values().map(|doc| doc.1).sum::<f64>() / n_docs;
            let average = if average > 0.0 { average } else { 1.0 };
            let mut scores = BTreeMap::new();
            for term in &terms {
                let df = self
                    .docs
                    .values()
                    .filter(|doc| doc.0.contains_key(term))
                    .count() as f64;
                if df == 0.0 {
                    continue;
                }
                let idf = (1.0 + (n_docs - df + 0.5) / (df + 0.5)).ln();
                for (slot, (tfs, len)) in &self.docs {
                    if let Some(tf) = tfs.get(term) {
                        let k1 = f64::from(K1);
                        let b = f64::from(B);
                        let weight = tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / average));
                        *scores.entry(*slot).or_insert(0.0) += idf * weight;
                    }
                }
            }
            scores
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u32, Vec<(String, f32)>),
        Remove(u32),
        Merge,
        /// Plans a merge, to be built and installed by a later `Install`.
        Plan,
        Install,
    }

    const WORDS: &[&str] = &[
        "model",
        "dump",
        "model_dump",
        "validator",
        "validators",
        "field",
        "config",
        "json",
        "serialize",
        "schema",
        "the",
        "BaseModel",
        "alias",
        "strict",
    ];

    /// A word of [`WORDS`] whose chance falls with its place in the list, so that the first
    /// ones are in most documents.
    fn skewed_word() -> impl Strategy<Value = &'static str> {
        (1..=WORDS.len())
            .prop_flat_map(|n_likely| 0..n_likely)
            .prop_map(|idx| WORDS[idx])
    }

    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(WORDS), 0..12)
            .prop_map(|words| words.join(" "))
    }

    fn op() -> impl Strategy<Value = Op> {
        let fields = proptest::collection::vec(
            (
                text(),
                prop_oneof![Just(1.0f32), Just(1.5f32), Just(3.0f32)],
            ),
            0..3,
        );
        prop_oneof![
            6 => (0..24u32, fields).prop_map(|(slot, fields)| Op::Insert(slot, fields)),
            2 => (0..24u32).prop_map(Op::Remove),
            1 => Just(Op::Merge),
            1 => Just(Op::Plan),
            1 => Just(Op::Install),
        ]
    }

    fn compare(
        index: &Index,
        reference: &Reference,
        query: &str,
        limit: usize,
        modulo: u32,
        min_relative: f32,
    ) {
        let filter = |slot: u32| slot % modulo != 1;
        let hits = index.search_within(query, limit, min_relative, filter);
        let scores = reference.scores(query);
        let mut expected: Vec<(u32, f64)> = scores
            .iter()
            .filter(|(slot, _)| filter(**slot))
            .map(|(slot, score)| (*slot, *score))
            .collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let floor = expected.first().map_or(0.0, |best| best.1) * f64::from(min_relative);
        // Documents within rounding of the floor may fall on either side of it.
        let n_surely_in = expected
            .iter()
            .filter(|(_, score)| *score >= floor + 1e-4)
            .count()
            .min(limit);
        expected.retain(|(_, score)| *score >= floor - 1e-4);
        expected.truncate(limit);
        assert!(
            (n_surely_in..=expected.len()).contains(&hits.len()),
            "query {query:?}: {hits:?} vs {expected:?}"
        );
        for ((slot, score), (_, expected_score)) in hits.iter().zip(&expected) {
            assert!(
                (f64::from(*score) - expected_score).abs() < 1e-4,
                "{hits:?} vs {expected:?}"
            );
            let own = scores.get(slot).copied().unwrap_or(f64::NAN);
            assert!(
                (f64::from(*score) - own).abs() < 1e-4,
                "slot {slot}: {score} vs {own}"
            );
            assert!(filter(*slot));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Searches of a store large enough for several chunks of a [`Reach`], with the
        /// diagram used wherever it can be, so that it is worked out again as the bar rises.
        #[test]
        fn reach_searches_match_reference(
            docs in proptest::collection::vec(
                (proptest::sample::select(WORDS), proptest::collection::vec(skewed_word(), 2..12)),
                600..1_400,
            ),
            queries in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(WORDS), 2..6), 1..4),
            limit in 1..8usize,
            min_relative in prop_oneof![Just(0.0f32), Just(0.45f32)],
        ) {
            let mut index = Index::new();
            let mut reference = Reference::default();
            for (slot, (heading, body)) in (0u32..).zip(&docs) {
                let body = body.join(" ");
                let fields = [(*heading, 3.0f32), (body.as_str(), 1.0f32)];
                index.insert(slot, &fields);
                reference.insert(slot, &fields);
            }
            index.merge();
            FORCE_REACH.with(|force| force.set(true));
            for words in &queries {
                compare(&index, &reference, &words.join(" "), limit, 2, min_relative);
            }
            FORCE_REACH.with(|force| force.set(false));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn updates_match_reference(ops in proptest::collection::vec(op(), 0..40), queries in proptest::collection::vec(text(), 1..4), limit in 1..8usize, modulo in 2..4u32, min_relative in prop_oneof![Just(0.0f32), Just(0.45f32), Just(0.9f32)]) {
            let mut index = Index::new();
            let mut reference = Reference::default();
            // A planned merge, and whether the index has been rebuilt since it was planned.
            let mut planned: Option<(MergePlan, bool)> = None;
            for op in &ops {
                match op {
                    Op::Insert(slot, fields) => {
                        let fields: Vec<(&str, f32)> = fields.iter().map(|(text, weight)| (text.as_str(), *weight)).collect();
                        index.insert(*slot, &fields);
                        reference.insert(*slot, &fields);
                    }
                    Op::Remove(slot) => {
                        prop_assert_eq!(index.remove(*slot), reference.docs.remove(slot).is_some());
                    }
                    Op::Merge => {
                        let merged = index.merge();
                        // A merge leaves nothing for the next one to do.
                        prop_assert!(!index.merge());
                        if merged {
                            planned = planned.map(|(plan, _)| (plan, true));
                        }
                    }
                    Op::Plan => planned = index.plan_merge().map(|plan| (plan, false)),
                    Op::Install => {
                        if let Some((plan, rebuilt)) = planned.take() {
                            // A merge installs, with the changes made since it was planned,
                            // unless the index was rebuilt meanwhile.
                            prop_assert_eq!(index.install(plan.build()), !rebuilt);
                        }
                    }
                }
                prop_assert_eq!(index.len(), reference.docs.len());
            }
            for query in &queries {
                compare(&index, &reference, query, limit, modulo, min_relative);
                let reloaded = Index::from_bytes(&index.to_bytes()).expect("snapshot loads");
                compare(&reloaded, &reference, query, limit, modulo, min_relative);
            }
            index.merge();
            for query in &queries {
                compare(&index, &reference, query, limit, modulo, min_relative);
            }
        }
    }
}
