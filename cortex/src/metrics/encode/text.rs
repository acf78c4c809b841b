//! The writer shared by both formats. They differ in a few places only:
//! counter family names, `"` in HELP, and the `# EOF` trailer.

use std::fmt;

use super::Format;
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
    cumulative: Vec<u64>,
    scratch: Vec<u64>,
}

impl<'a> Encoder<'a> {
    pub(crate) fn new(out: &'a mut String, format: Format) -> Self {
        Encoder {
            out,
            format,
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
    fn family_name<'d>(&self, desc: &'d Descriptor) -> &'d str {
        match (self.format, desc.kind) {
            (Format::OpenMetrics, MetricType::Counter) => {
                desc.name.strip_suffix("_total").unwrap_or(&desc.name)
            }
            (Format::OpenMetrics, MetricType::Info) => {
                desc.name.strip_suffix("_info").unwrap_or(&desc.name)
            }
            _ => &desc.name,
        }
    }

    pub(crate) fn header(&mut self, desc: &Descriptor) -> fmt::Result {
        let name = self.family_name(desc);
        if !desc.help.is_empty() {
            self.out.push_str("# HELP ");
            self.out.push_str(name);
            self.out.push(' ');
            escape_help(self.out, &desc.help, self.format == Format::OpenMetrics);
            self.out.push('\n');
        }
        self.out.push_str("# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(match (self.format, desc.kind) {
            (Format::PrometheusText, MetricType::Info) => "gauge",
            (_, kind) => kind.as_str(),
        });
        self.out.push('\n');
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
        out.push_str(name);
        out.push_str(suffix);
        let mut first = true;
        let mut sep = |out: &mut String| {
            out.push(if first { '{' } else { ',' });
            first = false;
        };
        for (n, v) in labels.names.iter().zip(labels.values) {
            sep(out);
            push_label(out, n, v);
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
