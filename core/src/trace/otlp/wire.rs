//! The wire types: the OTLP JSON mapping of `ExportTraceServiceRequest` for the fields fourfold
//! uses, and the trace and span ids.

use serde::{Serialize, Serializer};

/// `SPAN_KIND_INTERNAL` of the OTLP `Span.SpanKind` enum.
pub(super) const SPAN_KIND_INTERNAL: i32 = 1;
/// `SPAN_KIND_CLIENT` of the OTLP `Span.SpanKind` enum.
pub(super) const SPAN_KIND_CLIENT: i32 = 3;
/// `STATUS_CODE_ERROR` of the OTLP `Status.StatusCode` enum.
pub(super) const STATUS_CODE_ERROR: i32 = 2;

/// The marker span of a `Dropped` record, in a trace of its own. `dropped_idx` tells apart records
/// with the same count and time.
pub(super) fn dropped_span(n_events: u64, at_ns: u64, dropped_idx: u64) -> WireSpan {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"fourfold.dropped");
    hasher.update(&at_ns.to_be_bytes());
    hasher.update(&n_events.to_be_bytes());
    hasher.update(&dropped_idx.to_be_bytes());
    let hash = hasher.finalize();
    let mut span_id_bytes = [0; 8];
    span_id_bytes.copy_from_slice(&hash.as_bytes()[16..24]);
    WireSpan {
        trace_id: nonzero_hex(&hash.as_bytes()[..16]),
        span_id: span_id_hex(u64::from_be_bytes(span_id_bytes)),
        parent_span_id: String::new(),
        name: "fourfold.dropped".to_string(),
        kind: SPAN_KIND_INTERNAL,
        start_time_unix_nano: Nanos(at_ns),
        end_time_unix_nano: Nanos(at_ns),
        attributes: vec![KeyValue::int("fourfold.dropped.count", n_events)],
        events: Vec::new(),
        status: None,
    }
}

/// The trace id of a run: the first 16 bytes of the blake3 hash of its id, as lowercase hex.
pub(super) fn trace_id_hex(run_id: &str) -> String {
    nonzero_hex(&blake3::hash(run_id.as_bytes()).as_bytes()[..16])
}

/// Lowercase hex of `bytes`, with the last byte set to 1 if all are 0 (an all-zero id is invalid).
pub(super) fn nonzero_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push_str(&format!("{byte:02x}"));
    }
    if bytes.iter().all(|&byte| byte == 0) {
        hex.pop();
        hex.push('1');
    }
    hex
}

/// A span id as 16 lowercase hex digits, big-endian; 0 (invalid in OTLP) becomes `u64::MAX`.
pub(super) fn span_id_hex(span_id: u64) -> String {
    let span_id = if span_id == 0 { u64::MAX } else { span_id };
    format!("{span_id:016x}")
}

// The wire types: the OTLP JSON mapping of `ExportTraceServiceRequest`, for the fields we use.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireRequest<'a> {
    pub(super) resource_spans: [WireResourceSpans<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireResourceSpans<'a> {
    pub(super) resource: WireResource,
    pub(super) scope_spans: [WireScopeSpans<'a>; 1],
}

#[derive(Serialize)]
pub(super) struct WireResource {
    pub(super) attributes: [KeyValue; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireScopeSpans<'a> {
    pub(super) scope: WireScope,
    pub(super) spans: &'a [WireSpan],
}

#[derive(Serialize)]
pub(super) struct WireScope {
    pub(super) name: &'static str,
    pub(super) version: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireSpan {
    pub(super) trace_id: String,
    pub(super) span_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) parent_span_id: String,
    pub(super) name: String,
    pub(super) kind: i32,
    pub(super) start_time_unix_nano: Nanos,
    pub(super) end_time_unix_nano: Nanos,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) attributes: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) events: Vec<WireEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) status: Option<WireStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireEvent {
    pub(super) time_unix_nano: Nanos,
    pub(super) name: &'static str,
    pub(super) attributes: Vec<KeyValue>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct WireStatus {
    pub(super) code: i32,
    pub(super) message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct KeyValue {
    pub(super) key: &'static str,
    pub(super) value: AnyValue,
}

impl KeyValue {
    pub(super) fn string(key: &'static str, value: impl Into<String>) -> KeyValue {
        KeyValue {
            key,
            value: AnyValue::String(value.into()),
        }
    }

    /// An `int64` attribute; counts above `i64::MAX` are clamped to it.
    pub(super) fn int(key: &'static str, value: u64) -> KeyValue {
        KeyValue {
            key,
            value: AnyValue::Int(Int64(i64::try_from(value).unwrap_or(i64::MAX))),
        }
    }

    pub(super) fn bool(key: &'static str, value: bool) -> KeyValue {
        KeyValue {
            key,
            value: AnyValue::Bool(value),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) enum AnyValue {
    #[serde(rename = "stringValue")]
    String(String),
    #[serde(rename = "boolValue")]
    Bool(bool),
    #[serde(rename = "intValue")]
    Int(Int64),
    #[serde(rename = "arrayValue")]
    Array(ArrayValue),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct ArrayValue {
    pub(super) values: Vec<AnyValue>,
}

/// A `fixed64` time, written as a decimal string as the JSON mapping says for 64-bit integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Nanos(pub(super) u64);

impl Serialize for Nanos {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// An `int64`, written as a decimal string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Int64(pub(super) i64);

impl Serialize for Int64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}
