//! The span exporter over OTLP/HTTP: `POST {endpoint}/v1/traces`.

use super::encode::encode;
use super::{ExportError, SpanExporter};
use crate::otlp::{OtlpOptions, Protocol};
use crate::trace::data::SpanData;

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

impl SpanExporter for OtlpExporter {
    fn export(&mut self, batch: &[SpanData]) -> Result<(), ExportError> {
        let o = &self.options;
        let resource = o.resource_attributes();
        let body = match o.body_protocol() {
            Protocol::HttpJson => encode(&resource, batch).into_bytes(),
            Protocol::HttpProtobuf => super::proto::encode(&resource, batch),
        };
        o.deliver(body, "traces")
    }
}
