//! OTLP/HTTP with JSON bodies: `POST {endpoint}/v1/traces`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{json, Map, Value as Json};

use super::{ExportError, SpanExporter};
use crate::trace::span::{KeyValue, SpanData, Value};
use crate::trace::tracer::ConfigError;

/// Where and how the OTLP exporter sends.
#[derive(Debug, Clone)]
pub struct OtlpOptions {
    host: String,
    port: u16,
    path: String,
    service_name: String,
    timeout: Duration,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl OtlpOptions {
    /// Send to `base` (for example `http://localhost:4318`), at
    /// `{base}/v1/traces`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when `base` is not an `http://host[:port]`
    /// URL.
    pub fn new(base: &str) -> Result<Self, ConfigError> {
        let mut options = Self::with_traces_url(base)?;
        options.path = format!("{}/v1/traces", options.path.trim_end_matches('/'));
        Ok(options)
    }

    /// Send to exactly this URL (as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// gives it).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_traces_url(url: &str) -> Result<Self, ConfigError> {
        let rest = match url.strip_prefix("http://") {
            Some(rest) => rest,
            None if url.starts_with("https://") => {
                return Err(ConfigError::Invalid(format!(
                    "{url}: https is not supported; send to an OpenTelemetry Collector \
                     over http (it forwards over TLS)"
                )))
            }
            None => {
                return Err(ConfigError::Invalid(format!(
                    "{url}: the OTLP endpoint must be an http:// URL, such as http://localhost:4318"
                )))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let bad = |why: &str| ConfigError::Invalid(format!("{url}: {why}"));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
            ),
            _ => (authority, 80),
        };
        if host.is_empty() || port == 0 {
            return Err(bad("no host or port"));
        }
        Ok(OtlpOptions {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            },
            service_name: "unknown_service".into(),
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        })
    }

    /// The `service.name` resource attribute.
    pub fn service_name(mut self, name: &str) -> Self {
        self.service_name = name.into();
        self
    }

    /// Time allowed for one request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Attempts per batch, the first included (default 5), and the backoff
    /// between them: doubling from `initial` up to `max` (default 100 ms to
    /// 5 s), or what a `Retry-After` header says, up to `max`.
    pub fn retries(mut self, attempts: u32, initial: Duration, max: Duration) -> Self {
        self.max_attempts = attempts.max(1);
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// The URL requests go to.
    pub fn url(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// Sends batches as OTLP/HTTP JSON. Retries with backoff on 429, 502, 503,
/// 504 and on connection failures; never on other answers.
#[derive(Debug)]
pub struct OtlpExporter {
    options: OtlpOptions,
}

impl OtlpExporter {
    /// An exporter with these options.
    pub fn new(options: OtlpOptions) -> Self {
        OtlpExporter { options }
    }
}

/// What one attempt gave.
enum Attempt {
    Accepted,
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Refused {
        status: u16,
        body: String,
    },
}

impl SpanExporter for OtlpExporter {
    fn export(&mut self, batch: &[SpanData]) -> Result<(), ExportError> {
        let body = encode_otlp_json(&self.options.service_name, batch);
        let mut backoff = self.options.initial_backoff;
        let mut last = String::new();
        for attempt in 1..=self.options.max_attempts {
            match self.send(body.as_bytes()) {
                Attempt::Accepted => return Ok(()),
                Attempt::Refused { status, body } => {
                    return Err(ExportError::Rejected { status, body })
                }
                Attempt::Retry { why, after } => {
                    if attempt < self.options.max_attempts {
                        let wait = after.unwrap_or(backoff).min(self.options.max_backoff);
                        tracing::debug!(target: "cortex::trace", attempt, reason = %why, ?wait, "retrying span export");
                        std::thread::sleep(wait);
                        backoff = (backoff * 2).min(self.options.max_backoff);
                    }
                    last = why;
                }
            }
        }
        Err(ExportError::GaveUp {
            attempts: self.options.max_attempts,
            last,
        })
    }
}

impl OtlpExporter {
    fn send(&self, body: &[u8]) -> Attempt {
        let o = &self.options;
        let retry = |why: String| Attempt::Retry { why, after: None };
        let addrs = match (o.host.as_str(), o.port).to_socket_addrs() {
            Ok(a) => a.collect::<Vec<_>>(),
            Err(e) => return retry(format!("cannot resolve {}: {e}", o.host)),
        };
        let Some(mut stream) = addrs
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, o.timeout).ok())
        else {
            return retry(format!("cannot connect to {}:{}", o.host, o.port));
        };
        let _ = stream.set_read_timeout(Some(o.timeout));
        let _ = stream.set_write_timeout(Some(o.timeout));
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nUser-Agent: cortex/{}\r\nConnection: close\r\n\r\n",
            o.path,
            o.host,
            o.port,
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        if let Err(e) = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
        {
            return retry(format!("sending failed: {e}"));
        }
        let mut response = Vec::new();
        // The status line and headers are all that matter; 64 KiB is plenty.
        if let Err(e) = stream.take(64 * 1024).read_to_end(&mut response) {
            if response.is_empty() {
                return retry(format!("no response: {e}"));
            }
        }
        parse_response(&response)
    }
}

fn parse_response(raw: &[u8]) -> Attempt {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status else {
        return Attempt::Retry {
            why: "the receiver's answer is not HTTP".into(),
            after: None,
        };
    };
    let retry_after = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match status {
        200..=299 => Attempt::Accepted,
        429 | 502 | 503 | 504 => Attempt::Retry {
            why: format!("HTTP {status}"),
            after: retry_after,
        },
        _ => Attempt::Refused {
            status,
            body: body.chars().take(512).collect(),
        },
    }
}

/// The OTLP/JSON body (`ExportTraceServiceRequest`) for `spans` of one
/// service: hex ids, nanosecond times as strings, integer enums.
///
/// ```
/// use cortex::trace::{encode_otlp_json, InMemoryExporter, Tracer};
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder().exporter(exporter.clone()).build();
/// tracer.start("work").end();
/// tracer.force_flush();
/// let body = encode_otlp_json("billing", &exporter.spans());
/// assert!(body.starts_with(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]}"#));
/// assert!(body.contains(r#""kind":1"#));
/// ```
pub fn encode_otlp_json(service_name: &str, spans: &[SpanData]) -> String {
    let spans: Vec<Json> = spans.iter().map(span_json).collect();
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [attribute("service.name", &Value::Str(service_name.to_owned().into()))]
            },
            "scopeSpans": [{
                "scope": { "name": "cortex", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans
            }]
        }]
    })
    .to_string()
}

fn span_json(s: &SpanData) -> Json {
    let mut m = Map::new();
    m.insert("traceId".into(), s.trace_id.to_hex().into());
    m.insert("spanId".into(), s.span_id.to_hex().into());
    if let Some(state) = &s.trace_state {
        m.insert("traceState".into(), state.to_string().into());
    }
    if let Some(parent) = s.parent_span_id {
        m.insert("parentSpanId".into(), parent.to_hex().into());
    }
    // Trace flags (sampled) plus "we know whether the parent is remote".
    let flags = 0x01 | 0x100 | if s.parent_is_remote { 0x200 } else { 0 };
    m.insert("flags".into(), flags.into());
    m.insert("name".into(), s.name.to_string().into());
    m.insert("kind".into(), s.kind.otlp().into());
    m.insert(
        "startTimeUnixNano".into(),
        s.start_unix_nanos.to_string().into(),
    );
    m.insert(
        "endTimeUnixNano".into(),
        s.end_unix_nanos.to_string().into(),
    );
    if !s.attributes.is_empty() {
        m.insert("attributes".into(), attributes(&s.attributes));
    }
    if !s.events.is_empty() {
        let events: Vec<Json> = s
            .events
            .iter()
            .map(|e| {
                let mut event = json!({
                    "timeUnixNano": e.time_unix_nanos.to_string(),
                    "name": e.name,
                    "attributes": attributes(&e.attributes),
                });
                if e.dropped_attributes_count > 0 {
                    event["droppedAttributesCount"] = e.dropped_attributes_count.into();
                }
                event
            })
            .collect();
        m.insert("events".into(), events.into());
    }
    if s.dropped_attributes_count > 0 {
        m.insert(
            "droppedAttributesCount".into(),
            s.dropped_attributes_count.into(),
        );
    }
    if s.dropped_events_count > 0 {
        m.insert("droppedEventsCount".into(), s.dropped_events_count.into());
    }
    let mut status = Map::new();
    status.insert("code".into(), s.status.otlp().into());
    if let crate::trace::Status::Error(message) = &s.status {
        status.insert("message".into(), message.to_string().into());
    }
    m.insert("status".into(), status.into());
    Json::Object(m)
}

fn attributes(kvs: &[KeyValue]) -> Json {
    // The last value set for a key wins; keys appear once.
    let mut seen: Vec<&str> = Vec::with_capacity(kvs.len());
    let mut out = Vec::with_capacity(kvs.len());
    for kv in kvs.iter().rev() {
        if !seen.contains(&kv.key.as_ref()) {
            seen.push(&kv.key);
            out.push(attribute(&kv.key, &kv.value));
        }
    }
    out.reverse();
    out.into()
}

fn attribute(key: &str, value: &Value) -> Json {
    let value = match value {
        Value::Str(s) => json!({ "stringValue": s }),
        Value::Bool(b) => json!({ "boolValue": b }),
        // int64 is a string in protobuf's JSON mapping.
        Value::I64(i) => json!({ "intValue": i.to_string() }),
        Value::F64(x) if x.is_finite() => json!({ "doubleValue": x }),
        Value::F64(x) if x.is_nan() => json!({ "doubleValue": "NaN" }),
        Value::F64(x) if *x > 0.0 => json!({ "doubleValue": "Infinity" }),
        Value::F64(_) => json!({ "doubleValue": "-Infinity" }),
    };
    json!({ "key": key, "value": value })
}
