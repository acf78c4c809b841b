//! The standard OpenTelemetry environment variables, applied to a
//! [`TracerBuilder`].

use std::time::Duration;

use super::data::Value;
use super::limits::SpanLimits;
use super::sampler::Sampler;
use super::tracer::{ConfigError, TracerBuilder};
use crate::otlp::env::{self, number, Signal};
use crate::otlp::pairs;

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
        if let Some(options) = env::endpoint(Signal::Traces, &get)? {
            self.otlp = Some(options);
            self.exporter = None;
        }
        self.otlp_env = env::read(Signal::Traces, &get)?;
        self.otlp = env::certificate(Signal::Traces, &get, self.otlp.take())?;
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
