//! Snapshots: the whole store, with its index, saved through the [`Store`] trait, and the journal
//! of the changes since.
//!
//! A snapshot is `FFCTXS` and a format byte (5), the version of the marking rules its markers
//! were made by (u32, little-endian), the last journal entry number its saver had seen (u64),
//! the journal entries it holds (a u32 count, then for each writer its id and the last of its
//! entries, two u64s, in increasing order of id), the payload's length (u64), the BLAKE3 hash of
//! the fields after the format byte up to the length and of the payload (32 bytes), then the
//! payload: the store's state in bincode, index included, so reopening does not split, tokenise
//! or re-mark anything again (unless the marking rules, archive folders or pins changed since).
//! Each section is saved with where its text lies in its version's text and its MinHash
//! signature; the similarity table made from the signatures is not saved, but made again when
//! the snapshot is read. Format 4 has the same header, and a payload with 64-bit signatures and
//! the table (a sixth of the snapshot). Format 3 saves each section's text too (the same bytes
//! twice; a quarter of the snapshot). Format 2 named only the last entry number it held, for
//! entries without writers, and hashed the marking version and that number with the payload;
//! format 1, written before the journal, has neither field and hashes the payload alone. All
//! four still open (format 1 re-marked); a process of a version that writes format 4 cannot open
//! format 5, nor one that writes format 3 format 4.
//!
//! Saving moves the previous snapshot to `snapshot-previous` first (each write is atomic in
//! every backend), so a snapshot that turns out damaged leaves the one before it usable through
//! [`ContextStoreBuilder::open_previous`], then writes a copy of the new header to
//! `snapshot-head`, which [`ContextStore::refresh`] reads. Loading a damaged snapshot or journal
//! entry is an error and changes nothing.
//!
//! A snapshot is written as it is encoded ([`Store::put_with`]), then read back to hash it and
//! fill in its header, and read as it is decoded ([`Store::get_reader`]), its payload hashed as
//! it goes and the hash checked once it has been read to its end, so that its bytes (282 MB for
//! 100,000 sections) are never held whole beside the state. Damage is named as it was
//! when snapshots were read whole: a payload of another length than its header says first, then
//! one that does not match its hash, then one that does not decode.
//!
//! Between snapshots, each put and delete is appended to the journal ([`super::journal`]) before
//! it is applied; opening a snapshot applies the entries it does not hold. Saving deletes the
//! entries both it and the previous snapshot hold, so either snapshot with the journal gives the
//! latest state.
//!
//! Entries are held by writer, not by number, because numbers are not unique in time: a save
//! deletes entries, and a store that chose its next number before that deletion may write
//! there afterwards. Named by number alone, such an entry would be taken as held by a snapshot
//! that never saw it, and lost; named by writer, it is held only once a snapshot holds that
//! writer's entries up to it, and each writer's numbers rise.

use std::io::{BufReader, BufWriter, Read, SeekFrom};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::err::ContextError;
use super::journal::{self, holds, EntryId, Held, Journal, Op};
use super::store::{
    ContextStore, ContextStoreBuilder, Journaled, Marked, State, StateV3, StateV4, MARKING_VERSION,
};
use crate::error::StoreError;
use crate::event::{random_u64, Clock, SystemClock};
use crate::store::{Store, ValueReader, ValueWriter};

const MAGIC_V1: &[u8; 7] = b"FFCTXS\x01";
const MAGIC_V2: &[u8; 7] = b"FFCTXS\x02";
/// Format 3: format 5's header, with a payload whose sections hold copies of their text.
const MAGIC_V3: &[u8; 7] = b"FFCTXS\x03";
/// Format 4: format 5's header, with a payload of 64-bit signatures and the similarity table.
const MAGIC_V4: &[u8; 7] = b"FFCTXS\x04";
const MAGIC: &[u8; 7] = b"FFCTXS\x05";
const MARKING_AT: usize = MAGIC.len();
const THROUGH_AT: usize = MARKING_AT + 4;
/// Format 2: the payload's length, its hash, the payload.
const LEN_AT_V2: usize = THROUGH_AT + 8;
/// Formats 3 and 4: the number of writers, then each writer's id and last entry.
const WRITERS_AT: usize = THROUGH_AT + 8;
const WRITER_LEN: usize = 16;
/// The header of formats 3 to 5 without its writers.
const FIXED_LEN: usize = WRITERS_AT + 4 + 8 + 32;
const NAMESPACE: &str = "context";
const CURRENT: &str = "snapshot";
const PREVIOUS: &str = "snapshot-previous";
/// A copy of the latest snapshot's header, written after it: what [`ContextStore::refresh`]
/// reads to tell whether another process saved, without reading the whole snapshot.
const HEAD: &str = "snapshot-head";
/// How many numbers a journal write tries before it gives up: its entry's key names its writer,
/// so it is taken only if another store drew the same random id, or a stray record is there.
const MAX_CLAIMS: u32 = 64;

/// How many times a save reloads what other processes wrote before it gives up (each reload
/// rebuilds the state, so a save under a stream of other writers ends with an error instead).
const MAX_SAVE_RELOADS: u32 = 8;

/// The journal entry number after `seq`; an error when a damaged snapshot or a stray entry has
/// used up the numbers, rather than an overflow.
fn next_seq(seq: u64) -> Result<u64, ContextError> {
    seq.checked_add(1)
        .ok_or_else(|| ContextError::CorruptSnapshot {
            key: "journal".to_string(),
            reason: "the snapshot or an entry names the last possible journal entry number, so no later one can be written"
                .to_string(),
        })
}

/// A new store's id as a journal writer: random, never 0 (the writer of entries written before
/// writers had ids).
fn new_writer() -> u64 {
    random_u64(SystemClock.now_ns()).max(1)
}

/// The journal, held while a journaled change is applied.
pub(super) type JournalGuard<'a> = MutexGuard<'a, Journal>;

/// Where a store saves its snapshots and journal.
pub(super) struct Persist {
    store: Arc<dyn Store>,
    /// Held while an entry is written and its change applied, so that the journal's order is
    /// the order of the changes; and while a snapshot's state is encoded, so that it names the
    /// last entry it holds.
    journal: Mutex<Journal>,
    /// One save at a time, so that an older state never replaces a newer one. In an `Arc`, so
    /// that a write whose journal makes a save due can hand it to the thread that saves.
    saving: Arc<Mutex<()>>,
}

/// What [`ContextStore::save`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot's size in bytes.
    pub n_bytes: u64,
    /// Live documents saved.
    pub n_documents: u64,
}

/// The header of a snapshot of format 5 that holds the entries through `through` and, by
/// writer, `held`, with a payload of `payload_len` bytes whose hash (with the fields before
/// it) is `hash`.
fn header(through: u64, held: &Held, payload_len: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(FIXED_LEN + held.len() * WRITER_LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&MARKING_VERSION.to_le_bytes());
    bytes.extend_from_slice(&through.to_le_bytes());
    // INVARIANT: one writer per store that wrote an entry still in the folder, far fewer than
    // 2^32.
    bytes.extend_from_slice(&(held.len() as u32).to_le_bytes());
    for (writer, last) in held {
        bytes.extend_from_slice(&writer.to_le_bytes());
        bytes.extend_from_slice(&last.to_le_bytes());
    }
    bytes.extend_from_slice(&payload_len.to_le_bytes());
    bytes.extend_from_slice(hash);
    bytes
}

/// How much of a snapshot's payload is read or written at a time: as it is decoded, encoded,
/// or read back to hash it.
const STREAM_BUFFER: usize = 1 << 20;

/// Writes `unsealed`, a snapshot's header with its payload's length and hash left zero, then
/// the payload, `state` encoded as it goes (never held whole in memory), to `out`, which is
/// empty; returns the payload's length. The part of a save done under the state's read lock:
/// [`seal_written`] hashes and seals it after.
fn write_unsealed(
    out: &mut dyn ValueWriter,
    unsealed: &[u8],
    state: &State,
) -> std::io::Result<u64> {
    out.write_all(unsealed)?;
    let mut payload = BufWriter::with_capacity(STREAM_BUFFER, &mut *out);
    bincode::serde::encode_into_std_write(state, &mut payload, bincode::config::standard())
        .map_err(|error| match error {
            bincode::error::EncodeError::Io { inner, .. } => inner,
            // Not reached: the state is plain serde data (no untagged enums, no skipped
            // fields), which bincode always encodes.
            other => std::io::Error::other(other.to_string()),
        })?;
    payload
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    Ok(out.stream_position()? - unsealed.len() as u64)
}

/// Reads back the payload [`write_unsealed`] wrote after `unsealed` (`payload_len` bytes) to
/// hash it, and writes the header again with its length and hash filled in; returns it.
fn seal_written(
    out: &mut dyn ValueWriter,
    unsealed: &[u8],
    payload_len: u64,
) -> std::io::Result<Vec<u8>> {
    let len_at = unsealed.len() - 8 - 32;
    out.seek(SeekFrom::Start(unsealed.len() as u64))?;
    let mut payload = BufReader::with_capacity(
        STREAM_BUFFER,
        Hashing::after(&unsealed[MARKING_AT..len_at], (&mut *out).take(payload_len)),
    );
    let read = std::io::copy(&mut payload, &mut std::io::sink());
    let hash = payload.into_inner().finish()?;
    if read? != payload_len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let mut sealed = unsealed.to_vec();
    sealed[len_at..len_at + 8].copy_from_slice(&payload_len.to_le_bytes());
    sealed[len_at + 8..].copy_from_slice(hash.as_bytes());
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&sealed)?;
    Ok(sealed)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// What a snapshot's payload holds, by its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PayloadFormat {
    /// Formats 2 and 3: each section with a copy of its text ([`StateV3`]).
    CopiesText,
    /// Format 4: 64-bit signatures and the similarity table ([`StateV4`]).
    Wide,
    /// Format 5: [`State`].
    Now,
}

impl PayloadFormat {
    /// The payload of a snapshot whose header names the writers of its entries (formats 3 to
    /// 5), by its magic; `None` for any other magic.
    fn with_writers(magic: &[u8]) -> Option<PayloadFormat> {
        if magic == MAGIC {
            Some(PayloadFormat::Now)
        } else if magic == MAGIC_V4 {
            Some(PayloadFormat::Wide)
        } else if magic == MAGIC_V3 {
            Some(PayloadFormat::CopiesText)
        } else {
            None
        }
    }
}

/// What the header of a snapshot of format 2 to 5 says.
struct Header {
    payload: PayloadFormat,
    marking: u32,
    /// The last journal entry number its saver had seen.
    through: u64,
    /// The journal entries it holds.
    held: Held,
    /// Where its payload's length is: the hashed fields end there.
    len_at: usize,
}

impl Header {
    /// Where the payload starts: the header's length.
    fn len(&self) -> usize {
        self.len_at + 8 + 32
    }

    /// How long the header at the start of `bytes` is, from its first [`HEADER_PREFIX`]
    /// bytes (or all of it, if shorter); `None` if they are not the start of a header of format
    /// 2 to 5.
    fn len_of(bytes: &[u8]) -> Option<usize> {
        let magic = bytes.get(..MAGIC.len())?;
        if magic == MAGIC_V2 {
            Some(LEN_AT_V2 + 8 + 32)
        } else if PayloadFormat::with_writers(magic).is_some() {
            let count = u32::from_le_bytes(bytes.get(WRITERS_AT..HEADER_PREFIX)?.try_into().ok()?);
            (count as usize)
                .checked_mul(WRITER_LEN)
                .and_then(|writers_len| FIXED_LEN.checked_add(writers_len))
        } else {
            None
        }
    }

    /// The header at the start of `bytes` (a snapshot, or a head record: a copy of its
    /// header); `None` for other bytes or a header cut short.
    fn read(bytes: &[u8]) -> Option<Header> {
        let magic = bytes.get(..MAGIC.len())?;
        let through = u64_at(bytes.get(..WRITERS_AT)?, THROUGH_AT);
        let marking = u32::from_le_bytes(bytes[MARKING_AT..THROUGH_AT].try_into().ok()?);
        let header = if magic == MAGIC_V2 {
            Header {
                payload: PayloadFormat::CopiesText,
                marking,
                through,
                // Format 2's entries had no writers: it held every entry up to its number.
                held: Held::from([(0, through)]),
                len_at: LEN_AT_V2,
            }
        } else if let Some(payload) = PayloadFormat::with_writers(magic) {
            let count = u32::from_le_bytes(bytes.get(WRITERS_AT..WRITERS_AT + 4)?.try_into().ok()?);
            let writers_at = WRITERS_AT + 4;
            let len_at = (count as usize)
                .checked_mul(WRITER_LEN)
                .and_then(|writers_len| writers_at.checked_add(writers_len))?;
            let writers = bytes.get(writers_at..len_at)?;
            Header {
                payload,
                marking,
                through,
                held: writers
                    .chunks_exact(WRITER_LEN)
                    .map(|writer| (u64_at(writer, 0), u64_at(writer, 8)))
                    .collect(),
                len_at,
            }
        } else {
            return None;
        };
        (bytes.len() >= header.len()).then_some(header)
    }
}

/// The journal entries a snapshot holds, read from its header alone (none if it has no header
/// of format 2 to 5).
fn held_of(bytes: &[u8]) -> Held {
    Header::read(bytes).map_or_else(Held::new, |header| header.held)
}

/// A snapshot's header as a head record holds it: the whole of it, or the bytes themselves if
/// they are not a snapshot of format 2 to 5.
fn head_of(bytes: &[u8]) -> &[u8] {
    &bytes[..Header::read(bytes).map_or(bytes.len(), |header| header.len())]
}

/// What tells one snapshot from another: a hash of its header, which holds the hash of its
/// payload (all zeros for none). The same for a snapshot and its head record.
fn id_of(snapshot: Option<&[u8]>) -> [u8; 32] {
    snapshot.map_or([0; 32], |bytes| *blake3::hash(head_of(bytes)).as_bytes())
}

/// How much of a snapshot [`read_head`] reads first: its header, unless more than about 4,000
/// writers hold entries in its folder.
const HEAD_PREFIX_BYTES: usize = 64 * 1024;

/// The start of the snapshot `key` in `store`, if there is one: at least its header (the whole
/// snapshot when it has no header of format 2 to 5, whose id is then a hash of all of it).
fn read_head(store: &dyn Store, key: &str) -> Result<Option<Vec<u8>>, ContextError> {
    let Some((bytes, len)) = store.get_prefix(NAMESPACE, key, HEAD_PREFIX_BYTES)? else {
        return Ok(None);
    };
    if Header::read(&bytes).is_some() || bytes.len() as u64 == len {
        return Ok(Some(bytes));
    }
    // A header longer than the prefix, or none: read as an open reads, which stops at the
    // header if there is one.
    Ok(Opened::read(store, key)?.map(Opened::into_head))
}

/// The journal entries in `store`, in order.
fn journal_entries(store: &dyn Store) -> Result<Vec<EntryId>, ContextError> {
    // Keys list sorted, and entry keys sort in the entries' order.
    Ok(store
        .list(NAMESPACE)?
        .iter()
        .filter_map(|entry| journal::entry_of(entry))
        .collect())
}

/// What a snapshot decodes to: its state, the last journal entry number its saver had seen,
/// the entries it holds, and whether its markers are the current marking rules'.
type Decoded = (State, u64, Held, Marked);

/// How many bytes of a snapshot tell how long its header is (format 2 to 5): up to its
/// count of writers.
const HEADER_PREFIX: usize = WRITERS_AT + 4;

/// A snapshot opened for reading.
enum Opened {
    /// One of format 2 to 5: its header, read, and its payload (of `payload_len` bytes),
    /// read as it is decoded, so that its bytes are never held whole beside the state.
    Header {
        head: Vec<u8>,
        header: Header,
        payload: Box<dyn Read + Send>,
        payload_len: u64,
    },
    /// Anything else (format 1, a header cut short, foreign bytes): all of its bytes.
    Whole(Vec<u8>),
}

impl Opened {
    /// Its header, or all of its bytes when it has none of format 2 to 5: what [`id_of`]
    /// hashes.
    fn head(&self) -> &[u8] {
        match self {
            Opened::Header { head, .. } => head,
            Opened::Whole(bytes) => bytes,
        }
    }

    /// [`Opened::head`], the rest left unread.
    fn into_head(self) -> Vec<u8> {
        match self {
            Opened::Header { head, .. } => head,
            Opened::Whole(bytes) => bytes,
        }
    }

    /// The snapshot `key` in `store`, if there is one, its header read.
    fn read(store: &dyn Store, key: &str) -> Result<Option<Opened>, ContextError> {
        let Some(ValueReader { mut reader, len }) = store.get_reader(NAMESPACE, key)? else {
            return Ok(None);
        };
        let failed = |error| ContextError::Store(StoreError::from_io(error, NAMESPACE, key));
        let mut head = Vec::new();
        (&mut reader)
            .take(HEADER_PREFIX as u64)
            .read_to_end(&mut head)
            .map_err(failed)?;
        if let Some(header_len) = Header::len_of(&head).filter(|&needed| needed as u64 <= len) {
            (&mut reader)
                .take((header_len - head.len().min(header_len)) as u64)
                .read_to_end(&mut head)
                .map_err(failed)?;
            if let Some(header) = Header::read(&head) {
                let payload_len = len.saturating_sub(head.len() as u64);
                return Ok(Some(Opened::Header {
                    head,
                    header,
                    payload: reader,
                    payload_len,
                }));
            }
        }
        reader.read_to_end(&mut head).map_err(failed)?;
        Ok(Some(Opened::Whole(head)))
    }

    /// What the snapshot, which is `key`, decodes to.
    fn decode(self, key: &str) -> Result<Decoded, ContextError> {
        match self {
            Opened::Header {
                head,
                header,
                payload,
                payload_len,
            } => decode_payload_of(key, &head, header, payload, payload_len),
            Opened::Whole(bytes) => decode(key, &bytes),
        }
    }
}

/// A reader that hashes what it reads, and keeps the first error of the reader under it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    failed: Option<std::io::Error>,
}

impl<R> Hashing<R> {
    /// A reader of `inner` whose hash starts with `fields` (a snapshot's hashed header fields).
    fn after(fields: &[u8], inner: R) -> Hashing<R> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(fields);
        Hashing {
            inner,
            hasher,
            failed: None,
        }
    }

    /// The hash of the fields and of what it read, or the first error of the reader under it.
    fn finish(self) -> std::io::Result<blake3::Hash> {
        match self.failed {
            Some(error) => Err(error),
            None => Ok(self.hasher.finalize()),
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => Err(error),
            Err(error) => {
                let kind = error.kind();
                self.failed.get_or_insert(error);
                Err(kind.into())
            }
        }
    }
}

fn corrupt(key: &str, reason: String) -> ContextError {
    ContextError::CorruptSnapshot {
        key: key.to_string(),
        reason,
    }
}

/// What the snapshot `bytes`, which is `key`, decodes to.
fn decode(key: &str, bytes: &[u8]) -> Result<Decoded, ContextError> {
    let corrupt = |reason: String| corrupt(key, reason);
    if let Some(header) = Header::read(bytes) {
        let payload = &bytes[header.len()..];
        let payload_len = payload.len() as u64;
        return decode_payload_of(key, bytes, header, payload, payload_len);
    }
    if bytes.get(..MAGIC.len()) == Some(MAGIC_V1) {
        let payload = unframe(MAGIC_V1, bytes).map_err(corrupt)?;
        let state = decode_payload::<StateV3>(payload)
            .map_err(corrupt)?
            .upgrade()
            .map_err(|reason| corrupt(format!("it is inconsistent: {reason}")))?;
        return checked(key, (state, 0, Held::new(), Marked::Before));
    }
    if bytes.len() >= MAGIC.len() && bytes.starts_with(b"FFCTXS") {
        return Err(corrupt(
            "its header is cut short, or of a format this version does not know".to_string(),
        ));
    }
    Err(corrupt(
        "it does not start with a context snapshot header".to_string(),
    ))
}

/// `decoded`, if its state is consistent, with its similarity table made.
fn checked(key: &str, mut decoded: Decoded) -> Result<Decoded, ContextError> {
    decoded
        .0
        .check()
        .map_err(|reason| corrupt(key, format!("it is inconsistent: {reason}")))?;
    decoded.0.index_signatures();
    Ok(decoded)
}

/// A payload as it decodes: of format 5, of format 4 (64-bit signatures and the similarity
/// table), or of format 2 or 3 (sections with copies of their text).
enum Payload {
    Now(State),
    Wide(StateV4),
    CopiesText(StateV3),
}

/// What the snapshot `key`, whose header is `head` (`header` read from it), decodes to, its
/// payload read from `payload` (`payload_len` bytes) as it is decoded and hashed as it is read.
///
/// Damage is reported as the whole snapshot read first would report it: a payload of another
/// length than its header says, then a payload that does not match its hash (the rest of the
/// payload is read to hash it, whatever the decode found), then one that does not decode or is
/// inconsistent.
fn decode_payload_of(
    key: &str,
    head: &[u8],
    header: Header,
    payload: impl Read,
    payload_len: u64,
) -> Result<Decoded, ContextError> {
    let corrupt = |reason: String| corrupt(key, reason);
    check_len(u64_at(head, header.len_at), payload_len).map_err(corrupt)?;
    let mut source = BufReader::with_capacity(
        STREAM_BUFFER,
        Hashing::after(&head[MARKING_AT..header.len_at], payload.take(payload_len)),
    );
    let decoded = match header.payload {
        PayloadFormat::CopiesText => {
            crate::decode::decode_buffered::<StateV3, _>(&mut source, payload_len)
                .map(Payload::CopiesText)
        }
        PayloadFormat::Wide => {
            crate::decode::decode_buffered::<StateV4, _>(&mut source, payload_len)
                .map(Payload::Wide)
        }
        PayloadFormat::Now => {
            crate::decode::decode_buffered::<State, _>(&mut source, payload_len).map(Payload::Now)
        }
    };
    let unread = source.buffer().len() as u64 + source.get_ref().inner.limit();
    // The rest is hashed too, so that damage anywhere is reported as such. An error reading it
    // is kept by `Hashing`.
    let _ = std::io::copy(&mut source, &mut std::io::sink());
    let hash = source
        .into_inner()
        .finish()
        .map_err(|error| ContextError::Store(StoreError::from_io(error, NAMESPACE, key)))?;
    if hash.as_bytes() != &head[header.len_at + 8..header.len()] {
        return Err(corrupt(
            "its checksum does not match its content".to_string(),
        ));
    }
    let decoded = match decoded {
        Ok(_) if unread > 0 => Err(format!("{unread} trailing bytes")),
        Ok(decoded) => Ok(decoded),
        Err(error) => Err(error.to_string()),
    }
    .map_err(|error| corrupt(format!("it does not decode: {error}")))?;
    let state = match decoded {
        Payload::Now(state) => state,
        Payload::Wide(state) => state.upgrade(),
        Payload::CopiesText(state) => state
            .upgrade()
            .map_err(|reason| corrupt(format!("it is inconsistent: {reason}")))?,
    };
    let marked = if header.marking == MARKING_VERSION {
        Marked::Now
    } else {
        Marked::Before
    };
    checked(key, (state, header.through, header.held, marked))
}

/// The framing of journal entries and of format-1 snapshots: `magic`, the payload's length
/// (u64, little-endian), its BLAKE3 hash (32 bytes), then the payload.
pub(super) fn frame(magic: &[u8; 7], payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(magic.len() + 8 + 32 + payload.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(blake3::hash(payload).as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The payload [`frame`] put in `bytes` with `magic`, checked whole; or why not.
pub(super) fn unframe<'a>(magic: &[u8; 7], bytes: &'a [u8]) -> Result<&'a [u8], String> {
    let header_len = magic.len() + 8 + 32;
    if bytes.len() < header_len || &bytes[..magic.len()] != magic {
        return Err("it does not start with the header it should".to_string());
    }
    let payload = &bytes[header_len..];
    check_len(u64_at(bytes, magic.len()), payload.len() as u64)?;
    if blake3::hash(payload).as_bytes() != &bytes[magic.len() + 8..header_len] {
        return Err("its checksum does not match its content".to_string());
    }
    Ok(payload)
}

/// The value bincode encoded in the whole of `payload`, or why not (a forged length cannot
/// exhaust memory: see [`decode_whole`](crate::decode::decode_whole)).
pub(super) fn decode_payload<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    crate::decode::decode_whole(payload).map_err(|error| format!("it does not decode: {error}"))
}

fn check_len(len: u64, payload_len: u64) -> Result<(), String> {
    if payload_len == len {
        Ok(())
    } else {
        Err(format!(
            "the header says {len} bytes of payload, there are {payload_len} (truncated?)"
        ))
    }
}

impl ContextStoreBuilder {
    /// Opens the store saved in `store` (empty if nothing was saved yet); [`ContextStore::save`]
    /// saves it there. A damaged snapshot is an error, and the previous one stays loadable.
    pub fn open(self, store: Arc<dyn Store>) -> Result<ContextStore, ContextError> {
        self.open_key(store, CURRENT)
    }

    /// Opens the snapshot saved before the latest one, for when the latest is damaged.
    pub fn open_previous(self, store: Arc<dyn Store>) -> Result<ContextStore, ContextError> {
        self.open_key(store, PREVIOUS)
    }

    fn open_key(self, store: Arc<dyn Store>, key: &str) -> Result<ContextStore, ContextError> {
        let snapshot = Opened::read(&*store, key)?;
        // Which the latest snapshot is, so that a save can tell whether another process saved
        // since (opening the previous one, the latest is taken as it is, even damaged: a save
        // replaces it).
        let latest = if key == CURRENT {
            id_of(snapshot.as_ref().map(Opened::head))
        } else {
            id_of(read_head(&*store, CURRENT)?.as_deref())
        };
        let saved = Saved::read(&*store, key, snapshot)?;
        let head = id_of(store.get(NAMESPACE, HEAD)?.as_deref());
        let persist = Persist {
            store,
            journal: Mutex::new(Journal {
                writer: new_writer(),
                last_seq: saved.last_seq,
                applied: saved.applied,
                reloads: 0,
                snapshot_id: latest,
                head_id: head,
                since_snapshot: saved.since_snapshot,
                snapshot_after: journal::SNAPSHOT_AFTER_BYTES,
            }),
            saving: Arc::new(Mutex::new(())),
        };
        let context = self.persist(persist).build_with(saved.state, saved.marked);
        context.replay(&saved.entries)?;
        Ok(context)
    }
}

/// What a save wrote: the snapshot's header, the entries it holds by writer, the journal's
/// bytes it folds in, and the live documents it holds.
struct Written {
    head: Vec<u8>,
    held: Held,
    folded: u64,
    n_documents: u64,
}

/// A snapshot as read, with the journal entries it does not hold, checked but not applied yet.
struct Saved {
    state: State,
    marked: Marked,
    entries: Vec<Op<'static>>,
    /// The last entry number found, or the snapshot's if it is later.
    last_seq: u64,
    /// The entries in the state once `entries` are applied.
    applied: Held,
    since_snapshot: u64,
}

impl Saved {
    /// The snapshot `key`, opened as `snapshot`, and the journal entries it does not hold.
    fn read(store: &dyn Store, key: &str, snapshot: Option<Opened>) -> Result<Saved, ContextError> {
        let (state, through, held, marked) = match snapshot {
            Some(opened) => opened.decode(key)?,
            None => (State::default(), 0, Held::new(), Marked::Now),
        };
        // Every entry the snapshot does not hold, read and checked before anything is applied.
        let mut entries = Vec::new();
        let mut last_seq = through;
        let mut applied = held.clone();
        let mut since_snapshot = 0;
        for id in journal_entries(store)? {
            last_seq = last_seq.max(id.seq);
            if holds(&held, id) {
                continue;
            }
            let entry = journal::entry_key(id);
            // An entry deleted since the listing was folded into a newer snapshot by another
            // process; this one opens without it, as that process's save found it.
            let Some(bytes) = store.get(NAMESPACE, &entry)? else {
                continue;
            };
            since_snapshot += bytes.len() as u64;
            entries.push(journal::decode(&entry, &bytes)?);
            let last = applied.entry(id.writer).or_insert(id.seq);
            *last = id.seq.max(*last);
        }
        Ok(Saved {
            state,
            marked,
            entries,
            last_seq,
            applied,
            since_snapshot,
        })
    }
}

impl ContextStore {
    /// Opens the store saved in `store` with default settings; see [`ContextStoreBuilder::open`].
    pub fn open(store: Arc<dyn Store>) -> Result<ContextStore, ContextError> {
        ContextStore::builder().open(store)
    }

    /// [`ContextStore::save`] when the store was opened from a backing store; `None`, with
    /// nothing written, for a store kept only in memory.
    pub fn save_if_backed(&self) -> Result<Option<SnapshotInfo>, ContextError> {
        match self.save() {
            Ok(info) => Ok(Some(info)),
            Err(ContextError::NoBackingStore) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Saves a snapshot to the store it was opened from (after moving the previous snapshot
    /// aside), and deletes the journal entries both snapshots hold. A store built without one
    /// has nowhere to save: [`ContextError::NoBackingStore`].
    pub fn save(&self) -> Result<SnapshotInfo, ContextError> {
        let Some(persist) = &self.shared.persist else {
            return Err(ContextError::NoBackingStore);
        };
        let _saving = persist.saving.lock();
        self.save_holding(persist)
    }

    /// [`ContextStore::save`], for a caller that holds `persist.saving`.
    fn save_holding(&self, persist: &Persist) -> Result<SnapshotInfo, ContextError> {
        let mut attempts = 0;
        let (previous, entries, saved) = loop {
            // The snapshot is moved aside first, so that the previous one is the very snapshot
            // this save checks against and replaces; a store that can copy in place (a
            // `FileStore`, by a hard link) moves none of its bytes, and only its header is read.
            let previous = if persist.store.copy(NAMESPACE, CURRENT, PREVIOUS)? {
                read_head(&*persist.store, PREVIOUS)?
            } else {
                None
            };
            let entries = journal_entries(&*persist.store)?;
            let previous_id = id_of(previous.as_deref());
            let mut foreign = false;
            let mut saved = None;
            // The payload is encoded under the journal's lock and the state's read lock (which
            // asks share and writes wait for), straight to where the store keeps it until it is
            // put in place (a `FileStore`'s temporary file), so its bytes are never held whole
            // in memory; it is read back to hash it, and put in place, with no lock held, so
            // writes go on meanwhile: their entries come after this snapshot's.
            let put = persist.store.put_with(NAMESPACE, CURRENT, &mut |out| {
                let (unsealed, payload_len) = {
                    let journal = persist.journal.lock();
                    if journal.lacks(&entries) || previous_id != journal.snapshot_id {
                        foreign = true;
                        return Err(std::io::Error::other("another process wrote to the folder"));
                    }
                    // The entries it holds, by writer: those of the writers with entries in the
                    // folder, and this store's own (written since the listing, perhaps). An
                    // entry another process writes from now on is not in the state, and no
                    // writer's last entry here is past it, so opening the snapshot applies it.
                    let held: Held = journal
                        .applied
                        .iter()
                        .filter(|&(&writer, _)| {
                            writer == journal.writer
                                || entries.iter().any(|entry| entry.writer == writer)
                        })
                        .map(|(&writer, &last)| (writer, last))
                        .collect();
                    let unsealed = header(journal.last_seq, &held, 0, &[0; 32]);
                    let state = self.shared.state.read();
                    let payload_len = write_unsealed(out, &unsealed, &state)?;
                    saved = Some(Written {
                        n_documents: state.n_live() as u64,
                        head: Vec::new(),
                        held,
                        folded: journal.since_snapshot,
                    });
                    (unsealed, payload_len)
                };
                // Hashed and sealed with no lock held.
                let sealed = seal_written(out, &unsealed, payload_len)?;
                if let Some(saved) = saved.as_mut() {
                    saved.head = sealed;
                }
                Ok(())
            });
            match (put, saved) {
                (Ok(()), Some(saved)) => break (previous, entries, saved),
                (Err(error), _) if !foreign => return Err(error.into()),
                _ => {}
            }
            attempts += 1;
            if attempts > MAX_SAVE_RELOADS {
                return Err(ContextError::SaveContended {
                    reloads: MAX_SAVE_RELOADS,
                });
            }
            // The snapshot it was moved aside as (another save may have moved another there
            // since: that one is as good, with the journal, to take in).
            let snapshot = match previous {
                Some(_) => Opened::read(&*persist.store, PREVIOUS)?,
                None => None,
            };
            self.reload(persist, snapshot)?;
        };
        persist.store.put(NAMESPACE, HEAD, &saved.head)?;
        {
            let mut journal = persist.journal.lock();
            journal.since_snapshot = journal.since_snapshot.saturating_sub(saved.folded);
            // A snapshot and its head record have the same id: the hash of the header.
            journal.snapshot_id = id_of(Some(&saved.head));
            journal.head_id = journal.snapshot_id;
        }
        // The entries the previous snapshot holds are in both now; the others stay, so that
        // the previous snapshot with the journal still gives the latest state. (Only those this
        // one holds too: a damaged previous header may name any entry.)
        let previous_held = previous.map_or_else(Held::new, |head| held_of(&head));
        for id in entries
            .into_iter()
            .filter(|&id| holds(&previous_held, id) && holds(&saved.held, id))
        {
            persist.store.delete(NAMESPACE, &journal::entry_key(id))?;
        }
        let payload_len = u64_at(&saved.head, saved.head.len() - 8 - 32);
        Ok(SnapshotInfo {
            n_bytes: saved.head.len() as u64 + payload_len,
            n_documents: saved.n_documents,
        })
    }

    /// Takes in what other processes wrote to the folder since this store last did (a snapshot
    /// one saved, or journal entries past this store's own) by reloading the folder, as a save
    /// does first; subscribers hear of each document that differs. Returns whether it
    /// reloaded; a store kept only in memory has nothing to take in. Cheap when nothing
    /// changed: it lists the folder and reads the latest snapshot's header.
    pub fn refresh(&self) -> Result<bool, ContextError> {
        let Some(persist) = &self.shared.persist else {
            return Ok(false);
        };
        let _saving = persist.saving.lock();
        let head = persist.store.get(NAMESPACE, HEAD)?;
        let entries = journal_entries(&*persist.store)?;
        let foreign = {
            let journal = persist.journal.lock();
            // The head record is rewritten by every save; a folder saved only by builds before
            // it has none, and its snapshot is compared at the next save.
            journal.lacks(&entries) || id_of(head.as_deref()) != journal.head_id
        };
        if foreign {
            let current = Opened::read(&*persist.store, CURRENT)?;
            self.reload(persist, current)?;
        }
        Ok(foreign)
    }

    /// Appends `op` to the journal when `journaled` says so and the store has one, and holds
    /// the journal until the returned guard drops: the caller applies the change meanwhile, so
    /// that changes are applied in the journal's order. Nothing is written for a store kept
    /// only in memory.
    pub(super) fn journal(
        &self,
        journaled: Journaled,
        op: &Op<'_>,
    ) -> Result<Option<JournalGuard<'_>>, ContextError> {
        let Some(persist) = self
            .shared
            .persist
            .as_ref()
            .filter(|_| journaled == Journaled::Yes)
        else {
            return Ok(None);
        };
        let bytes = journal::encode(op);
        let mut journal = persist.journal.lock();
        // Numbered by the system clock, in nanoseconds, and after every entry this store has
        // seen: a change made after another process's, on one machine, or after this store
        // took it in, is applied after it on every open, though this store may not have seen
        // the entries written since it last looked. Two writes in the same nanosecond were
        // made without seeing each other: their writers' ids order them.
        let mut id = EntryId {
            seq: next_seq(journal.last_seq)?.max(SystemClock.now_ns()),
            writer: journal.writer,
        };
        for _ in 0..MAX_CLAIMS {
            // Claimed, not overwritten: a store that drew the same id, or a stray record, may
            // hold the key.
            if persist.store.compare_and_swap(
                NAMESPACE,
                &journal::entry_key(id),
                None,
                Some(&bytes),
            )? {
                journal.applied.insert(id.writer, id.seq);
                journal.last_seq = id.seq;
                journal.since_snapshot += bytes.len() as u64;
                return Ok(Some(journal));
            }
            id.seq = next_seq(id.seq)?;
        }
        Err(ContextError::JournalContended {
            key: journal::entry_key(id),
            attempts: MAX_CLAIMS,
        })
    }

    /// Replaces the state with the one the folder holds (its snapshot `snapshot` and the journal
    /// after it), for when another process wrote there: this store's own changes are in the
    /// journal too, so the reloaded state has them, in the order every later open applies them.
    /// Subscribers hear of each document that differs.
    fn reload(&self, persist: &Persist, snapshot: Option<Opened>) -> Result<(), ContextError> {
        let mut journal = persist.journal.lock();
        let snapshot_id = id_of(snapshot.as_ref().map(Opened::head));
        let saved = Saved::read(&*persist.store, CURRENT, snapshot)?;
        let (archive, pins) = self.shared.state.read().marking_config();
        let mut builder = ContextStore::builder();
        for prefix in &archive {
            builder = builder.archive(prefix);
        }
        for key in &pins {
            builder = builder.pin(key);
        }
        let fresh = builder.build_with(saved.state, saved.marked);
        fresh.replay(&saved.entries)?;
        let fresh = std::mem::take(&mut *fresh.shared.state.write());
        let changes = {
            let mut state = self.shared.state.write();
            let changes = state.changes_to(&fresh);
            *state = fresh;
            changes
        };
        journal.last_seq = saved.last_seq.max(journal.last_seq);
        journal.applied = saved.applied;
        journal.reloads += 1;
        journal.snapshot_id = snapshot_id;
        journal.head_id = id_of(persist.store.get(NAMESPACE, HEAD)?.as_deref());
        journal.since_snapshot = saved.since_snapshot;
        drop(journal);
        for change in changes {
            self.notify(Some(change));
        }
        Ok(())
    }

    /// How many times this store has taken in the folder's state in place of its own (0 for a
    /// store kept only in memory).
    pub(super) fn reloads(&self) -> u64 {
        self.shared
            .persist
            .as_ref()
            .map_or(0, |persist| persist.journal.lock().reloads)
    }

    /// Saves a snapshot when the journal since the last one has grown past
    /// [`journal::SNAPSHOT_AFTER_BYTES`], on a thread of its own, so that the write that made
    /// it due returns without waiting for it (a second or two on a large store); in this
    /// thread if none can be started. Nothing if a save is under way: the writes after it
    /// find the journal still due. A failed save is tried again at the next write: the change
    /// that triggered it is in the journal already. Past twice the limit, in this thread
    /// (waiting for a save under way first): saves on threads have not been finishing.
    pub(super) fn save_if_journal_due(&self) {
        let Some(persist) = &self.shared.persist else {
            return;
        };
        let (due, overdue) = {
            let journal = persist.journal.lock();
            (journal.snapshot_due(), journal.snapshot_overdue())
        };
        if !due {
            return;
        }
        if overdue {
            let _ = self.save();
            return;
        }
        let Some(saving) = persist.saving.try_lock_arc() else {
            return;
        };
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("fourfold-save".to_string())
            .spawn(move || {
                if let Some(persist) = &store.shared.persist {
                    let _ = store.save_holding(persist);
                }
                drop(saving);
            });
        if spawned.is_err() {
            let _ = self.save();
        }
    }

    /// Waits for the save under way, if any.
    #[cfg(test)]
    pub(super) fn wait_for_save(&self) {
        if let Some(persist) = &self.shared.persist {
            drop(persist.saving.lock());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Freshness, Marker};
    use crate::store::MemoryStore;
    use crate::StoreError;
    use std::time::Duration;

    fn journal_len(backing: &Arc<dyn Store>) -> usize {
        journal_entries(&**backing).unwrap().len()
    }

    /// The hash of a snapshot of format 2 to 5: of the fields between its format byte and its
    /// payload's length, then of its payload.
    fn hash_fields(fields: &[u8], payload: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(fields);
        hasher.update(payload);
        hasher.finalize()
    }

    /// Hashes a snapshot of format 2 to 5 again after a test changed its bytes.
    fn reseal(bytes: &mut [u8]) {
        let header = Header::read(bytes).unwrap();
        let hash = hash_fields(&bytes[MARKING_AT..header.len_at], &bytes[header.len()..]);
        bytes[header.len_at + 8..header.len()].copy_from_slice(hash.as_bytes());
    }

    /// What opening the snapshot `bytes` says is wrong with it.
    fn corrupt_reason(bytes: &[u8]) -> String {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        backing.put(NAMESPACE, CURRENT, bytes).unwrap();
        match ContextStore::open(backing) {
            Err(ContextError::CorruptSnapshot { reason, .. }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_section_whose_text_is_not_in_its_version_is_an_error() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        store.put("docs/a.md", "# Café\n\nalpha\n").unwrap();
        store.save().unwrap();
        let saved = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        assert_eq!(&saved[..MAGIC.len()], MAGIC);
        // Past the end of the text, or inside a character (`é` is bytes 5 and 6).
        for bytes in [3..500, 6..10] {
            store
                .shared
                .state
                .write()
                .plant_section_bytes("docs/a.md", bytes);
            store.save().unwrap();
            let damaged = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
            assert!(
                corrupt_reason(&damaged).contains("lies outside its version's text"),
                "{}",
                corrupt_reason(&damaged)
            );
        }
        // Format 3, where each section has a copy of its text: a copy found nowhere in its
        // version's text (the fixture's first version of `docs/guide.md` says `wait.` in its
        // text, then in its section's copy).
        let mut v3 = include_bytes!("../../../tests/fixtures/context/format3.snapshot").to_vec();
        let said = b"and wait.";
        let copy = v3
            .windows(said.len())
            .enumerate()
            .filter(|(_, window)| window == said)
            .nth(1)
            .unwrap()
            .0;
        v3[copy + 6] = b'l';
        reseal(&mut v3);
        assert!(corrupt_reason(&v3).contains("is not in the version's"));
    }

    #[test]
    fn each_kind_of_damage_is_named_as_when_snapshots_were_read_whole() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        store.save().unwrap();
        let v5 = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        let v4 = snapshot_v4(&store.shared.state.read());
        let v3 = include_bytes!("../../../tests/fixtures/context/format3.snapshot").to_vec();
        for saved in [v5, v4, v3] {
            let header = Header::read(&saved).unwrap();
            let with_len = |mut bytes: Vec<u8>, len: usize| {
                bytes[header.len_at..header.len_at + 8]
                    .copy_from_slice(&(len as u64).to_le_bytes());
                reseal(&mut bytes);
                bytes
            };
            let payload_len = saved.len() - header.len();
            // A byte more or less than the value, its length and hash made to agree.
            let longer = with_len([saved.as_slice(), &[0]].concat(), payload_len + 1);
            assert_eq!(
                corrupt_reason(&longer),
                "it does not decode: 1 trailing bytes"
            );
            let shorter = with_len(saved[..saved.len() - 1].to_vec(), payload_len - 1);
            assert!(
                corrupt_reason(&shorter).starts_with("it does not decode: "),
                "{}",
                corrupt_reason(&shorter)
            );
            // Cut short, with its length as it was.
            assert_eq!(
                corrupt_reason(&saved[..saved.len() - 3]),
                format!(
                    "the header says {payload_len} bytes of payload, there are {} (truncated?)",
                    payload_len - 3
                )
            );
            // A byte changed: the hash says so, though what decodes may be wrong in other ways.
            for at in [
                header.len(),
                header.len() + payload_len / 2,
                saved.len() - 1,
            ] {
                let mut changed = saved.clone();
                changed[at] ^= 0x5a;
                assert_eq!(
                    corrupt_reason(&changed),
                    "its checksum does not match its content"
                );
            }
            for cut in [MAGIC.len(), MAGIC.len() + 2, header.len() - 1] {
                assert!(corrupt_reason(&saved[..cut]).contains("cut short"));
            }
        }
        assert_eq!(
            corrupt_reason(b"not a snapshot at all"),
            "it does not start with a context snapshot header"
        );
    }

    #[test]
    fn an_entry_that_names_the_last_possible_number_is_an_error_not_an_overflow() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        store.save().unwrap();
        let last = EntryId {
            seq: u64::MAX,
            writer: 7,
        };
        let stray = journal::encode(&Op::Delete {
            key: "docs/none.md".into(),
        });
        backing
            .put(NAMESPACE, &journal::entry_key(last), &stray)
            .unwrap();
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        let entries = journal_len(&backing);
        let error = store
            .put("docs/b.md", "# B\n\nThe second page.\n")
            .unwrap_err();
        assert!(
            matches!(&error, ContextError::CorruptSnapshot { key, .. } if key == "journal"),
            "{error}"
        );
        assert!(store.get("docs/b.md").is_none());
        assert_eq!(journal_len(&backing), entries);
    }

    #[test]
    fn a_snapshot_of_the_first_format_opens_and_the_journal_after_it_applies() {
        let store = ContextStore::new();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        let v1 = frame(MAGIC_V1, &payload_v3(&store.shared.state.read()));
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        backing.put(NAMESPACE, CURRENT, &v1).unwrap();
        let opened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(opened.get("docs/a.md").unwrap().version.version, 1);
        opened
            .put("docs/b.md", "# B\n\nThe second page.\n")
            .unwrap();
        let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(reopened.keys(), vec!["docs/a.md", "docs/b.md"]);
        // Its first save writes the new format, and the first one becomes the previous.
        reopened.save().unwrap();
        let saved = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        assert_eq!(&saved[..MAGIC.len()], MAGIC);
        let written = journal_entries(&*backing).unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(
            held_of(&saved),
            Held::from([(written[0].writer, written[0].seq)])
        );
        let previous = ContextStore::builder()
            .open_previous(Arc::clone(&backing))
            .unwrap();
        assert_eq!(previous.keys(), vec!["docs/a.md", "docs/b.md"]);
        let mut flipped = v1.clone();
        flipped[MAGIC_V1.len()] ^= 1;
        backing.put(NAMESPACE, CURRENT, &flipped).unwrap();
        assert!(matches!(
            ContextStore::open(Arc::clone(&backing)),
            Err(ContextError::CorruptSnapshot { .. })
        ));
    }

    /// A format-2 snapshot, which held every entry (all of writer 0) up to `through`.
    /// `state` as the payload of a snapshot of format 1, 2 or 3.
    fn payload_v3(state: &State) -> Vec<u8> {
        bincode::serde::encode_to_vec(StateV3::of(state), bincode::config::standard()).unwrap()
    }

    /// `state` as a snapshot of format 4, holding no journal entries.
    fn snapshot_v4(state: &State) -> Vec<u8> {
        let payload =
            bincode::serde::encode_to_vec(StateV4::of(state), bincode::config::standard()).unwrap();
        let mut bytes = header(0, &Held::new(), payload.len() as u64, &[0; 32]);
        bytes[..MAGIC_V4.len()].copy_from_slice(MAGIC_V4);
        bytes.extend_from_slice(&payload);
        reseal(&mut bytes);
        bytes
    }

    /// A format-4 snapshot opens as the state it saved, and its signatures, narrowed, find the
    /// copies a put makes as the saving store would.
    #[test]
    fn a_snapshot_of_the_fourth_format_opens_with_its_signatures_narrowed() {
        let page = |topic: &str| {
            format!(
                "# {topic}\n\nThe {topic} of a model is set in its configuration, which every \
                 subclass inherits, and which a field may override with arguments of its own \
                 when the model is validated or serialised.\n"
            )
        };
        let store = ContextStore::new();
        store.put("docs/a.md", &page("strictness")).unwrap();
        store.put("docs/b.md", &page("alias generator")).unwrap();
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        backing
            .put(NAMESPACE, CURRENT, &snapshot_v4(&store.shared.state.read()))
            .unwrap();
        let opened = ContextStore::open(backing).unwrap();
        for (key, expected) in [
            ("docs/a.md", Freshness::Canonical),
            ("docs/b.md", Freshness::Canonical),
        ] {
            let sections = opened.get(key).unwrap().sections;
            assert!(sections
                .iter()
                .all(|section| section.marker.freshness == expected));
        }
        for store in [&store, &opened] {
            store.put("wiki/a.md", &page("strictness")).unwrap();
        }
        let markers = |store: &ContextStore| {
            let sections = store.get("wiki/a.md").unwrap().sections;
            sections
                .into_iter()
                .map(|section| section.marker)
                .collect::<Vec<_>>()
        };
        assert_eq!(markers(&opened), markers(&store));
        assert!(markers(&opened)
            .iter()
            .all(|marker| marker.freshness == Freshness::Duplicate));
        let answer = |store: &ContextStore| store.ask("strictness configuration", 200).hits;
        assert_eq!(answer(&opened), answer(&store));
    }

    fn snapshot_v2(state: &State, through: u64) -> Vec<u8> {
        let payload = payload_v3(state);
        let mut bytes = MAGIC_V2.to_vec();
        bytes.extend_from_slice(&MARKING_VERSION.to_le_bytes());
        bytes.extend_from_slice(&through.to_le_bytes());
        let hash = hash_fields(&bytes[MARKING_AT..], &payload);
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(hash.as_bytes());
        bytes.extend_from_slice(&payload);
        bytes
    }

    #[test]
    fn a_snapshot_of_the_second_format_and_entries_without_writers_open_and_fold_in() {
        let page = |n: u64| format!("# Page {n}\n\nThe text of page {n}.\n");
        let put = |n: u64| Op::Put {
            key: format!("docs/{n}.md").into(),
            text: page(n).into(),
            source: None,
            at_ns: n,
        };
        let store = ContextStore::new();
        store.replay(&[put(1), put(2)]).unwrap();
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let v2 = snapshot_v2(&store.shared.state.read(), 2);
        backing.put(NAMESPACE, CURRENT, &v2).unwrap();
        backing.put(NAMESPACE, HEAD, &v2[..LEN_AT_V2 + 40]).unwrap();
        // Entries as the second format wrote them: numbers alone; the first two are held.
        for n in 1..=3 {
            let key = journal::entry_key(EntryId { seq: n, writer: 0 });
            assert_eq!(key, format!("journal-{n:020}"));
            backing
                .put(NAMESPACE, &key, &journal::encode(&put(n)))
                .unwrap();
        }
        let opened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(opened.keys(), vec!["docs/1.md", "docs/2.md", "docs/3.md"]);
        assert!(!opened.refresh().unwrap(), "the head is the snapshot's");
        opened.put("docs/4.md", &page(4)).unwrap();
        opened.save().unwrap();
        // The new snapshot holds the old entries by number and the new one by its writer; the
        // entries both snapshots hold are deleted.
        let (writer, last) = {
            let journal = opened.shared.persist.as_ref().unwrap().journal.lock();
            (journal.writer, journal.last_seq)
        };
        let saved = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        assert_eq!(held_of(&saved), Held::from([(0, 3), (writer, last)]));
        assert_eq!(
            journal_entries(&*backing).unwrap(),
            vec![EntryId { seq: 3, writer: 0 }, EntryId { seq: last, writer }]
        );
        let expected: Vec<String> = (1..=4).map(|n| format!("docs/{n}.md")).collect();
        for reopened in [
            ContextStore::open(Arc::clone(&backing)).unwrap(),
            ContextStore::builder()
                .open_previous(Arc::clone(&backing))
                .unwrap(),
        ] {
            assert_eq!(reopened.keys(), expected);
            assert_eq!(reopened.history("docs/3.md")[0].at_ns, 3);
        }
    }

    #[test]
    fn a_journal_grown_past_its_limit_is_folded_into_a_snapshot_by_the_next_write() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        let persist = store.shared.persist.as_ref().unwrap();
        persist.journal.lock().snapshot_after = 1_000;
        store.put("docs/a.md", "# A\n\nShort.\n").unwrap();
        assert_eq!(journal_len(&backing), 1);
        assert_eq!(backing.get(NAMESPACE, CURRENT).unwrap(), None);
        let long = format!("# B\n\n{}\n", "A longer page. ".repeat(80));
        store.put("docs/b.md", &long).unwrap();
        store.wait_for_save();
        // Past 1,000 bytes: saved; the entries stay for the previous snapshot, which does not
        // exist, so the first save deletes none.
        let saved = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        let (writer, last) = {
            let journal = persist.journal.lock();
            (journal.writer, journal.last_seq)
        };
        assert_eq!(held_of(&saved), Held::from([(writer, last)]));
        assert_eq!(persist.journal.lock().since_snapshot, 0);
        let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(reopened.keys(), vec!["docs/a.md", "docs/b.md"]);
    }

    /// A `FileStore` that notes the keys whose whole value is read or written (not those read
    /// or written as a stream), and whose streams fail once `break_at` bytes have gone through
    /// them, if set.
    struct WholeReads {
        inner: crate::store::FileStore,
        keys: Mutex<Vec<String>>,
        break_at: Mutex<Option<usize>>,
    }

    impl WholeReads {
        fn open(dir: &std::path::Path, break_at: Option<usize>) -> WholeReads {
            WholeReads {
                inner: crate::store::FileStore::open(dir).unwrap(),
                keys: Mutex::new(Vec::new()),
                break_at: Mutex::new(break_at),
            }
        }
    }

    impl Store for WholeReads {
        fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.keys.lock().push(key.to_string());
            self.inner.get(namespace, key)
        }

        fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.keys.lock().push(key.to_string());
            self.inner.put(namespace, key, value)
        }

        fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
            self.inner.delete(namespace, key)
        }

        fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
            self.inner.list(namespace)
        }

        fn compare_and_swap(
            &self,
            namespace: &str,
            key: &str,
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
        ) -> Result<bool, StoreError> {
            self.inner.compare_and_swap(namespace, key, expected, new)
        }

        fn put_with(
            &self,
            namespace: &str,
            key: &str,
            write: &mut dyn FnMut(&mut dyn ValueWriter) -> std::io::Result<()>,
        ) -> Result<(), StoreError> {
            let break_at = *self.break_at.lock();
            self.inner
                .put_with(namespace, key, &mut |out| match break_at {
                    None => write(out),
                    Some(left) => write(&mut Breaking { inner: out, left }),
                })
        }

        fn get_prefix(
            &self,
            namespace: &str,
            key: &str,
            len: usize,
        ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
            self.inner.get_prefix(namespace, key, len)
        }

        fn copy(&self, namespace: &str, from: &str, to: &str) -> Result<bool, StoreError> {
            self.inner.copy(namespace, from, to)
        }

        fn get_reader(
            &self,
            namespace: &str,
            key: &str,
        ) -> Result<Option<ValueReader>, StoreError> {
            let reader = self.inner.get_reader(namespace, key)?;
            Ok(match *self.break_at.lock() {
                None => reader,
                Some(left) => reader.map(|ValueReader { reader, len }| ValueReader {
                    reader: Box::new(Breaking {
                        inner: reader,
                        left,
                    }),
                    len,
                }),
            })
        }
    }

    impl WholeReads {
        /// The snapshots read or written whole since the last call.
        fn snapshots_whole(&self) -> Vec<String> {
            std::mem::take(&mut *self.keys.lock())
                .into_iter()
                .filter(|key| key == CURRENT || key == PREVIOUS)
                .collect()
        }
    }

    /// A store on a [`WholeReads`] in `dir` that saved one page and then put another, and the
    /// snapshot it saved.
    fn saved_then_put(dir: &std::path::Path) -> (Arc<WholeReads>, ContextStore, Vec<u8>) {
        let backing = Arc::new(WholeReads::open(dir, None));
        let store = ContextStore::open(Arc::clone(&backing) as Arc<dyn Store>).unwrap();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        store.save().unwrap();
        let first = backing.inner.get(NAMESPACE, CURRENT).unwrap().unwrap();
        store.put("docs/b.md", "# B\n\nThe second page.\n").unwrap();
        (backing, store, first)
    }

    /// The temporary files a `FileStore` in `dir` left in the context's folder.
    fn stray_temp_files(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir.join(NAMESPACE))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".tmp-"))
            .collect()
    }

    #[test]
    fn no_snapshot_is_read_or_written_whole_by_a_save_or_an_open() {
        let dir = tempfile::tempdir().unwrap();
        let (backing, store, first) = saved_then_put(dir.path());
        backing.keys.lock().clear();
        store.save().unwrap();
        assert_eq!(backing.snapshots_whole(), Vec::<String>::new());
        assert_eq!(
            backing.inner.get(NAMESPACE, PREVIOUS).unwrap().unwrap(),
            first
        );
        // The previous snapshot, with the journal, still gives the latest state.
        let previous = ContextStore::builder()
            .open_previous(Arc::clone(&backing) as Arc<dyn Store>)
            .unwrap();
        assert_eq!(previous.keys(), vec!["docs/a.md", "docs/b.md"]);
        assert_eq!(backing.snapshots_whole(), Vec::<String>::new());
        // Another process's snapshot in its place: the save takes it in, reading it as a
        // stream.
        let other =
            ContextStore::open(Arc::new(crate::store::FileStore::open(dir.path()).unwrap()))
                .unwrap();
        other.put("docs/c.md", "# C\n\nThe third page.\n").unwrap();
        other.save().unwrap();
        backing.keys.lock().clear();
        store.save().unwrap();
        assert_eq!(backing.snapshots_whole(), Vec::<String>::new());
        assert_eq!(store.reloads(), 1);
        assert_eq!(store.keys(), vec!["docs/a.md", "docs/b.md", "docs/c.md"]);
        // And so do an open and a refresh.
        other.put("docs/d.md", "# D\n\nThe fourth page.\n").unwrap();
        other.save().unwrap();
        assert!(store.refresh().unwrap());
        let reopened = ContextStore::open(Arc::clone(&backing) as Arc<dyn Store>).unwrap();
        assert_eq!(backing.snapshots_whole(), Vec::<String>::new());
        assert_eq!(store.keys(), reopened.keys());
        assert_eq!(reopened.keys().len(), 4);
        // That save moved the snapshot aside twice, the second time over its own link: no
        // temporary name is left holding a snapshot.
        assert_eq!(stray_temp_files(dir.path()), Vec::<String>::new());
    }

    /// A stream that fails once `left` bytes have gone through it.
    struct Breaking<T> {
        inner: T,
        left: usize,
    }

    impl<T> Breaking<T> {
        /// How much of `len` may go through, or the error.
        fn allow(&mut self, len: usize) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::other("the disk went away"));
            }
            Ok(len.min(self.left))
        }
    }

    impl<T: Read> Read for Breaking<T> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.allow(buf.len())?;
            let n = self.inner.read(&mut buf[..n])?;
            self.left -= n;
            Ok(n)
        }
    }

    impl<T: std::io::Write> std::io::Write for Breaking<T> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.allow(buf.len())?;
            let n = self.inner.write(&buf[..n])?;
            self.left -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    impl<T: std::io::Seek> std::io::Seek for Breaking<T> {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(to)
        }
    }

    #[test]
    fn a_header_longer_than_the_prefix_read_is_read_alone() {
        let dir = tempfile::tempdir().unwrap();
        let backing = WholeReads::open(dir.path(), None);
        // More writers than the first read's 64 KiB hold, then a payload.
        let held: Held = (0..5_000).map(|writer| (writer, 7)).collect();
        let head = header(7, &held, 3, &[9; 32]);
        assert!(head.len() > HEAD_PREFIX_BYTES);
        backing
            .inner
            .put(NAMESPACE, CURRENT, &[head.as_slice(), b"abc"].concat())
            .unwrap();
        assert_eq!(read_head(&backing, CURRENT).unwrap(), Some(head));
        assert_eq!(backing.snapshots_whole(), Vec::<String>::new());
        // Bytes with no header of format 2 to 5 are their own head, read whole.
        let foreign = vec![b'x'; HEAD_PREFIX_BYTES + 10];
        backing.inner.put(NAMESPACE, CURRENT, &foreign).unwrap();
        assert_eq!(read_head(&backing, CURRENT).unwrap(), Some(foreign));
        assert_eq!(read_head(&backing, PREVIOUS).unwrap(), None);
    }

    #[test]
    fn a_save_that_fails_part_way_leaves_the_folder_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let (backing, store, first) = saved_then_put(dir.path());
        // In the header, and in the payload (the new snapshot is longer than the first).
        for at in [10, 200, first.len()] {
            *backing.break_at.lock() = Some(at);
            match store.save() {
                Err(ContextError::Store(StoreError::Io(_))) => {}
                other => panic!("breaking at {at}: {other:?}"),
            }
            assert_eq!(
                backing.inner.get(NAMESPACE, CURRENT).unwrap().unwrap(),
                first
            );
            assert_eq!(stray_temp_files(dir.path()), Vec::<String>::new());
            // The journal still holds the put the snapshot before lacks.
            let reopened =
                ContextStore::open(Arc::new(crate::store::FileStore::open(dir.path()).unwrap()))
                    .unwrap();
            assert_eq!(reopened.keys(), vec!["docs/a.md", "docs/b.md"]);
        }
        *backing.break_at.lock() = None;
        store.save().unwrap();
        let reopened = ContextStore::open(Arc::clone(&backing) as Arc<dyn Store>).unwrap();
        assert_eq!(reopened.keys(), vec!["docs/a.md", "docs/b.md"]);
        // `docs/b.md`'s entry stays, for the snapshot before, which lacks it.
        assert_eq!(journal_entries(&*backing).unwrap().len(), 1);
    }

    #[test]
    fn a_snapshot_that_cannot_be_read_is_a_store_error_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ContextStore::open(Arc::new(crate::store::FileStore::open(dir.path()).unwrap()))
                .unwrap();
        for idx in 0..20 {
            store
                .put(
                    &format!("docs/{idx}.md"),
                    &format!("# Page {idx}\n\nSome text about page {idx}, long enough.\n"),
                )
                .unwrap();
        }
        let n_bytes = store.save().unwrap().n_bytes as usize;
        let open_breaking =
            |at| ContextStore::open(Arc::new(WholeReads::open(dir.path(), Some(at))));
        // In the header, in the payload, and on its last byte.
        for at in [3, 20, n_bytes / 2, n_bytes - 1] {
            match open_breaking(at) {
                Err(ContextError::Store(StoreError::Io(error))) => {
                    assert_eq!(error.path(), std::path::Path::new("context/snapshot"));
                    assert!(error.to_string().contains("context/snapshot"), "{error}");
                }
                Err(other) => panic!("breaking at {at}: {other}"),
                Ok(_) => panic!("breaking at {at}: opened"),
            }
        }
        let whole = open_breaking(n_bytes).unwrap();
        assert_eq!(whole.keys(), store.keys());
    }

    /// A store whose put of the snapshot says it has begun and then waits to be let go (for
    /// at most 30 s, noting whether it gave up).
    struct HeldSnapshot {
        inner: MemoryStore,
        begun: crossbeam_channel::Sender<()>,
        go: crossbeam_channel::Receiver<()>,
        gave_up: std::sync::atomic::AtomicBool,
    }

    /// A store opened on a new [`HeldSnapshot`] whose journal is due for a snapshot past
    /// 1,000 bytes, with the receiver that hears a snapshot's write begin and the sender that
    /// lets it go.
    fn open_held() -> (
        Arc<HeldSnapshot>,
        ContextStore,
        crossbeam_channel::Receiver<()>,
        crossbeam_channel::Sender<()>,
    ) {
        let (begun_tx, begun) = crossbeam_channel::unbounded();
        let (go, go_rx) = crossbeam_channel::unbounded();
        let held = Arc::new(HeldSnapshot {
            inner: MemoryStore::new(),
            begun: begun_tx,
            go: go_rx,
            gave_up: std::sync::atomic::AtomicBool::new(false),
        });
        let store = ContextStore::open(Arc::clone(&held) as Arc<dyn Store>).unwrap();
        store
            .shared
            .persist
            .as_ref()
            .unwrap()
            .journal
            .lock()
            .snapshot_after = 1_000;
        (held, store, begun, go)
    }

    impl Store for HeldSnapshot {
        fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(namespace, key)
        }

        fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
            if key == CURRENT {
                let _ = self.begun.send(());
                if self.go.recv_timeout(Duration::from_secs(30)).is_err() {
                    self.gave_up
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            self.inner.put(namespace, key, value)
        }

        fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
            self.inner.delete(namespace, key)
        }

        fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
            self.inner.list(namespace)
        }

        fn compare_and_swap(
            &self,
            namespace: &str,
            key: &str,
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
        ) -> Result<bool, StoreError> {
            self.inner.compare_and_swap(namespace, key, expected, new)
        }
    }

    #[test]
    fn the_write_that_makes_a_save_due_does_not_wait_for_it() {
        let (held, store, begun, go) = open_held();
        let long = format!("# B\n\n{}\n", "A longer page. ".repeat(80));
        store.put("docs/b.md", &long).unwrap();
        // The put returned while its save waits in the store; asks and puts go on meanwhile.
        begun.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(store.ask("longer page", 500).hits[0].key, "docs/b.md");
        store.put("docs/c.md", "# C\n\nAnother page.\n").unwrap();
        assert!(
            held.get(NAMESPACE, CURRENT).unwrap().is_none(),
            "the snapshot was written before the store let it go: the put waited for the save"
        );
        go.send(()).unwrap();
        store.wait_for_save();
        assert!(!held.gave_up.load(std::sync::atomic::Ordering::SeqCst));
        assert!(held.get(NAMESPACE, CURRENT).unwrap().is_some());
        let reopened = ContextStore::open(Arc::clone(&held) as Arc<dyn Store>).unwrap();
        assert_eq!(reopened.keys(), vec!["docs/b.md", "docs/c.md"]);
    }

    #[test]
    fn a_write_past_twice_the_limit_saves_before_it_returns() {
        let (held, store, begun, go) = open_held();
        let persist = store.shared.persist.as_ref().unwrap();
        let long = |name: &str| format!("# {name}\n\n{}\n", "A longer page. ".repeat(80));
        // Past the limit: a save on a thread, which the process ends before it writes (here,
        // the journal's count is put back as a save that never finished leaves it).
        store.put("docs/a.md", &long("A")).unwrap();
        begun.recv_timeout(Duration::from_secs(30)).unwrap();
        go.send(()).unwrap();
        store.wait_for_save();
        persist.journal.lock().since_snapshot = 1_500;
        held.inner.delete(NAMESPACE, CURRENT).unwrap();
        // Past twice the limit: this put saves before it returns. The store lets the save go
        // a moment after it begins, so a save left to a thread would not have written yet.
        let letting_go = std::thread::spawn(move || {
            begun.recv_timeout(Duration::from_secs(30)).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            go.send(()).unwrap();
        });
        store.put("docs/b.md", &long("B")).unwrap();
        assert!(
            held.get(NAMESPACE, CURRENT).unwrap().is_some(),
            "the put returned before its save wrote the snapshot"
        );
        letting_go.join().unwrap();
        assert_eq!(persist.journal.lock().since_snapshot, 0);
    }

    #[test]
    fn a_snapshot_marked_by_the_current_rules_is_not_marked_again() {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = ContextStore::open(Arc::clone(&backing)).unwrap();
        store.put("docs/a.md", "# A\n\nThe first page.\n").unwrap();
        // A marker no rule gives, so that whether the store was marked again shows.
        let planted = Marker {
            freshness: Freshness::Stale,
            reason: Some("planted".to_string()),
            copy_of: None,
        };
        store
            .shared
            .state
            .write()
            .plant_marker("docs/a.md", planted.clone());
        store.save().unwrap();
        let first_marker =
            |store: &ContextStore| store.get("docs/a.md").unwrap().sections[0].marker.clone();
        assert_eq!(
            first_marker(&ContextStore::open(Arc::clone(&backing)).unwrap()),
            planted
        );
        // A new archive folder or pin: marked again.
        let archived = ContextStore::builder()
            .archive("old/")
            .open(Arc::clone(&backing))
            .unwrap();
        assert_eq!(first_marker(&archived).freshness, Freshness::Canonical);
        // Saved with that folder, it is opened with it again unmarked: the folder is known.
        archived
            .shared
            .state
            .write()
            .plant_marker("docs/a.md", planted.clone());
        archived.save().unwrap();
        let again = ContextStore::builder()
            .archive("old/")
            .open(Arc::clone(&backing))
            .unwrap();
        assert_eq!(first_marker(&again), planted);
        assert_eq!(again.shared.state.read().archive_len(), 1);
        let pinned = ContextStore::builder()
            .pin("docs/a.md")
            .open(Arc::clone(&backing))
            .unwrap();
        assert_eq!(first_marker(&pinned).freshness, Freshness::Canonical);
        // Other marking rules: marked again.
        let mut bytes = backing.get(NAMESPACE, CURRENT).unwrap().unwrap();
        bytes[MARKING_AT..THROUGH_AT].copy_from_slice(&(MARKING_VERSION + 1).to_le_bytes());
        reseal(&mut bytes);
        backing.put(NAMESPACE, CURRENT, &bytes).unwrap();
        let remarked = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(first_marker(&remarked).freshness, Freshness::Canonical);
    }
}
