//! The trace file: an append-only sequence of checksummed, hash-chained frames.
//!
//! The format is documented in `docs/trace-format.md`. In short: an 8-byte header (`FFTRACE` and
//! the version byte 3), then frames of `length: u32 LE | crc32: u32 LE | previous frame's hash: 32
//! bytes | payload`, where the payload is a bincode [`TraceRecord`], the checksum covers the previous
//! hash and the payload, and a frame's hash is the BLAKE3 hash of all its bytes. The first frame's
//! previous hash is 32 zero bytes.
//!
//! At every [`TraceWriter::sync`] a head file beside the trace (`<trace>.head`) records how many
//! frames there are and the last frame's hash, so that [`verify`] also finds frames removed from the
//! end. A reader tolerates a torn tail (a last frame cut short by a crash) and reports it; `verify`
//! counts it as damage.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::decode::decode_whole;

use super::err::{FrameError, FrameProblem, TraceError};
use super::legacy::TraceRecordV2;
use super::TraceRecord;

/// The first bytes of every trace file this build writes: `FFTRACE` and the format version.
pub const HEADER: [u8; 8] = *b"FFTRACE\x03";

/// A trace format this build reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// Format 2: the context event without `withheld` ([`super::legacy`]).
    V2,
    /// Format 3, which this build writes to new files.
    V3,
}

impl Format {
    /// The format that a file's first bytes name: a file that does not start with `FFTRACE` is
    /// not a trace, and one of a version this build does not read is an error naming it.
    pub(super) fn of_header(path: &Path, header: &[u8]) -> Result<Format, TraceError> {
        if header.len() < HEADER.len() || header[..HEADER.len() - 1] != HEADER[..HEADER.len() - 1] {
            return Err(TraceError::NotATrace {
                path: path.to_path_buf(),
            });
        }
        match header[HEADER.len() - 1] {
            2 => Ok(Format::V2),
            3 => Ok(Format::V3),
            version => Err(TraceError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            }),
        }
    }
}

pub(super) const FRAME_HEADER_LEN: usize = 4 + 4 + 32;

/// The largest payload a frame may carry (16 MiB); a larger length field is damage.
pub const MAX_PAYLOAD_LEN: u32 = 16 << 20;

/// The hash of a frame (BLAKE3, 32 bytes).
pub type FrameHash = [u8; 32];

/// Where a trace ends: how many frames it has and the hash of the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHead {
    /// The number of whole frames.
    pub n_frames: u64,
    /// The hash of the last frame (32 zero bytes for an empty trace).
    pub last_hash: FrameHash,
}

impl TraceHead {
    /// The head of an empty trace.
    pub const EMPTY: TraceHead = TraceHead {
        n_frames: 0,
        last_hash: [0; 32],
    };

    /// The last hash as lowercase hex.
    pub fn hash_hex(&self) -> String {
        self.last_hash
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// The bytes at the end of a file that do not make a whole frame (a write cut short by a crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the partial frame starts.
    pub offset: u64,
    /// How many bytes of it there are.
    pub n_bytes: u64,
}

/// The whole frames of a trace, its head, and its torn tail if any.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceContents {
    /// Each record with the byte offset of its frame.
    pub records: Vec<(u64, TraceRecord)>,
    /// The head after the last whole frame.
    pub head: TraceHead,
    /// The bytes after the last whole frame, if a crash cut a frame short.
    pub torn_tail: Option<TornTail>,
    /// The hash of every frame, in order.
    pub(crate) frame_hashes: Vec<FrameHash>,
}

#[cfg(test)]
fn encode_record(record: &TraceRecord) -> Vec<u8> {
    let mut payload = Vec::new();
    encode_record_into(record, Format::V3, &mut payload);
    payload
}

/// Appends a bincode writer's output to a `Vec` without the `std::io::Write` detour.
struct VecWriter<'v>(&'v mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Appends the bincode encoding of `record` in `format` to `buffer`.
fn encode_record_into(record: &TraceRecord, format: Format, buffer: &mut Vec<u8>) {
    let start = buffer.len();
    let writer = VecWriter(buffer);
    let config = bincode::config::standard();
    // INVARIANT: a record is plain serde data, which bincode always encodes; should that ever
    // fail, the partial output is removed and the payload is empty.
    let encoded = match format {
        Format::V3 => bincode::serde::encode_into_writer(record, writer, config),
        Format::V2 => {
            bincode::serde::encode_into_writer(TraceRecordV2::from(record), writer, config)
        }
    };
    if encoded.is_err() {
        buffer.truncate(start);
    }
}

/// Decodes one frame's payload, written in `format`.
pub(super) fn decode_record(payload: &[u8], format: Format) -> Result<TraceRecord, String> {
    match format {
        Format::V3 => decode_whole(payload),
        Format::V2 => decode_whole::<TraceRecordV2>(payload).map(TraceRecord::from),
    }
}

pub(super) fn checksum(prev_hash: &FrameHash, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(prev_hash);
    hasher.update(payload);
    hasher.finalize()
}

/// Encodes one frame that follows a frame whose hash is `prev_hash`; returns it and its hash.
#[cfg(test)]
fn encode_frame(prev_hash: &FrameHash, payload: &[u8]) -> (Vec<u8>, FrameHash) {
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    // INVARIANT: callers keep payloads under MAX_PAYLOAD_LEN, so the length fits in a u32.
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&checksum(prev_hash, payload).to_le_bytes());
    frame.extend_from_slice(prev_hash);
    frame.extend_from_slice(payload);
    let hash = *blake3::hash(&frame).as_bytes();
    (frame, hash)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        word.copy_from_slice(slice);
    }
    u32::from_le_bytes(word)
}

/// Decodes a whole trace file's bytes. Damage before the last whole frame is an error naming the
/// frame and its offset; a partial last frame is reported as a torn tail.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<TraceContents, TraceError> {
    decode_in_format(path, bytes).map(|(contents, _)| contents)
}

/// [`decode`], and the format the file is written in.
fn decode_in_format(path: &Path, bytes: &[u8]) -> Result<(TraceContents, Format), TraceError> {
    let format = Format::of_header(path, bytes)?;
    let mut contents = TraceContents {
        records: Vec::new(),
        head: TraceHead::EMPTY,
        torn_tail: None,
        frame_hashes: Vec::new(),
    };
    let mut at = HEADER.len();
    while at < bytes.len() {
        let frame_idx = contents.head.n_frames;
        let offset = at as u64;
        let error = |problem, detail| FrameError::new(path, offset, frame_idx, problem, detail);
        let remaining = bytes.len() - at;
        if remaining < FRAME_HEADER_LEN {
            contents.torn_tail = Some(TornTail {
                offset,
                n_bytes: remaining as u64,
            });
            break;
        }
        let payload_len = read_u32(bytes, at);
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(error(
                FrameProblem::BadLength,
                Some(format!("{payload_len} bytes")),
            )
            .into());
        }
        let frame_len = FRAME_HEADER_LEN + payload_len as usize;
        if remaining < frame_len {
            contents.torn_tail = Some(TornTail {
                offset,
                n_bytes: remaining as u64,
            });
            break;
        }
        let frame = &bytes[at..at + frame_len];
        let stored_checksum = read_u32(frame, 4);
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&frame[8..FRAME_HEADER_LEN]);
        let payload = &frame[FRAME_HEADER_LEN..];
        if checksum(&prev_hash, payload) != stored_checksum {
            return Err(error(FrameProblem::Checksum, None).into());
        }
        if prev_hash != contents.head.last_hash {
            return Err(error(FrameProblem::ChainBroken, None).into());
        }
        let record = decode_record(payload, format)
            .map_err(|detail| error(FrameProblem::Undecodable, Some(detail)))?;
        let hash = *blake3::hash(frame).as_bytes();
        contents.records.push((offset, record));
        contents.frame_hashes.push(hash);
        contents.head = TraceHead {
            n_frames: frame_idx + 1,
            last_hash: hash,
        };
        at += frame_len;
    }
    Ok((contents, format))
}

/// Reads a trace file, tolerating a torn tail.
pub fn read(path: impl AsRef<Path>) -> Result<TraceContents, TraceError> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|error| TraceError::io(path, error))?;
    decode(path, &bytes)
}

/// The head file that [`TraceWriter::sync`] keeps beside `path`.
pub fn head_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".head");
    PathBuf::from(name)
}

fn write_head(path: &Path, head: &TraceHead) -> Result<(), TraceError> {
    let head_file = head_path(path);
    let temp_file = {
        let mut name = head_file.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let text = format!(
        "fourfold-trace-head 1\nframes {}\nhash {}\n",
        head.n_frames,
        head.hash_hex()
    );
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp_file)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp_file, &head_file)
    };
    write().map_err(|error| TraceError::io(&head_file, error))
}

/// Reads the head file of `path`, if there is one.
pub fn read_head(path: &Path) -> Result<Option<TraceHead>, TraceError> {
    let head_file = head_path(path);
    let text = match fs::read_to_string(&head_file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(TraceError::io(&head_file, error)),
    };
    let malformed = || {
        TraceError::io(
            &head_file,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed head file"),
        )
    };
    let mut lines = text.lines();
    if lines.next() != Some("fourfold-trace-head 1") {
        return Err(malformed());
    }
    let n_frames = lines
        .next()
        .and_then(|line| line.strip_prefix("frames "))
        .and_then(|count| count.parse().ok())
        .ok_or_else(malformed)?;
    let hex = lines
        .next()
        .and_then(|line| line.strip_prefix("hash "))
        .ok_or_else(malformed)?;
    let mut last_hash = [0u8; 32];
    if hex.len() != 64 {
        return Err(malformed());
    }
    for (byte_idx, byte) in last_hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[byte_idx * 2..byte_idx * 2 + 2], 16)
            .map_err(|_| malformed())?;
    }
    Ok(Some(TraceHead {
        n_frames,
        last_hash,
    }))
}

/// What [`verify`] found in an intact trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The head of the trace: its frame count and last hash (keep the hash elsewhere to detect
    /// later tampering with both the trace and its head file).
    pub head: TraceHead,
    /// Whether a head file was there to check the end of the trace against.
    pub head_file_checked: bool,
}

/// Checks a trace file frame by frame: checksums, the hash chain, a torn tail, and the end of the
/// trace against its head file. The first problem found is an error naming the frame and offset.
pub fn verify(path: impl AsRef<Path>) -> Result<Verified, TraceError> {
    let path = path.as_ref();
    let contents = read(path)?;
    if let Some(torn) = contents.torn_tail {
        let detail = format!("{} bytes of a partial frame", torn.n_bytes);
        return Err(FrameError::new(
            path,
            torn.offset,
            contents.head.n_frames,
            FrameProblem::Truncated,
            Some(detail),
        )
        .into());
    }
    let Some(recorded) = read_head(path)? else {
        return Ok(Verified {
            head: contents.head,
            head_file_checked: false,
        });
    };
    let n_frames = contents.head.n_frames;
    if recorded.n_frames > n_frames {
        let end = fs::metadata(path)
            .map_err(|error| TraceError::io(path, error))?
            .len();
        let detail = format!(
            "the head recorded {} frames, the file has {n_frames}",
            recorded.n_frames
        );
        return Err(
            FrameError::new(path, end, n_frames, FrameProblem::Truncated, Some(detail)).into(),
        );
    }
    if recorded.n_frames > 0 {
        let frame_idx = recorded.n_frames - 1;
        let actual = contents
            .frame_hashes
            .get(frame_idx as usize)
            .copied()
            .unwrap_or([0; 32]);
        if actual != recorded.last_hash {
            let offset = contents
                .records
                .get(frame_idx as usize)
                .map_or(0, |(offset, _)| *offset);
            return Err(
                FrameError::new(path, offset, frame_idx, FrameProblem::HeadMismatch, None).into(),
            );
        }
    }
    Ok(Verified {
        head: contents.head,
        head_file_checked: true,
    })
}

/// Appends records to a trace file.
#[derive(Debug)]
pub struct TraceWriter {
    path: PathBuf,
    file: BufWriter<File>,
    head: TraceHead,
    /// The format of the file: a new file is written in the latest, an existing one in its own.
    format: Format,
    /// The frames of the batch being appended, kept between batches so that appending allocates
    /// nothing once it has grown to the size of a batch.
    frames: Vec<u8>,
}

/// Frame buffers above this size are given back after a batch, so that one huge batch does not
/// keep its memory for the writer's lifetime.
const MAX_KEPT_FRAMES_CAPACITY: usize = 4 << 20;

impl TraceWriter {
    /// Opens `path` for appending, creating it if needed. An existing trace is checked first; a torn
    /// tail left by a crash is cut off, so new frames follow the last whole frame. A trace damaged
    /// before its end is an error, and the file is left as it is.
    ///
    /// A trace written in format 2 (before the context event's `withheld`) stays in format 2: its
    /// frames are hash-chained, so it cannot be rewritten, and the records appended to it are
    /// written without `withheld`. Start a new file to keep it.
    pub fn open(path: impl Into<PathBuf>) -> Result<TraceWriter, TraceError> {
        let path = path.into();
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|error| TraceError::io(&path, error))?;
        let length = file
            .metadata()
            .map_err(|error| TraceError::io(&path, error))?
            .len();
        let (head, format) = if length == 0 {
            file.write_all(&HEADER)
                .map_err(|error| TraceError::io(&path, error))?;
            (TraceHead::EMPTY, Format::V3)
        } else {
            let bytes = fs::read(&path).map_err(|error| TraceError::io(&path, error))?;
            let (contents, format) = decode_in_format(&path, &bytes)?;
            if let Some(torn) = contents.torn_tail {
                file.set_len(torn.offset)
                    .map_err(|error| TraceError::io(&path, error))?;
            }
            (contents.head, format)
        };
        file.seek(SeekFrom::End(0))
            .map_err(|error| TraceError::io(&path, error))?;
        Ok(TraceWriter {
            path,
            file: BufWriter::with_capacity(64 * 1024, file),
            head,
            format,
            frames: Vec::new(),
        })
    }

    /// Appends one record (buffered: see [`TraceWriter::flush`] and [`TraceWriter::sync`]).
    pub fn append(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        self.append_batch(std::slice::from_ref(record))
    }

    /// Appends records in order, encoding their frames into one buffer and handing it to the
    /// file in one write (buffered, like [`TraceWriter::append`]).
    ///
    /// A record too large for a frame is left out and reported after the others are appended.
    pub fn append_batch(&mut self, records: &[TraceRecord]) -> Result<(), TraceError> {
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        let mut head = self.head;
        let mut first_error = None;
        for record in records {
            let frame_start = frames.len();
            frames.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
            encode_record_into(record, self.format, &mut frames);
            let payload_len = frames.len() - frame_start - FRAME_HEADER_LEN;
            if payload_len > MAX_PAYLOAD_LEN as usize {
                frames.truncate(frame_start);
                let detail =
                    format!("a record of {payload_len} bytes is larger than a frame may be");
                first_error.get_or_insert_with(|| {
                    FrameError::new(
                        &self.path,
                        0,
                        head.n_frames,
                        FrameProblem::BadLength,
                        Some(detail),
                    )
                });
                continue;
            }
            let (frame_header, payload) = frames[frame_start..].split_at_mut(FRAME_HEADER_LEN);
            let crc = checksum(&head.last_hash, payload);
            // INVARIANT: the payload is at most MAX_PAYLOAD_LEN bytes, so its length fits a u32.
            frame_header[..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
            frame_header[4..8].copy_from_slice(&crc.to_le_bytes());
            frame_header[8..].copy_from_slice(&head.last_hash);
            head = TraceHead {
                n_frames: head.n_frames + 1,
                last_hash: *blake3::hash(&frames[frame_start..]).as_bytes(),
            };
        }
        let written = self.file.write_all(&frames);
        frames.clear();
        if frames.capacity() <= MAX_KEPT_FRAMES_CAPACITY {
            self.frames = frames;
        }
        written.map_err(|error| TraceError::io(&self.path, error))?;
        self.head = head;
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    /// Hands buffered frames to the operating system: they survive the process being killed.
    pub fn flush(&mut self) -> Result<(), TraceError> {
        self.file
            .flush()
            .map_err(|error| TraceError::io(&self.path, error))
    }

    /// Flushes, syncs the file to disk (it survives a power loss) and records the head file.
    pub fn sync(&mut self) -> Result<(), TraceError> {
        self.flush()?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|error| TraceError::io(&self.path, error))?;
        write_head(&self.path, &self.head)
    }

    /// The head after the last appended record.
    pub fn head(&self) -> TraceHead {
        self.head
    }

    /// The trace file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        ActionEvent, ContextEvent, CostEvent, DecisionEvent, Event, EventKind, GateEvent,
        GateEventOutcome, RuleOrigin, ServedSection,
    };
    use crate::trace::TraceReader;
    use proptest::prelude::*;

    fn event(seq: u64, kind: EventKind) -> TraceRecord {
        TraceRecord::Event(Event {
            run_id: "run-1".into(),
            agent_id: "coder".into(),
            task_id: Some("T-12".into()),
            seq,
            timestamp_ns: 1_700_000_000_000_000_000 + seq,
            span_id: Some(seq),
            parent_span_id: seq.checked_sub(1),
            kind,
        })
    }

    fn every_kind() -> Vec<TraceRecord> {
        vec![
            event(
                1,
                EventKind::Decision(DecisionEvent {
                    choice: "edit".into(),
                    rationale: "red test".into(),
                    alternatives: vec!["skip".into()],
                }),
            ),
            event(
                2,
                EventKind::Action(ActionEvent {
                    tool: "bash".into(),
                    arguments_json: "{\"cmd\":\"cargo test\"}".into(),
                    result_digest: Some("ab12".into()),
                    duration_ns: Some(1_500),
                    error: None,
                }),
            ),
            event(
                3,
                EventKind::Gate(GateEvent {
                    request_json: "{}".into(),
                    outcome: GateEventOutcome::Pending,
                    rule: Some(RuleOrigin {
                        id: "push".into(),
                        file: Some("policy.toml".into()),
                        line: Some(4),
                    }),
                    gates: vec!["human-review".into()],
                    approval_id: Some("ap-1".into()),
                    approver: None,
                    reason: "held".into(),
                }),
            ),
            event(
                4,
                EventKind::Cost(CostEvent {
                    model: "gpt-4o".into(),
                    provider: Some("openai".into()),
                    input_tokens: 1200,
                    output_tokens: 80,
                    cached_tokens: 1000,
                    reasoning_tokens: 0,
                    cost_micros: 3_450,
                    currency: "USD".into(),
                    estimated: false,
                    cache_write_tokens: 0,
                    saved_tokens: 0,
                    saved_micros: 0,
                    warning: None,
                }),
            ),
            event(
                5,
                EventKind::Context(ContextEvent {
                    query: Some("auth flow".into()),
                    sections: vec![ServedSection {
                        key: "docs/auth.md".into(),
                        section_id: "s-3".into(),
                        version: 7,
                        freshness: "canonical".into(),
                    }],
                    tokens_served: 300,
                    tokens_baseline: 9_000,
                    withheld: 2,
                }),
            ),
            TraceRecord::Dropped {
                n_events: 12,
                at_ns: 99,
            },
        ]
    }

    fn write_trace(path: &Path, records: &[TraceRecord]) -> Vec<u64> {
        let mut writer = TraceWriter::open(path).unwrap();
        for record in records {
            writer.append(record).unwrap();
        }
        writer.sync().unwrap();
        read(path)
            .unwrap()
            .records
            .iter()
            .map(|(offset, _)| *offset)
            .collect()
    }

    fn records_of(path: &Path) -> Vec<TraceRecord> {
        read(path)
            .unwrap()
            .records
            .into_iter()
            .map(|(_, record)| record)
            .collect()
    }

    #[test]
    fn every_record_kind_round_trips_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trace");
        write_trace(&path, &every_kind());
        assert_eq!(records_of(&path), every_kind());
        let verified = verify(&path).unwrap();
        assert_eq!(verified.head.n_frames, 6);
        assert!(verified.head_file_checked);
        assert_eq!(read_head(&path).unwrap(), Some(verified.head));
    }

    #[test]
    fn a_batch_writes_the_same_bytes_as_one_append_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let one_by_one = dir.path().join("one-by-one.trace");
        write_trace(&one_by_one, &every_kind());
        let batched = dir.path().join("batched.trace");
        let mut writer = TraceWriter::open(&batched).unwrap();
        writer.append_batch(&every_kind()[..2]).unwrap();
        writer.append_batch(&[]).unwrap();
        writer.append_batch(&every_kind()[2..]).unwrap();
        writer.sync().unwrap();
        assert_eq!(fs::read(&batched).unwrap(), fs::read(&one_by_one).unwrap());
        assert_eq!(verify(&batched).unwrap().head.n_frames, 6);
    }

    #[test]
    fn a_reopened_writer_appends_after_the_last_whole_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trace");
        let records = every_kind();
        write_trace(&path, &records[..3]);
        // A crash left half a frame.
        let mut bytes = fs::read(&path).unwrap();
        let whole_len = bytes.len() as u64;
        bytes.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
        fs::write(&path, &bytes).unwrap();
        let torn = read(&path).unwrap();
        assert_eq!(
            torn.torn_tail,
            Some(TornTail {
                offset: whole_len,
                n_bytes: 6
            })
        );
        assert_eq!(torn.records.len(), 3);
        write_trace(&path, &records[3..]);
        assert_eq!(records_of(&path), records);
        verify(&path).unwrap();
    }

    #[test]
    fn a_damaged_trace_is_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trace");
        let offsets = write_trace(&path, &every_kind());
        let mut bytes = fs::read(&path).unwrap();
        bytes[offsets[1] as usize + FRAME_HEADER_LEN] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let error = TraceWriter::open(&path).unwrap_err();
        assert!(
            matches!(&error, TraceError::Frame(frame) if frame.frame_idx() == 1),
            "{error}"
        );
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    /// Tampers with a written trace and checks where `verify` says the problem is.
    fn check_tamper(
        tamper: impl FnOnce(&mut Vec<u8>, &[u64]),
        problem: FrameProblem,
        frame_idx: u64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trace");
        let offsets = write_trace(&path, &every_kind());
        let mut bytes = fs::read(&path).unwrap();
        tamper(&mut bytes, &offsets);
        fs::write(&path, &bytes).unwrap();
        match verify(&path) {
            Err(TraceError::Frame(error)) => {
                assert_eq!(
                    (error.problem(), error.frame_idx()),
                    (problem, frame_idx),
                    "{error}"
                );
                assert!(error
                    .to_string()
                    .contains(&format!("at byte {}", error.offset())));
            }
            other => panic!("expected {problem:?} at frame {frame_idx}, got {other:?}"),
        }
    }

    fn frame_range(bytes: &[u8], offsets: &[u64], frame_idx: usize) -> std::ops::Range<usize> {
        let start = offsets[frame_idx] as usize;
        let end = offsets
            .get(frame_idx + 1)
            .map_or(bytes.len(), |offset| *offset as usize);
        start..end
    }

    #[test]
    fn verify_finds_flipped_dropped_swapped_and_truncated_frames() {
        // A flipped payload byte.
        check_tamper(
            |bytes, offsets| bytes[offsets[2] as usize + FRAME_HEADER_LEN + 3] ^= 1,
            FrameProblem::Checksum,
            2,
        );
        // A flipped byte with the checksum recomputed: the chain still catches it, one frame on.
        check_tamper(
            |bytes, offsets| {
                let range = frame_range(bytes, offsets, 2);
                bytes[range.start + FRAME_HEADER_LEN + 3] ^= 1;
                let mut prev_hash = [0u8; 32];
                prev_hash.copy_from_slice(&bytes[range.start + 8..range.start + FRAME_HEADER_LEN]);
                let crc = checksum(
                    &prev_hash,
                    &bytes[range.start + FRAME_HEADER_LEN..range.end],
                );
                bytes[range.start + 4..range.start + 8].copy_from_slice(&crc.to_le_bytes());
            },
            FrameProblem::ChainBroken,
            3,
        );
        // A dropped frame.
        check_tamper(
            |bytes, offsets| {
                let range = frame_range(bytes, offsets, 1);
                bytes.drain(range);
            },
            FrameProblem::ChainBroken,
            1,
        );
        // Two frames swapped.
        check_tamper(
            |bytes, offsets| {
                let first = bytes[frame_range(bytes, offsets, 1)].to_vec();
                let second = bytes[frame_range(bytes, offsets, 2)].to_vec();
                let start = offsets[1] as usize;
                bytes.splice(
                    start..start + first.len() + second.len(),
                    second.into_iter().chain(first),
                );
            },
            FrameProblem::ChainBroken,
            1,
        );
        // Cut in the middle of the last frame.
        check_tamper(
            |bytes, _| {
                bytes.truncate(bytes.len() - 5);
            },
            FrameProblem::Truncated,
            5,
        );
        // The last whole frame removed: the head file recorded six frames.
        check_tamper(
            |bytes, offsets| bytes.truncate(offsets[5] as usize),
            FrameProblem::Truncated,
            5,
        );
        // The last frame replaced by another valid frame: the head file's hash differs.
        check_tamper(
            |bytes, offsets| {
                bytes.truncate(offsets[5] as usize);
                let mut prev_hash = [0u8; 32];
                let previous = frame_range(bytes, offsets, 4);
                prev_hash.copy_from_slice(blake3::hash(&bytes[previous]).as_bytes());
                let payload = encode_record(&TraceRecord::Dropped {
                    n_events: 0,
                    at_ns: 0,
                });
                bytes.extend_from_slice(&encode_frame(&prev_hash, &payload).0);
            },
            FrameProblem::HeadMismatch,
            5,
        );
    }

    #[test]
    fn foreign_and_future_files_are_typed_errors() {
        let path = Path::new("x.trace");
        assert!(matches!(
            decode(path, b""),
            Err(TraceError::NotATrace { .. })
        ));
        assert!(matches!(
            decode(path, b"PK\x03\x04zipfile"),
            Err(TraceError::NotATrace { .. })
        ));
        assert!(matches!(
            decode(path, b"FFTRACE\x01"),
            Err(TraceError::UnsupportedVersion { version: 1, .. })
        ));
        assert!(matches!(
            decode(path, b"FFTRACE\x04"),
            Err(TraceError::UnsupportedVersion { version: 4, .. })
        ));
        assert!(matches!(
            TraceReader::new(path, &b"FFTRACE\x04"[..]),
            Err(TraceError::UnsupportedVersion { version: 4, .. })
        ));
        let mut too_long = HEADER.to_vec();
        too_long.extend_from_slice(&u32::MAX.to_le_bytes());
        too_long.extend_from_slice(&[0; 40]);
        assert!(
            matches!(decode(path, &too_long), Err(TraceError::Frame(error)) if error.problem() == FrameProblem::BadLength)
        );
    }

    /// A trace written in format 2 by the build before format 3 (commit e2f53b0): a run's span
    /// around the records of [`every_kind`] as they were then (the context event had no
    /// `withheld`), with its head file.
    const FORMAT_2_TRACE: &[u8] = include_bytes!("fixtures/trace-v2.fftrace");
    const FORMAT_2_HEAD: &[u8] = include_bytes!("fixtures/trace-v2.fftrace.head");

    /// The records of [`FORMAT_2_TRACE`], as this build reads them.
    fn format_2_records() -> Vec<TraceRecord> {
        let mut records = vec![TraceRecord::SpanStart {
            run_id: "run-1".into(),
            agent_id: "coder".into(),
            task_id: Some("T-12".into()),
            span_id: 1,
            parent_span_id: None,
            name: "coder".into(),
            kind: crate::trace::SpanKind::Run,
            at_ns: 1_700_000_000_000_000_000,
        }];
        records.extend(every_kind().into_iter().map(|mut record| {
            if let TraceRecord::Event(Event {
                kind: EventKind::Context(context),
                ..
            }) = &mut record
            {
                context.withheld = 0;
            }
            record
        }));
        records.push(TraceRecord::SpanEnd {
            run_id: "run-1".into(),
            span_id: 1,
            at_ns: 1_700_000_000_000_000_100,
            error: None,
        });
        records
    }

    fn format_2_copy(dir: &Path) -> PathBuf {
        let path = dir.join("old.trace");
        fs::write(&path, FORMAT_2_TRACE).unwrap();
        fs::write(head_path(&path), FORMAT_2_HEAD).unwrap();
        path
    }

    #[test]
    fn a_format_2_trace_reads_with_nothing_withheld() {
        assert_eq!(FORMAT_2_TRACE[..8], *b"FFTRACE\x02");
        let dir = tempfile::tempdir().unwrap();
        let path = format_2_copy(dir.path());
        let expected = format_2_records();
        assert_eq!(records_of(&path), expected);
        let streamed: Vec<TraceRecord> = TraceReader::open(&path)
            .unwrap()
            .map(|record| record.unwrap().1)
            .collect();
        assert_eq!(streamed, expected);
        assert_eq!(verify(&path).unwrap().head.n_frames, expected.len() as u64);
    }

    #[test]
    fn appending_to_a_format_2_trace_keeps_it_in_format_2() {
        let dir = tempfile::tempdir().unwrap();
        let path = format_2_copy(dir.path());
        let context = every_kind()
            .into_iter()
            .find(|record| {
                matches!(record, TraceRecord::Event(Event { kind: EventKind::Context(context), .. }) if context.withheld > 0)
            })
            .unwrap();
        let mut writer = TraceWriter::open(&path).unwrap();
        writer.append(&context).unwrap();
        writer.sync().unwrap();
        drop(writer);

        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes[..FORMAT_2_TRACE.len()], *FORMAT_2_TRACE);
        let mut expected = format_2_records();
        expected.push(format_2_records()[5].clone());
        assert_eq!(records_of(&path), expected);
        assert_eq!(verify(&path).unwrap().head.n_frames, expected.len() as u64);

        // A new file is written in format 3 and keeps what was withheld.
        let new_path = dir.path().join("new.trace");
        write_trace(&new_path, std::slice::from_ref(&context));
        assert_eq!(fs::read(&new_path).unwrap()[..8], HEADER);
        assert_eq!(records_of(&new_path), vec![context]);
    }

    fn valid_trace() -> Vec<u8> {
        let mut bytes = HEADER.to_vec();
        let mut prev_hash = [0u8; 32];
        for record in every_kind() {
            let (frame, hash) = encode_frame(&prev_hash, &encode_record(&record));
            bytes.extend_from_slice(&frame);
            prev_hash = hash;
        }
        bytes
    }

    #[test]
    fn a_payload_announcing_a_huge_string_is_an_error() {
        // A span's start or end (tags 1 and 2, in both formats) whose run id announces about
        // 5.5e18 bytes (253 says eight bytes of length follow): a proptest case like this once
        // aborted the process, asking to allocate them.
        for tag in [1, 2] {
            let payload = [
                tag, 253, 0xbc, 0x7a, 0x5f, 0x3b, 0x11, 0x2e, 0xd2, 0x4c, b'a',
            ];
            for format in [Format::V2, Format::V3] {
                let error = decode_record(&payload, format).unwrap_err();
                assert!(error.contains("LimitExceeded"), "{error}");
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..600), with_header in any::<bool>()) {
            if with_header {
                bytes.splice(0..0, HEADER);
            }
            let _ = decode(Path::new("fuzz.trace"), &bytes);
        }

        #[test]
        fn arbitrary_payloads_never_panic_in_either_format(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_record(&bytes, Format::V2);
            let _ = decode_record(&bytes, Format::V3);
        }

        #[test]
        fn an_altered_byte_of_a_format_2_trace_is_never_read_back_silently(byte_idx in 8usize..745, flip in 1u8..=255) {
            let mut altered = FORMAT_2_TRACE.to_vec();
            let byte_idx = byte_idx % altered.len();
            altered[byte_idx] ^= flip;
            if let Ok(contents) = decode(Path::new("old.trace"), &altered) {
                prop_assert!(contents.torn_tail.is_some(), "byte {} altered yet read back whole", byte_idx);
                prop_assert_eq!(
                    contents.records.iter().map(|(_, record)| record.clone()).collect::<Vec<_>>(),
                    format_2_records()[..contents.records.len()].to_vec()
                );
            }
        }

        #[test]
        fn an_altered_byte_is_never_read_back_silently(byte_idx in 0usize..2000, flip in 1u8..=255) {
            let original = valid_trace();
            let byte_idx = byte_idx % original.len();
            let mut altered = original.clone();
            altered[byte_idx] ^= flip;
            match decode(Path::new("fuzz.trace"), &altered) {
                Err(_) => {}
                Ok(contents) => {
                    // Only a length field grown past the end can read as a torn tail; then every
                    // frame before it is intact.
                    prop_assert!(contents.torn_tail.is_some(), "byte {} altered yet read back whole", byte_idx);
                    let intact = decode(Path::new("fuzz.trace"), &original).unwrap();
                    prop_assert_eq!(&contents.records[..], &intact.records[..contents.records.len()]);
                }
            }
        }

        #[test]
        fn a_cut_trace_reads_up_to_the_last_whole_frame(cut in 8usize..2000) {
            let original = valid_trace();
            let cut = cut.min(original.len());
            let contents = decode(Path::new("cut.trace"), &original[..cut]).unwrap();
            let intact = decode(Path::new("cut.trace"), &original).unwrap();
            prop_assert_eq!(&contents.records[..], &intact.records[..contents.records.len()]);
            prop_assert_eq!(contents.torn_tail.is_some(), cut != original.len() && !intact.records.iter().any(|(offset, _)| *offset as usize == cut));
        }
    }
}
