//! The OTLP/HTTP sink: spans of every process of a fleet, posted to the team's collector.
//!
//! Batches are the same `ExportTraceServiceRequest` JSON as the JSON Lines sink writes, posted to
//! `http://host:4318/v1/traces` (OTLP/HTTP with `Content-Type: application/json`) by a sender
//! thread of the sink's own, so the Tracer's writer never waits on the network. Between them is a
//! bounded queue: when the collector is slower than the agents or down, the oldest waiting
//! batches are kept and new ones are dropped and counted (the trace file still has everything,
//! and `fourfold trace export` can resend it). A failed post is retried with exponential backoff
//! when it may succeed later (connection errors, 408, 429, 500, 502, 503, 504, as the OTLP
//! specification says), and dropped and counted when it cannot (any other status). Posts carry
//! the headers of [`OtlpHttpOptions::headers`], which a config fills from the OpenTelemetry
//! environment variables ([`otlp_headers_from_env`]).
//!
//! `https://` endpoints are verified with Mozilla's root certificates (webpki-roots, built in,
//! so a container without a CA bundle still works) through rustls, or with the certificates of
//! [`OtlpHttpOptions::root_certificates`] instead (a private CA), which a config reads from
//! `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE` / `OTEL_EXPORTER_OTLP_CERTIFICATE`
//! ([`otlp_certificate_from_env`]). Verification cannot be turned off.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::{OtlpBatch, OtlpExporter};
use crate::trace::err::TraceError;
use crate::trace::sink::Sink;
use crate::trace::TraceRecord;

/// How an [`OtlpHttpSink`] posts.
#[derive(Clone, Debug)]
pub struct OtlpHttpOptions {
    /// Batches waiting to be posted before new ones are dropped.
    pub queue: usize,
    /// Attempts per batch, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each next one.
    pub backoff: Duration,
    /// The most one post may take.
    pub timeout: Duration,
    /// Headers every post carries besides `Content-Type`, such as a collector's API key; see
    /// [`otlp_headers_from_env`] for the OpenTelemetry environment variables.
    pub headers: Vec<(String, String)>,
    /// PEM certificates that an `https://` endpoint's certificate must chain to, instead of
    /// Mozilla's roots; see [`otlp_certificate_from_env`]. Unused for `http://`.
    pub root_certificates: Option<Vec<u8>>,
}

impl Default for OtlpHttpOptions {
    fn default() -> OtlpHttpOptions {
        OtlpHttpOptions {
            queue: 256,
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            root_certificates: None,
        }
    }
}

/// What an [`OtlpHttpSink`] did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtlpHttpStats {
    /// Batches the collector accepted.
    pub n_batches_sent: u64,
    /// Spans in them.
    pub n_spans_sent: u64,
    /// Posts that were retried.
    pub n_retries: u64,
    /// Batches dropped because the queue was full.
    pub n_batches_dropped: u64,
    /// Batches given up on: refused by the collector, or still failing after every attempt.
    pub n_batches_failed: u64,
}

#[derive(Default)]
struct Counters {
    n_batches_sent: AtomicU64,
    n_spans_sent: AtomicU64,
    n_retries: AtomicU64,
    n_batches_dropped: AtomicU64,
    n_batches_failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> OtlpHttpStats {
        OtlpHttpStats {
            n_batches_sent: self.n_batches_sent.load(Ordering::Relaxed),
            n_spans_sent: self.n_spans_sent.load(Ordering::Relaxed),
            n_retries: self.n_retries.load(Ordering::Relaxed),
            n_batches_dropped: self.n_batches_dropped.load(Ordering::Relaxed),
            n_batches_failed: self.n_batches_failed.load(Ordering::Relaxed),
        }
    }
}

/// Reads an [`OtlpHttpSink`]'s counters from any thread, also after the sink moved into a Tracer.
#[derive(Clone)]
pub struct OtlpHttpMonitor {
    counters: Arc<Counters>,
}

impl OtlpHttpMonitor {
    /// The counters now.
    pub fn stats(&self) -> OtlpHttpStats {
        self.counters.snapshot()
    }
}

/// A [`Sink`] that posts spans to an OTLP/HTTP collector (see the module docs).
pub struct OtlpHttpSink {
    exporter: OtlpExporter,
    queue: Option<Sender<(Vec<u8>, usize)>>,
    sender: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl OtlpHttpSink {
    /// Posts to `endpoint` (`http://localhost:4318/v1/traces`, or `https://`); batches carry
    /// `service.name = service_name`. A malformed endpoint, header or certificate is an error
    /// here, not at the first post.
    pub fn new(
        endpoint: &str,
        service_name: &str,
        options: OtlpHttpOptions,
    ) -> Result<OtlpHttpSink, TraceError> {
        let invalid = |reason: String| TraceError::Sink { reason };
        let url = url::Url::parse(endpoint)
            .map_err(|error| invalid(format!("OTLP endpoint `{endpoint}`: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "OTLP endpoint `{endpoint}`: the scheme must be http:// or https://"
            )));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = &options.root_certificates {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(
                &pem_certificates(pem).map_err(invalid)?,
            ));
        }
        let tls = tls.build();
        for (name, value) in &options.headers {
            let valid = ureq::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && ureq::http::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(invalid(format!(
                    "OTLP header `{name}`: not a valid HTTP header name and value"
                )));
            }
        }
        let (queue, batches) = bounded(options.queue.max(1));
        let counters = Arc::new(Counters::default());
        let sender_counters = Arc::clone(&counters);
        let endpoint = endpoint.to_string();
        let sender = std::thread::Builder::new()
            .name("fourfold-otlp-http".into())
            .spawn(move || send_all(&endpoint, &options, tls, &batches, &sender_counters))
            .map_err(|error| invalid(format!("cannot start the OTLP sender thread: {error}")))?;
        Ok(OtlpHttpSink {
            exporter: OtlpExporter::new(service_name),
            queue: Some(queue),
            sender: Some(sender),
            counters,
        })
    }

    /// A handle on the sink's counters.
    pub fn monitor(&self) -> OtlpHttpMonitor {
        OtlpHttpMonitor {
            counters: Arc::clone(&self.counters),
        }
    }

    fn enqueue(&mut self, batch: Option<OtlpBatch>) {
        let (Some(batch), Some(queue)) = (batch, &self.queue) else {
            return;
        };
        let n_spans = batch.n_spans();
        let mut body = Vec::new();
        // INVARIANT: writing to a Vec cannot fail, and the batch is plain serde data.
        let _ = batch.write_json_line(&mut body);
        match queue.try_send((body, n_spans)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters
                    .n_batches_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends every span not sent yet (open ones marked unfinished), waits for the queue to drain,
    /// and returns the counters.
    pub fn close(mut self) -> OtlpHttpStats {
        self.shut_down();
        self.counters.snapshot()
    }

    fn shut_down(&mut self) {
        let remaining = self.exporter.finish();
        self.enqueue(remaining);
        drop(self.queue.take());
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
    }
}

impl Sink for OtlpHttpSink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        let batch = self.exporter.push(record);
        self.enqueue(batch);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        let batch = self.exporter.take_ended();
        self.enqueue(batch);
        Ok(())
    }
}

impl Drop for OtlpHttpSink {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The sender thread: posts each batch until the queue is closed and empty.
fn send_all(
    endpoint: &str,
    options: &OtlpHttpOptions,
    tls: ureq::tls::TlsConfig,
    batches: &Receiver<(Vec<u8>, usize)>,
    counters: &Counters,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into();
    for (body, n_spans) in batches {
        let mut wait = options.backoff;
        for attempt in 1..=options.max_attempts.max(1) {
            let mut request = agent
                .post(endpoint)
                .header("Content-Type", "application/json");
            for (name, value) in &options.headers {
                request = request.header(name, value);
            }
            let outcome = request.send(&body[..]);
            let retryable = match outcome {
                Ok(response) if response.status().is_success() => {
                    counters.n_batches_sent.fetch_add(1, Ordering::Relaxed);
                    counters
                        .n_spans_sent
                        .fetch_add(n_spans as u64, Ordering::Relaxed);
                    break;
                }
                Ok(response) => matches!(
                    response.status().as_u16(),
                    408 | 429 | 500 | 502 | 503 | 504
                ),
                Err(_) => true,
            };
            if !retryable || attempt == options.max_attempts.max(1) {
                counters.n_batches_failed.fetch_add(1, Ordering::Relaxed);
                break;
            }
            counters.n_retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
            wait = wait.saturating_mul(2);
        }
    }
}

/// The headers the OpenTelemetry environment variables give OTLP exports of traces:
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, or else `OTEL_EXPORTER_OTLP_HEADERS`, each a list of
/// `key=value` pairs separated by commas, values percent-encoded (`api-key=abc%20def`). Neither
/// set gives none.
pub fn otlp_headers_from_env() -> Result<Vec<(String, String)>, TraceError> {
    for var in [
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ] {
        match std::env::var(var) {
            Ok(list) => {
                return parse_otlp_headers(&list).map_err(|reason| TraceError::Sink {
                    reason: format!("`{var}`: {reason}"),
                })
            }
            Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(TraceError::Sink {
                    reason: format!("`{var}` is not UTF-8"),
                })
            }
        }
    }
    Ok(Vec::new())
}

/// The certificate the OpenTelemetry environment variables give OTLP exports of traces to
/// verify the collector with: the PEM file named by `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`, or
/// else `OTEL_EXPORTER_OTLP_CERTIFICATE`. Neither set gives none (Mozilla's roots); a file that
/// cannot be read, or holds no certificate, is an error.
pub fn otlp_certificate_from_env() -> Result<Option<Vec<u8>>, TraceError> {
    for var in [
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ] {
        let Some(path) = std::env::var_os(var) else {
            continue;
        };
        let path = std::path::PathBuf::from(path);
        let pem = std::fs::read(&path).map_err(|error| TraceError::Sink {
            reason: format!("`{var}`: cannot read {}: {error}", path.display()),
        })?;
        pem_certificates(&pem).map_err(|reason| TraceError::Sink {
            reason: format!("`{var}` ({}): {reason}", path.display()),
        })?;
        return Ok(Some(pem));
    }
    Ok(None)
}

/// The certificates of a PEM file (other items, such as keys, are skipped); none is an error.
fn pem_certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(error) => return Err(format!("not valid PEM: {error}")),
        }
    }
    if certificates.is_empty() {
        return Err("no PEM certificate (`-----BEGIN CERTIFICATE-----`) found".to_string());
    }
    Ok(certificates)
}

/// Parses an OpenTelemetry headers list (`k1=v1,k2=v2`, values percent-encoded); blank entries
/// are skipped, and an entry without `=` or with an empty key is an error.
pub(crate) fn parse_otlp_headers(list: &str) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for entry in list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let Some((name, value)) = entry.split_once('=') else {
            return Err(format!("`{entry}` is not `key=value`"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{entry}` has no key"));
        }
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| format!("the value of `{name}` is not UTF-8 once decoded"))?;
        headers.push((name.to_string(), value.into_owned()));
    }
    Ok(headers)
}
