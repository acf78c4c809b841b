//! Where ended spans go: the [`SpanExporter`] trait, an in-memory exporter
//! for tests, and the OTLP/HTTP JSON exporter.

mod encode;
mod otlp;
mod proto;

use std::sync::Arc;

use parking_lot::Mutex;

pub use crate::otlp::{OtlpOptions, Protocol};
pub use encode::encode_otlp_json;
pub use otlp::OtlpExporter;
pub use proto::encode_otlp_protobuf;

use super::data::SpanData;

/// Why an export failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The receiver refused the batch for good (a 4xx other than 429).
    #[error("the receiver refused the spans: HTTP {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The receiver kept failing or could not be reached; retries ran out.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Any other failure of a custom exporter.
    #[error("{0}")]
    Other(String),
}

/// Receives batches of ended, sampled spans on the tracer's background
/// thread (so it may block).
pub trait SpanExporter: Send + 'static {
    /// Sends one batch.
    ///
    /// # Errors
    /// When the batch is lost; the tracer counts its spans as dropped.
    fn export(&mut self, batch: &[SpanData]) -> Result<(), ExportError>;

    /// The tracer is shutting down; everything has been exported.
    fn shutdown(&mut self) {}
}

/// Keeps exported spans in memory, for tests. Clones share the spans.
#[derive(Debug, Clone, Default)]
pub struct InMemoryExporter {
    spans: Arc<Mutex<Vec<SpanData>>>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl InMemoryExporter {
    /// Every span exported so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans.lock().clone()
    }

    /// The size of each batch received.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batches.lock().clone()
    }

    /// Forgets what was exported.
    pub fn clear(&self) {
        self.spans.lock().clear();
        self.batches.lock().clear();
    }
}

impl SpanExporter for InMemoryExporter {
    fn export(&mut self, batch: &[SpanData]) -> Result<(), ExportError> {
        self.spans.lock().extend_from_slice(batch);
        self.batches.lock().push(batch.len());
        Ok(())
    }
}
