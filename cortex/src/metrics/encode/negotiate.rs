//! Picking an exposition format from an HTTP `Accept` header.

use super::{Escaping, Exposition, Format, Negotiated};

/// Picks the exposition format for an HTTP `Accept` header value.
///
/// Media ranges are weighed by their `q` parameter (default 1; entries with a
/// malformed `q` are ignored, `q=0` means "not acceptable"). OpenMetrics is
/// chosen for `application/openmetrics-text` (version `1.0.0`, `0.0.1` or
/// none); the text format for `text/plain` (version `0.0.4` or none), `*/*`
/// and `text/*`. On a tie the text format wins, as it is the one every
/// scraper reads. With no header, or nothing acceptable, the text format is
/// the answer, as Prometheus client libraries do.
///
/// ```
/// use cortex::metrics::{negotiate, Format};
///
/// // What Prometheus 2.x sends by default.
/// let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(negotiate(Some(prom)), Format::OpenMetrics);
/// assert_eq!(negotiate(Some("text/plain;version=0.0.4")), Format::PrometheusText);
/// assert_eq!(negotiate(None), Format::PrometheusText);
/// ```
pub fn negotiate(accept: Option<&str>) -> Format {
    let w = weigh(accept);
    if w.open_metrics.q > w.text.q {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    }
}

/// [`negotiate`], with the protobuf exposition among the choices, and how
/// UTF-8 names are written. Protobuf wins when
/// `application/vnd.google.protobuf` with
/// `proto=io.prometheus.client.MetricFamily` and `encoding=delimited` is
/// weighed above both text formats, as Prometheus sends it when native
/// histograms are enabled; names go as they are when the chosen media range
/// says `escaping=allow-utf-8` (Prometheus 3 does; for `text/plain` it also
/// asks for `version=1.0.0`, the version that quotes them), else escaped to
/// underscores. The admin `/metrics` endpoint answers this way.
///
/// ```
/// use cortex::metrics::{negotiate_exposition, Escaping, Exposition, Format};
///
/// // What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
/// let prom = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
/// assert_eq!(negotiate_exposition(Some(prom)).exposition, Exposition::Protobuf);
/// // What Prometheus 3 sends by default.
/// let prom3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// let n = negotiate_exposition(Some(prom3));
/// assert_eq!((n.exposition, n.escaping), (Exposition::Text(Format::OpenMetrics), Escaping::AllowUtf8));
/// assert_eq!(negotiate_exposition(None).escaping, Escaping::Underscores);
/// ```
pub fn negotiate_exposition(accept: Option<&str>) -> Negotiated {
    let w = weigh(accept);
    let (exposition, best) = if w.protobuf.q > w.text.q && w.protobuf.q > w.open_metrics.q {
        (Exposition::Protobuf, w.protobuf)
    } else if w.open_metrics.q > w.text.q {
        (Exposition::Text(Format::OpenMetrics), w.open_metrics)
    } else {
        (Exposition::Text(Format::PrometheusText), w.text)
    };
    Negotiated {
        exposition,
        escaping: if best.utf8 {
            Escaping::AllowUtf8
        } else {
            Escaping::Underscores
        },
    }
}

/// The best weight a format got, and whether that media range allowed
/// UTF-8 names.
#[derive(Default, Clone, Copy)]
struct Best {
    q: u16,
    utf8: bool,
}

impl Best {
    fn offer(&mut self, q: u16, utf8: bool) {
        if q > self.q || (q == self.q && utf8 && q > 0) {
            *self = Best { q, utf8 };
        }
    }
}

/// The best `q` (in thousandths) the header gives each format.
#[derive(Default)]
struct Weights {
    text: Best,
    open_metrics: Best,
    protobuf: Best,
}

fn weigh(accept: Option<&str>) -> Weights {
    let mut w = Weights::default();
    let Some(accept) = accept else {
        return w;
    };
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let mut q = 1000u16;
        let mut version: Option<&str> = None;
        let (mut proto, mut encoding, mut escaping) = (None, None, None);
        let mut valid = true;
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let k = k.trim();
            let v = v.trim().trim_matches('"');
            if k.eq_ignore_ascii_case("q") {
                match crate::util::parse_qvalue(v) {
                    Some(parsed) => q = parsed,
                    None => valid = false,
                }
            } else if k.eq_ignore_ascii_case("version") {
                version = Some(v);
            } else if k.eq_ignore_ascii_case("proto") {
                proto = Some(v);
            } else if k.eq_ignore_ascii_case("encoding") {
                encoding = Some(v);
            } else if k.eq_ignore_ascii_case("escaping") {
                escaping = Some(v);
            }
        }
        if !valid {
            continue;
        }
        let utf8 = escaping == Some("allow-utf-8");
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            if matches!(version, None | Some("1.0.0") | Some("0.0.1")) {
                w.open_metrics.offer(q, utf8);
            }
        } else if media.eq_ignore_ascii_case("text/plain") {
            match version {
                None | Some("0.0.4") => w.text.offer(q, false),
                // Version 1.0.0 is the one that quotes UTF-8 names.
                Some("1.0.0") => w.text.offer(q, utf8),
                _ => {}
            }
        } else if media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
            if proto == Some("io.prometheus.client.MetricFamily") && encoding == Some("delimited") {
                w.protobuf.offer(q, utf8);
            }
        } else if media == "*/*" || media.eq_ignore_ascii_case("text/*") {
            w.text.offer(q, false);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values() {
        assert_eq!(crate::util::parse_qvalue("0"), Some(0));
        assert_eq!(crate::util::parse_qvalue("0.5"), Some(500));
        assert_eq!(crate::util::parse_qvalue("0.125"), Some(125));
        assert_eq!(crate::util::parse_qvalue("1.000"), Some(1000));
        assert_eq!(crate::util::parse_qvalue("1.5"), None);
        assert_eq!(crate::util::parse_qvalue("0.1234"), None);
        assert_eq!(crate::util::parse_qvalue("x"), None);
    }

    #[test]
    fn choices() {
        use Format::*;
        assert_eq!(negotiate(Some("application/openmetrics-text")), OpenMetrics);
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=2.0.0")),
            PrometheusText
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            PrometheusText
        );
        assert_eq!(
            negotiate(Some("text/plain;q=0, application/openmetrics-text;q=0.1")),
            OpenMetrics
        );
        // A malformed q drops that entry only.
        assert_eq!(
            negotiate(Some("text/plain;q=abc, application/openmetrics-text;q=0.3")),
            OpenMetrics
        );
        assert_eq!(negotiate(Some("application/json")), PrometheusText);
        assert_eq!(negotiate(Some("")), PrometheusText);
    }

    #[test]
    fn protobuf_choices() {
        let proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
        let pick = |h: &str| negotiate_exposition(Some(h)).exposition;
        assert_eq!(pick(proto), Exposition::Protobuf);
        // Another message or framing is not ours.
        assert_eq!(
            pick("application/vnd.google.protobuf;proto=other;encoding=delimited"),
            Exposition::Text(Format::PrometheusText)
        );
        assert_eq!(
            pick(&format!("{proto};q=0.2,text/plain;q=0.5")),
            Exposition::Text(Format::PrometheusText)
        );
        // A tie goes to the text format, which every scraper reads.
        assert_eq!(
            pick(&format!("{proto};q=0.5,text/plain;q=0.5")),
            Exposition::Text(Format::PrometheusText)
        );
        // UTF-8 names only where the chosen range allows them.
        let utf8 = |h: &str| negotiate_exposition(Some(h)).escaping;
        assert_eq!(
            utf8("text/plain;version=1.0.0;escaping=allow-utf-8"),
            Escaping::AllowUtf8
        );
        assert_eq!(
            utf8("text/plain;version=0.0.4;escaping=allow-utf-8"),
            Escaping::Underscores
        );
        assert_eq!(
            utf8("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,application/openmetrics-text;q=0.5"),
            Escaping::Underscores
        );
        assert_eq!(
            utf8(&format!("{proto};escaping=allow-utf-8")),
            Escaping::AllowUtf8
        );
        // The text formats' choice is unchanged by a protobuf entry.
        assert_eq!(negotiate(Some(proto)), Format::PrometheusText);
    }
}
