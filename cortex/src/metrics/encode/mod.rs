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
/// protobuf format (the one that carries native histograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exposition {
    /// [`Registry::encode`](crate::metrics::Registry::encode) in this
    /// format.
    Text(Format),
    /// [`Registry::encode_protobuf`](crate::metrics::Registry::encode_protobuf).
    Protobuf,
}

/// How names beyond the classic rules (UTF-8 names, see
/// [`Registry::allow_utf8_names`](crate::metrics::Registry::allow_utf8_names))
/// are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Escaping {
    /// Every character the classic rules refuse becomes `_`
    /// (`escaping=underscores`, what a scraper that does not ask gets).
    #[default]
    Underscores,
    /// As they are, quoted in the text formats (`{"http.server.duration"}`):
    /// for a scraper that asks with `escaping=allow-utf-8`.
    AllowUtf8,
}

/// What [`negotiate_exposition`] picked for a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// The format.
    pub exposition: Exposition,
    /// How UTF-8 names are written.
    pub escaping: Escaping,
}

impl Negotiated {
    /// The `Content-Type` of the answer (with `escaping=allow-utf-8` when
    /// names go as they are, and the text format's version 1.0.0, the one
    /// that quotes them).
    pub fn content_type(&self) -> String {
        match (self.exposition, self.escaping) {
            (Exposition::Text(f), Escaping::Underscores) => f.content_type().to_owned(),
            (Exposition::Protobuf, Escaping::Underscores) => PROTOBUF_CONTENT_TYPE.to_owned(),
            (Exposition::Text(Format::PrometheusText), Escaping::AllowUtf8) => {
                "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8".to_owned()
            }
            (Exposition::Text(f), Escaping::AllowUtf8) => {
                format!("{}; escaping=allow-utf-8", f.content_type())
            }
            (Exposition::Protobuf, Escaping::AllowUtf8) => {
                format!("{PROTOBUF_CONTENT_TYPE}; escaping=allow-utf-8")
            }
        }
    }
}
