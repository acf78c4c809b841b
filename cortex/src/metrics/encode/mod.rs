//! Exposition: the Prometheus text format 0.0.4, OpenMetrics 1.0 and the
//! Prometheus protobuf format.

mod negotiate;
pub(crate) mod protobuf;
mod text;

pub use negotiate::{negotiate, negotiate_exposition};
pub use protobuf::PROTOBUF_CONTENT_TYPE;
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

/// Any exposition a scrape can ask for: a text format, or the Prometheus
/// protobuf format (the one that carries native histograms), as
/// [`negotiate_exposition`] picks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exposition {
    /// [`Registry::encode`](crate::metrics::Registry::encode) in this
    /// format.
    Text(Format),
    /// [`Registry::encode_protobuf`](crate::metrics::Registry::encode_protobuf).
    Protobuf,
}

impl Exposition {
    /// The `Content-Type` a response in this exposition carries.
    pub const fn content_type(self) -> &'static str {
        match self {
            Exposition::Text(format) => format.content_type(),
            Exposition::Protobuf => PROTOBUF_CONTENT_TYPE,
        }
    }
}
