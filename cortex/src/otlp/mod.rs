//! What the OTLP exporters of traces and metrics share: where and how to
//! send ([`OtlpOptions`], [`Protocol`]), the HTTP/1.1 client with its
//! deadlines and retries, TLS (feature `tls`), the standard
//! `OTEL_EXPORTER_OTLP_*` variables, the resource, and the pieces of the
//! JSON and protobuf encodings both signals use.

pub(crate) mod env;
pub(crate) mod http;
pub(crate) mod json;
mod options;
#[cfg(feature = "tls")]
mod tls;
pub(crate) mod wire;

pub(crate) use options::pairs;
pub use options::{OtlpOptions, Protocol};

use crate::trace::KeyValue;

/// The resource attributes: `service.name`, the `telemetry.sdk.*` ones,
/// then `extra` (a `service.name` among them is ignored: the tracer's
/// service name is the one).
pub(crate) fn resource(service_name: &str, extra: &[KeyValue]) -> Vec<KeyValue> {
    let mut out = vec![
        KeyValue::new("service.name", service_name.to_owned()),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.name", "cortex"),
        KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    for kv in extra {
        if !out.iter().any(|o| o.key == kv.key) {
            out.push(kv.clone());
        }
    }
    out
}
