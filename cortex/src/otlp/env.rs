//! The standard `OTEL_EXPORTER_OTLP_*` variables of one signal: the
//! signal's own (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`) before the general
//! one (`OTEL_EXPORTER_OTLP_HEADERS`), as the OpenTelemetry spec orders
//! them.

use std::time::Duration;

use super::{pairs, OtlpOptions, Protocol};
use crate::trace::ConfigError;

/// Which signal an exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

/// A setting with a variable of its own per signal.
#[derive(Debug, Clone, Copy)]
enum Setting {
    Endpoint,
    Headers,
    Protocol,
    Compression,
    Timeout,
    Certificate,
}

impl Signal {
    /// The path added to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The signal's variable, then the general one.
    fn names(self, setting: Setting) -> [&'static str; 2] {
        use Setting::*;
        match (self, setting) {
            (Signal::Traces, Endpoint) => [
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ],
            (Signal::Traces, Headers) => [
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ],
            (Signal::Traces, Protocol) => [
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
            (Signal::Traces, Compression) => [
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ],
            (Signal::Traces, Timeout) => [
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
            (Signal::Traces, Certificate) => [
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ],
            (Signal::Metrics, Endpoint) => [
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ],
            (Signal::Metrics, Headers) => [
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ],
            (Signal::Metrics, Protocol) => [
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
            (Signal::Metrics, Compression) => [
                "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ],
            (Signal::Metrics, Timeout) => [
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
            (Signal::Metrics, Certificate) => [
                "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ],
        }
    }
}

/// What the variables said about an exporter, kept until it is made (the
/// endpoint may come from code).
#[derive(Debug, Clone, Default)]
pub(crate) struct OtlpEnv {
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    pub(crate) export_timeout: Option<Duration>,
    protocol: Option<Protocol>,
    gzip: Option<bool>,
}

impl OtlpEnv {
    pub(crate) fn apply(&self, mut options: OtlpOptions) -> OtlpOptions {
        for (name, value) in &self.headers {
            // Checked when read.
            if let Ok(o) = options.clone().header(name, value) {
                options = o;
            }
        }
        if let Some(t) = self.timeout {
            options = options.timeout(t);
        }
        if let Some(t) = self.export_timeout {
            options = options.export_timeout(t);
        }
        if let Some(p) = self.protocol {
            options = options.protocol(p);
        }
        if let Some(g) = self.gzip {
            options = options.gzip(g);
        }
        options
    }
}

/// A number from `variable`.
pub(crate) fn number(variable: &'static str, value: &str, what: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| ConfigError::BadVariable {
            variable,
            value: value.to_owned(),
            reason: format!("expected {what}"),
        })
}

fn first(
    get: &impl Fn(&str) -> Option<String>,
    names: [&'static str; 2],
) -> Option<(&'static str, String)> {
    names.into_iter().find_map(|n| get(n).map(|v| (n, v)))
}

/// The endpoint the variables give `signal`: its own variable used as is,
/// or the general one with the signal's path added.
pub(crate) fn endpoint(
    signal: Signal,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<OtlpOptions>, ConfigError> {
    let [own, general] = signal.names(Setting::Endpoint);
    let (variable, value, full) = match (get(own), get(general)) {
        (Some(v), _) => (own, v, true),
        (None, Some(v)) => (general, v, false),
        (None, None) => return Ok(None),
    };
    let options = if full {
        OtlpOptions::with_url(value.trim())
    } else {
        OtlpOptions::for_signal(value.trim(), signal.path())
    };
    options.map(Some).map_err(|e| ConfigError::BadVariable {
        variable,
        value,
        reason: e.to_string(),
    })
}

/// Applies the certificate variable to `options` (an `https://` endpoint
/// signed by a private CA).
pub(crate) fn certificate(
    signal: Signal,
    get: &impl Fn(&str) -> Option<String>,
    options: Option<OtlpOptions>,
) -> Result<Option<OtlpOptions>, ConfigError> {
    let Some((variable, path)) = first(get, signal.names(Setting::Certificate)) else {
        return Ok(options);
    };
    let bad = |reason: String| ConfigError::BadVariable {
        variable,
        value: path.clone(),
        reason,
    };
    #[cfg(feature = "tls")]
    {
        options
            .map(|o| o.ca_file(path.trim()).map_err(|e| bad(e.to_string())))
            .transpose()
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = options;
        Err(bad(
            "a CA certificate is for https endpoints, which need Cortex's `tls` feature".into(),
        ))
    }
}

/// The headers, protocol, compression and request timeout the variables
/// give `signal`.
pub(crate) fn read(
    signal: Signal,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<OtlpEnv, ConfigError> {
    let mut env = OtlpEnv::default();
    if let Some((variable, list)) = first(get, signal.names(Setting::Headers)) {
        // Checked now, so a bad header is reported here and not later.
        OtlpOptions::new("http://localhost")?.headers_from(variable, &list)?;
        env.headers = pairs(variable, &list)?;
    }
    if let Some((variable, value)) = first(get, signal.names(Setting::Protocol)) {
        env.protocol = Some(match value.trim() {
            "http/protobuf" => Protocol::HttpProtobuf,
            "http/json" => Protocol::HttpJson,
            other => {
                return Err(ConfigError::BadVariable {
                    variable,
                    value: other.to_owned(),
                    reason: "expected http/protobuf or http/json (OTLP over gRPC is not \
                             supported: send http/protobuf to the collector's port 4318)"
                        .into(),
                })
            }
        });
    }
    if let Some((variable, value)) = first(get, signal.names(Setting::Compression)) {
        env.gzip = Some(match value.trim() {
            "gzip" => true,
            "none" | "" => false,
            other => {
                return Err(ConfigError::BadVariable {
                    variable,
                    value: other.to_owned(),
                    reason: "expected gzip or none".into(),
                })
            }
        });
    }
    if let Some((variable, value)) = first(get, signal.names(Setting::Timeout)) {
        env.timeout = Some(Duration::from_millis(number(
            variable,
            &value,
            "a number of milliseconds",
        )?));
    }
    Ok(env)
}
