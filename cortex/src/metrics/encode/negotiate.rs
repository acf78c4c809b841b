//! Picking an exposition format from an HTTP `Accept` header.

use super::{Exposition, Format};

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
    if w.open_metrics > w.text {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    }
}

/// [`negotiate`], with the protobuf exposition among the choices: it wins
/// when `application/vnd.google.protobuf` with
/// `proto=io.prometheus.client.MetricFamily` and `encoding=delimited` is
/// weighed above both text formats, as Prometheus sends it when native
/// histograms are enabled. The admin `/metrics` endpoint answers with it.
///
/// ```
/// use cortex::metrics::{negotiate_exposition, Exposition, Format};
///
/// // What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
/// let prom = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
/// assert_eq!(negotiate_exposition(Some(prom)), Exposition::Protobuf);
/// assert_eq!(negotiate_exposition(None), Exposition::Text(Format::PrometheusText));
/// ```
pub fn negotiate_exposition(accept: Option<&str>) -> Exposition {
    let w = weigh(accept);
    if w.protobuf > w.text && w.protobuf > w.open_metrics {
        Exposition::Protobuf
    } else {
        Exposition::Text(negotiate(accept))
    }
}

/// The best `q` (in thousandths) the header gives each format.
#[derive(Default)]
struct Weights {
    text: u16,
    open_metrics: u16,
    protobuf: u16,
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
        let (mut proto, mut encoding) = (None, None);
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
            }
        }
        if !valid {
            continue;
        }
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            if matches!(version, None | Some("1.0.0") | Some("0.0.1")) {
                w.open_metrics = w.open_metrics.max(q);
            }
        } else if media.eq_ignore_ascii_case("text/plain") {
            if matches!(version, None | Some("0.0.4")) {
                w.text = w.text.max(q);
            }
        } else if media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
            if proto == Some("io.prometheus.client.MetricFamily") && encoding == Some("delimited") {
                w.protobuf = w.protobuf.max(q);
            }
        } else if media == "*/*" || media.eq_ignore_ascii_case("text/*") {
            w.text = w.text.max(q);
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
        assert_eq!(negotiate_exposition(Some(proto)), Exposition::Protobuf);
        // Another message or framing is not ours.
        assert_eq!(
            negotiate_exposition(Some(
                "application/vnd.google.protobuf;proto=other;encoding=delimited"
            )),
            Exposition::Text(Format::PrometheusText)
        );
        assert_eq!(
            negotiate_exposition(Some(&format!("{proto};q=0.2,text/plain;q=0.5"))),
            Exposition::Text(Format::PrometheusText)
        );
        // A tie goes to the text format, which every scraper reads.
        assert_eq!(
            negotiate_exposition(Some(&format!("{proto};q=0.5,text/plain;q=0.5"))),
            Exposition::Text(Format::PrometheusText)
        );
        // The text formats' choice is unchanged by a protobuf entry.
        assert_eq!(negotiate(Some(proto)), Format::PrometheusText);
    }
}
