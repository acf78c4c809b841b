//! The standard OpenTelemetry environment variables, applied to a
//! [`TracerBuilder`].

use std::time::Duration;

use super::data::Value;
use super::export::{pairs, OtlpOptions};
use super::limits::SpanLimits;
use super::sampler::Sampler;
use super::tracer::{ConfigError, TracerBuilder};

/// What the `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_EXPORT_TIMEOUT` variables
/// said about the OTLP exporter, kept until it is made.
#[derive(Debug, Clone, Default)]
pub(crate) struct OtlpEnv {
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    export_timeout: Option<Duration>,
    protocol: Option<super::export::Protocol>,
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

/// A number of milliseconds, or of items, from `variable`.
fn number(variable: &'static str, value: &str, what: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| ConfigError::BadVariable {
            variable,
            value: value.to_owned(),
            reason: format!("expected {what}"),
        })
}

impl TracerBuilder {
    /// Applies the standard OpenTelemetry variables that are set:
    ///
    /// - `OTEL_SERVICE_NAME`, else a `service.name` in
    ///   `OTEL_RESOURCE_ATTRIBUTES` (`key=value` pairs split by commas,
    ///   values percent-encoded; the others become resource attributes);
    /// - `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`, `traceidratio`,
    ///   `parentbased_always_on`, `parentbased_always_off`,
    ///   `parentbased_traceidratio`) and `OTEL_TRACES_SAMPLER_ARG` (the
    ///   ratio, 0 to 1);
    /// - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` added);
    ///   `OTEL_EXPORTER_OTLP_TRACES_HEADERS` or `OTEL_EXPORTER_OTLP_HEADERS`
    ///   (like the resource attributes); `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`
    ///   or `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds per request);
    ///   `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` (`http/protobuf` or
    ///   `http/json`; unset, Cortex sends `http/json`) and
    ///   `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION` (`gzip` or `none`);
    ///   `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` (a PEM CA file trusted
    ///   for an `https://` endpoint, feature `tls`);
    /// - the batch processor's `OTEL_BSP_SCHEDULE_DELAY` (milliseconds),
    ///   `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (at
    ///   most the queue size) and `OTEL_BSP_EXPORT_TIMEOUT` (milliseconds
    ///   for one batch's export, retries included; the OTLP exporter keeps
    ///   it);
    /// - the span limits of [`SpanLimits::from_vars`] (values set in code
    ///   win over them).
    ///
    /// # Errors
    /// [`ConfigError::BadVariable`] naming the variable and the fix.
    pub fn from_env(self) -> Result<Self, ConfigError> {
        self.from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables through `get`.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let limits = SpanLimits::from_vars(&get)?;
        self.limits.get_or_insert(limits);
        if let Some(list) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for (key, value) in pairs("OTEL_RESOURCE_ATTRIBUTES", &list)? {
                if key == "service.name" {
                    self.service_name = value;
                } else {
                    self.resource.retain(|(k, _)| *k != key);
                    self.resource.push((key, Value::from(value)));
                }
            }
        }
        if let Some(name) = get("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty()) {
            self.service_name = name.trim().to_owned();
        }
        if let Some(sampler) = get("OTEL_TRACES_SAMPLER") {
            let arg = get("OTEL_TRACES_SAMPLER_ARG");
            self.sampler = sampler_from_env(sampler.trim(), arg.as_deref())?;
        }
        let endpoint = match get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(full) => Some(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", full, true)),
            None => get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| ("OTEL_EXPORTER_OTLP_ENDPOINT", base, false)),
        };
        if let Some((variable, value, full)) = endpoint {
            let options = if full {
                OtlpOptions::with_traces_url(value.trim())
            } else {
                OtlpOptions::new(value.trim())
            }
            .map_err(|e| ConfigError::BadVariable {
                variable,
                value: value.clone(),
                reason: e.to_string(),
            })?;
            self.otlp = Some(options);
            self.exporter = None;
        }
        self.otlp_env = otlp_env(&get)?;
        let certificate = [
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        ]
        .into_iter()
        .find_map(|n| get(n).map(|v| (n, v)));
        if let Some((variable, path)) = certificate {
            let bad = |reason: String| ConfigError::BadVariable {
                variable,
                value: path.clone(),
                reason,
            };
            #[cfg(feature = "tls")]
            if let Some(options) = self.otlp.take() {
                self.otlp = Some(
                    options
                        .ca_file(path.trim())
                        .map_err(|e| bad(e.to_string()))?,
                );
            }
            #[cfg(not(feature = "tls"))]
            return Err(bad(
                "a CA certificate is for https endpoints, which need Cortex's `tls` feature".into(),
            ));
        }
        let millis = |variable: &'static str| -> Result<Option<Duration>, ConfigError> {
            get(variable)
                .map(|v| {
                    number(variable, &v, "a number of milliseconds").map(Duration::from_millis)
                })
                .transpose()
        };
        let count = |variable: &'static str| -> Result<Option<usize>, ConfigError> {
            get(variable)
                .map(|v| {
                    number(variable, &v, "a whole number above 0")
                        .ok()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n > 0)
                        .ok_or(ConfigError::BadVariable {
                            variable,
                            value: v,
                            reason: "expected a whole number above 0".into(),
                        })
                })
                .transpose()
        };
        if let Some(delay) = millis("OTEL_BSP_SCHEDULE_DELAY")? {
            self.batch.delay = delay;
        }
        if let Some(queue) = count("OTEL_BSP_MAX_QUEUE_SIZE")? {
            self.batch.queue = queue;
        }
        if let Some(batch) = count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")? {
            self.batch.max_batch = batch;
        }
        self.batch.max_batch = self.batch.max_batch.min(self.batch.queue);
        if let Some(timeout) = millis("OTEL_BSP_EXPORT_TIMEOUT")? {
            self.otlp_env.export_timeout = Some(timeout);
        }
        Ok(self)
    }
}

/// The OTLP exporter's headers and request timeout from the variables
/// (the traces-only ones first).
fn otlp_env(get: &impl Fn(&str) -> Option<String>) -> Result<OtlpEnv, ConfigError> {
    let mut env = OtlpEnv::default();
    let first = |names: [&'static str; 2]| names.into_iter().find_map(|n| get(n).map(|v| (n, v)));
    if let Some((variable, list)) = first([
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ]) {
        // Checked now, so a bad header is reported here and not at `build`.
        OtlpOptions::new("http://localhost")?.headers_from(variable, &list)?;
        env.headers = pairs(variable, &list)?;
    }
    if let Some((variable, value)) = first([
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]) {
        env.protocol = Some(match value.trim() {
            "http/protobuf" => super::export::Protocol::HttpProtobuf,
            "http/json" => super::export::Protocol::HttpJson,
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
    if let Some((variable, value)) = first([
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    ]) {
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
    if let Some((variable, value)) = first([
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]) {
        env.timeout = Some(Duration::from_millis(number(
            variable,
            &value,
            "a number of milliseconds",
        )?));
    }
    Ok(env)
}

fn sampler_from_env(name: &str, arg: Option<&str>) -> Result<Sampler, ConfigError> {
    let ratio = || -> Result<f64, ConfigError> {
        match arg.map(str::trim) {
            None | Some("") => Ok(1.0),
            Some(a) => match a.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(ConfigError::BadVariable {
                    variable: "OTEL_TRACES_SAMPLER_ARG",
                    value: a.to_owned(),
                    reason: "the sampling ratio must be a number from 0 to 1".into(),
                }),
            },
        }
    };
    Ok(match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::Ratio(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => Sampler::ParentBased(Box::new(Sampler::Ratio(ratio()?))),
        other => {
            return Err(ConfigError::BadVariable {
                variable: "OTEL_TRACES_SAMPLER",
                value: other.to_owned(),
                reason: "expected always_on, always_off, traceidratio, parentbased_always_on, \
                         parentbased_always_off or parentbased_traceidratio"
                    .into(),
            })
        }
    })
}
