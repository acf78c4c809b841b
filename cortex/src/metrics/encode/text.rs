//! The writer shared by both formats. They differ in a few places only:
//! counter family names, `"` in HELP, and the `# EOF` trailer.

use std::fmt;

use super::{Escaping, Format};
use crate::metrics::counter::CounterCell;
use crate::metrics::gauge::GaugeCell;
use crate::metrics::histogram::HistogramCell;
use crate::metrics::series::Descriptor;
use crate::metrics::snapshot;
use crate::metrics::MetricType;

/// A borrowed view of one series' storage. (Named by the sealed
/// [`Metric`](crate::metrics::Metric) trait; not reachable by users.)
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
#[allow(unreachable_pub, missing_docs)]
pub enum Reading<'a> {
    Counter(&'a CounterCell),
    /// A counter whose value is the observation count of a histogram lane.
    Lane(&'a HistogramCell, usize),
    /// A value computed at scrape time.
    Value(f64),
    Gauge(&'a GaugeCell),
    Histogram(&'a HistogramCell),
}

/// The labels of one series: the family's names with this series' values,
/// then a call site's constant labels.
#[derive(Debug)]
pub(crate) struct LabelSet<'a> {
    pub(crate) names: &'a [Box<str>],
    pub(crate) values: &'a [Box<str>],
    pub(crate) extra: &'a [(&'static str, &'static str)],
}

pub(crate) struct Encoder<'a> {
    out: &'a mut String,
    format: Format,
    escaping: Escaping,
    /// The names of the current family as written, when one of them is not
    /// a classic name (`None`: the names as they are, the fast path).
    names: Option<Names>,
    cumulative: Vec<u64>,
    scratch: Vec<u64>,
}

/// A family's names as this exposition writes them.
struct Names {
    /// The sample name, escaped; or, with `quoted`, the raw name to quote
    /// inside the braces.
    metric: String,
    quoted: bool,
    /// Each label name as written (escaped, plain or quoted).
    labels: Vec<String>,
}

impl Names {
    fn new(desc: &Descriptor, escaping: Escaping) -> Option<Names> {
        use cortex_rules::utf8::{escape_underscores, is_legacy};
        use cortex_rules::NameKind;
        if desc.legacy {
            return None;
        }
        Some(match escaping {
            Escaping::Underscores => Names {
                metric: escape_underscores(&desc.name, NameKind::Metric).into_owned(),
                quoted: false,
                labels: desc
                    .label_names
                    .iter()
                    .map(|l| escape_underscores(l, NameKind::Label).into_owned())
                    .collect(),
            },
            Escaping::AllowUtf8 => Names {
                metric: desc.name.to_string(),
                quoted: !is_legacy(&desc.name, NameKind::Metric),
                labels: desc
                    .label_names
                    .iter()
                    .map(|l| {
                        if is_legacy(l, NameKind::Label) {
                            l.to_string()
                        } else {
                            quoted(l)
                        }
                    })
                    .collect(),
            },
        })
    }
}

/// `"name"`, with `\` and `"` escaped as in label values.
pub(crate) fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    escape_label_value(&mut out, name);
    out.push('"');
    out
}

impl<'a> Encoder<'a> {
    pub(crate) fn new(out: &'a mut String, format: Format, escaping: Escaping) -> Self {
        Encoder {
            out,
            format,
            escaping,
            names: None,
            cumulative: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub(crate) fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
    }

    /// The name on HELP and TYPE lines: OpenMetrics names a counter family
    /// without its `_total` suffix; the text format uses the sample name.
    fn family_name<'d>(&self, name: &'d str, kind: MetricType) -> &'d str {
        match (self.format, kind) {
            (Format::OpenMetrics, MetricType::Counter) => {
                name.strip_suffix("_total").unwrap_or(name)
            }
            (Format::OpenMetrics, MetricType::Info) => name.strip_suffix("_info").unwrap_or(name),
            _ => name,
        }
    }

    pub(crate) fn header(&mut self, desc: &Descriptor) -> fmt::Result {
        self.names = Names::new(desc, self.escaping);
        let written = match &self.names {
            None => None,
            Some(n) => {
                let family = self.family_name(&n.metric, desc.kind);
                Some(if n.quoted {
                    quoted(family)
                } else {
                    family.to_owned()
                })
            }
        };
        let name = match &written {
            Some(w) => w.as_str(),
            None => self.family_name(&desc.name, desc.kind),
        };
        let out = &mut *self.out;
        if !desc.help.is_empty() {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_help(out, &desc.help, self.format == Format::OpenMetrics);
            out.push('\n');
        }
        out.push_str("# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(match (self.format, desc.kind) {
            (Format::PrometheusText, MetricType::Info) => "gauge",
            (_, kind) => kind.as_str(),
        });
        out.push('\n');
        Ok(())
    }

    pub(crate) fn series(
        &mut self,
        desc: &Descriptor,
        labels: &LabelSet<'_>,
        readings: &[Reading<'_>],
    ) -> fmt::Result {
        match (desc.kind, readings.first()) {
            (_, None) => {}
            (MetricType::Counter, Some(_)) => {
                let value = snapshot::counter(readings);
                self.sample(&desc.name, "", labels, None);
                if value.float == 0.0 {
                    self.out.push_str(itoa::Buffer::new().format(value.int));
                } else {
                    push_f64(self.out, value.total());
                }
                if let (Format::OpenMetrics, Some(e)) = (self.format, value.exemplar) {
                    crate::metrics::exemplar::push(self.out, &e);
                }
                self.out.push('\n');
            }
            (MetricType::Gauge | MetricType::Info, Some(_)) => {
                let value = snapshot::gauge(readings);
                self.sample(&desc.name, "", labels, None);
                push_f64(self.out, value);
                self.out.push('\n');
            }
            (MetricType::Histogram, Some(Reading::Histogram(_))) => {
                let mut cumulative = std::mem::take(&mut self.cumulative);
                let Some((first, sum)) =
                    snapshot::histogram(readings, &mut cumulative, &mut self.scratch)
                else {
                    self.cumulative = cumulative;
                    return Ok(());
                };
                let bounds = first.bounds();
                let mut ints = itoa::Buffer::new();
                for (i, &count) in cumulative.iter().enumerate() {
                    let le = match bounds.get(i) {
                        Some(&b) => Le::Bound(b),
                        None => Le::Inf,
                    };
                    self.sample(&desc.name, "_bucket", labels, Some(le));
                    self.out.push_str(ints.format(count));
                    if self.format == Format::OpenMetrics {
                        if let Some(e) = first.bucket_exemplar(i) {
                            crate::metrics::exemplar::push(self.out, &e);
                        }
                    }
                    self.out.push('\n');
                }
                self.sample(&desc.name, "_sum", labels, None);
                push_f64(self.out, sum);
                self.out.push('\n');
                let count = cumulative.last().copied().unwrap_or(0);
                self.sample(&desc.name, "_count", labels, None);
                self.out.push_str(ints.format(count));
                self.out.push('\n');
                self.cumulative = cumulative;
            }
            (MetricType::Histogram, Some(_)) => {}
        }
        Ok(())
    }

    /// Writes `name{labels} ` (with the trailing space).
    fn sample(&mut self, name: &str, suffix: &str, labels: &LabelSet<'_>, le: Option<Le>) {
        let out = &mut *self.out;
        let mut first = true;
        match &self.names {
            None => {
                out.push_str(name);
                out.push_str(suffix);
            }
            Some(n) if n.quoted => {
                // `{"name_suffix", labels}`.
                out.push('{');
                out.push('"');
                escape_label_value(out, &n.metric);
                escape_label_value(out, suffix);
                out.push('"');
                first = false;
            }
            Some(n) => {
                out.push_str(&n.metric);
                out.push_str(suffix);
            }
        }
        let mut sep = |out: &mut String| {
            out.push(if first { '{' } else { ',' });
            first = false;
        };
        match &self.names {
            None => {
                for (n, v) in labels.names.iter().zip(labels.values) {
                    sep(out);
                    push_label(out, n, v);
                }
            }
            Some(names) => {
                for (n, v) in names.labels.iter().zip(labels.values) {
                    sep(out);
                    push_label(out, n, v);
                }
            }
        }
        for (n, v) in labels.extra {
            sep(out);
            push_label(out, n, v);
        }
        if let Some(le) = le {
            sep(out);
            out.push_str("le=\"");
            match le {
                Le::Bound(b) => push_f64(out, b),
                Le::Inf => out.push_str("+Inf"),
            }
            out.push('"');
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
    }
}

#[derive(Clone, Copy)]
enum Le {
    Bound(f64),
    Inf,
}

fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape_label_value(out, value);
    out.push('"');
}

/// Label values escape `\`, `"` and newline (both formats).
pub(crate) fn escape_label_value(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes `\` and newline; OpenMetrics also escapes `"`.
pub(crate) fn escape_help(out: &mut String, v: &str, quote: bool) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Formats a sample value: whole numbers without a fraction (`3`, as the
/// Go client does), others in the shortest form that reads back exactly.
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        out.push_str(ryu::Buffer::new().format_finite(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        let f = |v| {
            let mut s = String::new();
            push_f64(&mut s, v);
            s
        };
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-3.0), "-3");
        assert_eq!(f(0.005), "0.005");
        assert_eq!(f(2.5), "2.5");
        assert_eq!(f(1e20), "1e20");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd");
        assert_eq!(s, r#"a\\b\"c\nd"#);
        let mut s = String::new();
        escape_help(&mut s, "a\\b\"c\nd", false);
        assert_eq!(s, r#"a\\b"c\nd"#);
        let mut s = String::new();
        escape_help(&mut s, "a\"b", true);
        assert_eq!(s, r#"a\"b"#);
    }
}
