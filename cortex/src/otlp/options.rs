//! Where and how an OTLP exporter sends (traces and metrics alike), and
//! the delivery of one body: retries, backoff, one deadline per request
//! and one for the whole export.

use std::time::{Duration, Instant};

use super::http::{self, Attempt, Target};
use crate::trace::{ConfigError, ExportError, KeyValue, Value};

/// How the OTLP exporter encodes its bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// OTLP/HTTP with JSON bodies (`http/json`; Cortex's default, readable
    /// in a capture).
    #[default]
    HttpJson,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`, the OpenTelemetry
    /// spec's default, about a third of the JSON's size).
    HttpProtobuf,
}

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpJson => "http/json",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Where and how the OTLP exporter sends.
#[derive(Debug, Clone)]
pub struct OtlpOptions {
    host: String,
    port: u16,
    path: String,
    service_name: String,
    resource: Vec<KeyValue>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    export_timeout: Duration,
    protocol: Protocol,
    gzip: bool,
    /// `Some` for an `https://` endpoint.
    #[cfg(feature = "tls")]
    tls: Option<super::tls::Tls>,
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
        Self::for_signal(base, "/v1/traces")
    }

    /// Send metrics to `base` (for example `http://localhost:4318`), at
    /// `{base}/v1/metrics`, for
    /// [`OtlpMetricsExporter`](crate::metrics::OtlpMetricsExporter).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn metrics(base: &str) -> Result<Self, ConfigError> {
        Self::for_signal(base, "/v1/metrics")
    }

    /// `base` with a signal's path (`/v1/traces`) after its own.
    pub(crate) fn for_signal(base: &str, path: &str) -> Result<Self, ConfigError> {
        let mut options = Self::with_traces_url(base)?;
        options.path = format!("{}{path}", options.path.trim_end_matches('/'));
        Ok(options)
    }

    /// Send to exactly this URL (as `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`
    /// gives it); the same as [`with_traces_url`](Self::with_traces_url).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_url(url: &str) -> Result<Self, ConfigError> {
        Self::with_traces_url(url)
    }

    /// Send to exactly this URL (as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// gives it).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_traces_url(url: &str) -> Result<Self, ConfigError> {
        let (rest, secure) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            #[cfg(feature = "tls")]
            (None, Some(rest)) => (rest, true),
            #[cfg(not(feature = "tls"))]
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(format!(
                    "{url}: https needs Cortex's `tls` feature; without it, send to an \
                     OpenTelemetry Collector over http (it forwards over TLS)"
                )))
            }
            (None, None) => {
                return Err(ConfigError::Invalid(format!(
                    "{url}: the OTLP endpoint must be an http:// or https:// URL, such as http://localhost:4318"
                )))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let bad = |why: &str| ConfigError::Invalid(format!("{url}: {why}"));
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            // An IPv6 address: `[::1]` or `[::1]:4318`.
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing `]`"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address between the brackets"));
            }
            match after {
                "" => (host, if secure { 443 } else { 80 }),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, port(p)?),
                    None => return Err(bad("expected `:port` after the IPv6 address")),
                },
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h, port(p)?),
                Some(_) => {
                    return Err(bad(
                        "an IPv6 address goes in brackets, as http://[::1]:4318",
                    ))
                }
                None => (authority, if secure { 443 } else { 80 }),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(OtlpOptions {
            host: host.to_owned(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            },
            service_name: "unknown_service".into(),
            resource: Vec::new(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            export_timeout: Duration::from_secs(30),
            protocol: Protocol::HttpJson,
            gzip: false,
            #[cfg(feature = "tls")]
            tls: if secure {
                Some(super::tls::Tls::web_pki()?)
            } else {
                None
            },
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

    /// A resource attribute besides `service.name` and the
    /// `telemetry.sdk.*` ones (`service.version`,
    /// `deployment.environment.name`...).
    pub fn resource_attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.resource.retain(|kv| kv.key != key);
        self.resource.push(KeyValue::new(key.to_owned(), value));
        self
    }

    /// A header sent with every request (an API key, say).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a name that is not an HTTP token, or a
    /// value with a line break or another control character.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ConfigError> {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(ConfigError::Invalid(format!(
                "{name:?} is not an HTTP header name"
            )));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ConfigError::Invalid(format!(
                "the value of header {name} holds a control character"
            )));
        }
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_owned(), value.trim().to_owned()));
        Ok(self)
    }

    /// The body encoding (default [`Protocol::HttpJson`]).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Trusts the CA certificates in the PEM file at `path` besides the
    /// web PKI roots, for an `https://` endpoint signed by a private CA
    /// (`OTEL_EXPORTER_OTLP_CERTIFICATE`). Feature `tls`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the file cannot be read or holds no
    /// certificate, or when the endpoint is not `https://`.
    #[cfg(feature = "tls")]
    pub fn ca_file(mut self, path: &str) -> Result<Self, ConfigError> {
        let Some(tls) = self.tls.take() else {
            return Err(ConfigError::Invalid(format!(
                "a CA file ({path}) is for an https:// endpoint; {} is http",
                self.url()
            )));
        };
        self.tls = Some(tls.with_ca_file(path)?);
        Ok(self)
    }

    /// Gzip every body (`Content-Encoding: gzip`; default off, as the
    /// spec's `OTEL_EXPORTER_OTLP_COMPRESSION`).
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// Time allowed for one request, from connecting to the last byte of
    /// the answer (default 10 s): one deadline, however slowly the receiver
    /// reads or answers.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time allowed for exporting one batch, retries and their waits
    /// included (default 30 s, as `OTEL_BSP_EXPORT_TIMEOUT`): no retry
    /// starts, and no request runs, past it.
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = timeout;
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
        #[cfg(feature = "tls")]
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";
        format!(
            "{scheme}://{}{}",
            http::authority(&self.host, self.port),
            self.path
        )
    }

    /// Applies what `OTEL_EXPORTER_OTLP_HEADERS` (or `_TRACES_HEADERS`)
    /// gives: `name=value` pairs split by commas, values percent-encoded.
    pub(crate) fn headers_from(
        mut self,
        variable: &'static str,
        list: &str,
    ) -> Result<Self, ConfigError> {
        for (name, value) in pairs(variable, list)? {
            self = self
                .header(&name, &value)
                .map_err(|e| ConfigError::BadVariable {
                    variable,
                    value: list.to_owned(),
                    reason: e.to_string(),
                })?;
        }
        Ok(self)
    }
}

/// `k=v,k2=v2` with percent-encoded values, as the OpenTelemetry variables
/// for headers and resource attributes write them.
pub(crate) fn pairs(
    variable: &'static str,
    list: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let bad = |reason: &str| ConfigError::BadVariable {
        variable,
        value: list.to_owned(),
        reason: reason.to_owned(),
    };
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| bad("each entry must be key=value, entries split by commas"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(bad("an entry has an empty key"));
        }
        let value = percent_decode(value.trim())
            .ok_or_else(|| bad("a value has a bad percent-encoding (like %ZZ) or is not UTF-8"))?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl OtlpOptions {
    /// The resource every batch is sent with.
    pub(crate) fn resource_attributes(&self) -> Vec<KeyValue> {
        super::resource(&self.service_name, &self.resource)
    }

    /// The body encoding chosen.
    pub(crate) fn body_protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sends one encoded body (gzipped if asked), retrying with backoff on
    /// 429, 502, 503, 504 and connection failures, never on other answers;
    /// every request under [`timeout`](Self::timeout), all of them under
    /// [`export_timeout`](Self::export_timeout). `what` names the signal in
    /// log events.
    pub(crate) fn deliver(&self, body: Vec<u8>, what: &'static str) -> Result<(), ExportError> {
        let o = self;
        let content_type = match o.protocol {
            Protocol::HttpJson => "application/json",
            Protocol::HttpProtobuf => "application/x-protobuf",
        };
        let body = if o.gzip { gzip(&body) } else { body };
        let until = Instant::now() + o.export_timeout;
        let target = Target {
            host: &o.host,
            port: o.port,
            path: &o.path,
            headers: &o.headers,
            content_type,
            content_encoding: o.gzip.then_some("gzip"),
            #[cfg(feature = "tls")]
            tls: o.tls.as_ref().map(|t| &t.config),
        };
        let mut backoff = o.initial_backoff;
        let mut last = String::new();
        let mut attempts = 0;
        while attempts < o.max_attempts {
            attempts += 1;
            let deadline = (Instant::now() + o.timeout).min(until);
            match http::post(&target, &body, deadline) {
                Attempt::Accepted => return Ok(()),
                Attempt::Refused { status, body } => {
                    return Err(ExportError::Rejected { status, body })
                }
                Attempt::Retry { why, after } => {
                    last = why;
                    let wait = after.unwrap_or(backoff).min(o.max_backoff);
                    // No retry that could not finish before the deadline.
                    if attempts >= o.max_attempts || Instant::now() + wait >= until {
                        break;
                    }
                    tracing::debug!(target: "cortex::otlp", signal = what, attempt = attempts, reason = %last, ?wait, "retrying an OTLP export");
                    std::thread::sleep(wait);
                    backoff = (backoff * 2).min(o.max_backoff);
                }
            }
        }
        Err(ExportError::GaveUp { attempts, last })
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}
