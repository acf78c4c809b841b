//! Exposition: the Prometheus text format 0.0.4 and OpenMetrics 1.0.

mod negotiate;
mod text;

pub use negotiate::negotiate;
pub(crate) use text::{push_f64 as push_f64_pub, Encoder, LabelSet, Reading};

use std::fmt;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    #[default]
    PrometheusText,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` a response in this format carries.
    ///
    /// ```
    /// use cortex::metrics::Format;
    /// assert_eq!(Format::PrometheusText.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    /// assert_eq!(
    ///     Format::OpenMetrics.content_type(),
    ///     "application/openmetrics-text; version=1.0.0; charset=utf-8"
    /// );
    /// ```
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::PrometheusText => "Prometheus text 0.0.4",
            Format::OpenMetrics => "OpenMetrics 1.0",
        })
    }
}
