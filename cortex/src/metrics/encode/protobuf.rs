//! The Prometheus protobuf exposition
//! (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited`): each `MetricFamily` of `io/prometheus/client/metrics.proto`
//! after its length as a varint. It is the one format that carries native
//! histograms; Prometheus asks for it when they are enabled.

use std::borrow::Cow;

use cortex_rules::NameKind;

use super::Escaping;
use crate::metrics::exemplar::Exemplar;
use crate::metrics::native::NativePoint;
use crate::metrics::snapshot::{FamilySnapshot, Point, SeriesSnapshot};
use crate::metrics::MetricType;
use crate::otlp::wire::Writer;

/// The `Content-Type` of the protobuf exposition.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

pub(crate) fn encode(families: &[FamilySnapshot], escaping: Escaping) -> Vec<u8> {
    let mut w = Writer::default();
    for family in families {
        w.delimited(|f| metric_family(f, family, escaping));
    }
    w.0
}

/// A name as `escaping` writes it (protobuf needs no quoting).
fn name(name: &str, kind: NameKind, escaping: Escaping) -> Cow<'_, str> {
    match escaping {
        Escaping::Underscores => cortex_rules::utf8::escape_underscores(name, kind),
        Escaping::AllowUtf8 => Cow::Borrowed(name),
    }
}

fn metric_family(w: &mut Writer, family: &FamilySnapshot, escaping: Escaping) {
    // name = 1, help = 2, type = 3, metric = 4
    w.bytes(1, name(&family.name, NameKind::Metric, escaping).as_bytes());
    w.bytes(2, family.help.as_bytes());
    // COUNTER = 0, GAUGE = 1, HISTOGRAM = 4 (an info family is a gauge).
    let kind = match family.kind {
        MetricType::Counter => 0,
        MetricType::Gauge | MetricType::Info => 1,
        MetricType::Histogram => 4,
    };
    w.uint(3, kind);
    for series in &family.series {
        w.message(4, |m| metric(m, series, escaping));
    }
}

fn label(w: &mut Writer, field: u32, name: &str, value: &str) {
    // LabelPair { name = 1, value = 2 }
    w.message(field, |l| {
        l.bytes(1, name.as_bytes());
        l.bytes(2, value.as_bytes());
    });
}

fn exemplar(w: &mut Writer, field: u32, e: &Exemplar) {
    // Exemplar { label = 1, value = 2, timestamp = 3 }
    w.message(field, |x| {
        label(x, 1, "trace_id", &format!("{:032x}", e.trace_id));
        label(x, 1, "span_id", &format!("{:016x}", e.span_id));
        x.double(2, e.value);
        // google.protobuf.Timestamp { seconds = 1, nanos = 2 }
        x.message(3, |t| {
            t.uint(1, e.unix_nanos / 1_000_000_000);
            t.uint(2, e.unix_nanos % 1_000_000_000);
        });
    });
}

fn metric(w: &mut Writer, series: &SeriesSnapshot, escaping: Escaping) {
    // Metric { label = 1, gauge = 2, counter = 3, histogram = 7 }
    for (label_name, value) in &series.labels {
        label(w, 1, &name(label_name, NameKind::Label, escaping), value);
    }
    match &series.point {
        Point::Counter(v) => w.message(3, |c| {
            c.double(1, v.total());
            if let Some(e) = &v.exemplar {
                exemplar(c, 2, e);
            }
        }),
        Point::Gauge(v) => w.message(2, |g| g.double(1, *v)),
        Point::Histogram {
            bounds,
            cumulative,
            sum,
            exemplars,
            native,
        } => w.message(7, |h| {
            let classic_count = cumulative.last().copied().unwrap_or(0);
            // A native histogram's count is its buckets' (Prometheus checks
            // that they add up); an observation racing with the read may
            // be in one set of buckets and not yet in the other.
            let count = native.as_ref().map_or(classic_count, NativePoint::count);
            // sample_count = 1, sample_sum = 2, bucket = 3
            h.uint(1, count);
            h.double(2, *sum);
            for (i, bound) in bounds.iter().enumerate() {
                // Bucket { cumulative_count = 1, upper_bound = 2,
                // exemplar = 3 }; `+Inf` is the sample count.
                h.message(3, |b| {
                    b.uint(1, cumulative[i]);
                    b.double(2, *bound);
                    if let Some(Some(e)) = exemplars.get(i) {
                        exemplar(b, 3, e);
                    }
                });
            }
            if let Some(n) = native {
                native_fields(h, n);
            }
        }),
    }
}

/// `schema = 5` (sint32), `zero_threshold = 6`, `zero_count = 7`,
/// `negative_span = 9`, `negative_delta = 10`, `positive_span = 12`,
/// `positive_delta = 13`.
fn native_fields(h: &mut Writer, n: &NativePoint) {
    h.sint(5, i64::from(n.schema));
    h.double(6, n.zero_threshold);
    h.uint(7, n.zero_count);
    spans(h, 9, 10, &n.negative);
    if n.positive.is_empty() && n.negative.is_empty() {
        // An empty span marks the histogram native when it has no bucket
        // yet (client_golang does the same).
        h.message(12, |s| {
            s.sint(1, 0);
            s.uint(2, 0);
        });
    }
    spans(h, 12, 13, &n.positive);
}

/// Buckets as spans (`BucketSpan { offset = 1 (sint32), length = 2 }`:
/// the first offset is the first index, the next ones the gap since the
/// previous span) and counts as deltas from the previous bucket's.
fn spans(h: &mut Writer, span_field: u32, delta_field: u32, buckets: &[(i32, u64)]) {
    if buckets.is_empty() {
        return;
    }
    let mut runs: Vec<(i32, u32)> = Vec::new();
    let mut previous: Option<i32> = None;
    for &(k, _) in buckets {
        match (previous, runs.last_mut()) {
            (Some(p), Some(run)) if k == p + 1 => run.1 += 1,
            (Some(p), _) => runs.push((k - p - 1, 1)),
            (None, _) => runs.push((k, 1)),
        }
        previous = Some(k);
    }
    for (offset, length) in runs {
        h.message(span_field, |s| {
            s.sint(1, i64::from(offset));
            s.uint(2, u64::from(length));
        });
    }
    let mut last = 0i64;
    let deltas: Vec<i64> = buckets
        .iter()
        .map(|&(_, n)| {
            let n = n as i64;
            let d = n - last;
            last = n;
            d
        })
        .collect();
    h.packed_sint(delta_field, &deltas);
}
