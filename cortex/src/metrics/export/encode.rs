//! `ExportMetricsServiceRequest` bodies, as OTLP/JSON and OTLP/protobuf
//! (`opentelemetry/proto/metrics/v1/metrics.proto`), from one collection.

use serde_json::{json, Map, Value as Json};

use super::Collected;
use crate::metrics::exemplar::Exemplar;
use crate::metrics::native::NativePoint;
use crate::metrics::snapshot::{FamilySnapshot, Point, SeriesSnapshot};
use crate::metrics::MetricType;
use crate::otlp::wire::{attributes, Writer};
use crate::trace::KeyValue;

/// `AGGREGATION_TEMPORALITY_DELTA` and `_CUMULATIVE`.
pub(super) const DELTA: u64 = 1;
pub(super) const CUMULATIVE: u64 = 2;

/// The OTLP name of a family: a counter's without its `_total` (the
/// Prometheus side adds it back), and its unit from the name's suffix.
fn name_and_unit(family: &FamilySnapshot) -> (&str, &'static str) {
    let name: &str = &family.name;
    let name = match family.kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    let unit = if name.ends_with("_seconds") {
        "s"
    } else if name.ends_with("_bytes") {
        "By"
    } else {
        ""
    };
    (name, unit)
}

/// A histogram family goes as an exponential histogram when every series
/// keeps native buckets (their classic buckets, if any, are left out: an
/// OTLP metric has one shape).
fn exponential(family: &FamilySnapshot) -> bool {
    family.kind == MetricType::Histogram
        && family.series.iter().all(|s| {
            matches!(
                &s.point,
                Point::Histogram {
                    native: Some(_),
                    ..
                }
            )
        })
}

fn labels(series: &SeriesSnapshot) -> Vec<KeyValue> {
    series
        .labels
        .iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
        .collect()
}

/// The families OTLP carries: an info family is the resource's business.
fn exported(c: &Collected) -> impl Iterator<Item = (usize, &FamilySnapshot)> {
    c.families
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind != MetricType::Info)
}

// ---- JSON -----------------------------------------------------------------

pub(super) fn json(resource: &[KeyValue], c: &Collected) -> Vec<u8> {
    let metrics: Vec<Json> = exported(c).map(|(i, f)| metric_json(c, i, f)).collect();
    json!({
        "resourceMetrics": [{
            "resource": { "attributes": crate::otlp::json::attributes(resource) },
            "scopeMetrics": [{
                "scope": crate::otlp::json::scope(),
                "metrics": metrics
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

fn exemplar_json(e: &Exemplar) -> Json {
    json!({
        "timeUnixNano": e.unix_nanos.to_string(),
        "asDouble": e.value,
        "spanId": format!("{:016x}", e.span_id),
        "traceId": format!("{:032x}", e.trace_id),
    })
}

fn metric_json(c: &Collected, index: usize, family: &FamilySnapshot) -> Json {
    let (name, unit) = name_and_unit(family);
    let points: Vec<Json> = family
        .series
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let mut m = Map::new();
            m.insert(
                "attributes".into(),
                crate::otlp::json::attributes(&labels(s)),
            );
            m.insert(
                "startTimeUnixNano".into(),
                c.starts[index][j].to_string().into(),
            );
            m.insert("timeUnixNano".into(), c.now.to_string().into());
            match &s.point {
                Point::Counter(v) => {
                    if v.float == 0.0 {
                        // int64 is a string in protobuf's JSON mapping.
                        m.insert("asInt".into(), v.int.to_string().into());
                    } else {
                        m.insert("asDouble".into(), number(v.total()));
                    }
                    if let Some(e) = &v.exemplar {
                        m.insert("exemplars".into(), json!([exemplar_json(e)]));
                    }
                }
                Point::Gauge(v) => {
                    m.insert("asDouble".into(), number(*v));
                }
                Point::Histogram {
                    native: Some(n),
                    sum,
                    exemplars,
                    ..
                } if exponential(family) => {
                    m.insert("count".into(), n.count().to_string().into());
                    m.insert("sum".into(), number(*sum));
                    m.insert("scale".into(), n.schema.into());
                    m.insert("zeroCount".into(), n.zero_count.to_string().into());
                    for (key, buckets) in [("positive", &n.positive), ("negative", &n.negative)] {
                        let (offset, counts) = NativePoint::otel_buckets(buckets);
                        if !counts.is_empty() {
                            m.insert(
                                key.into(),
                                json!({
                                    "offset": offset,
                                    "bucketCounts": counts.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                                }),
                            );
                        }
                    }
                    m.insert("zeroThreshold".into(), number(n.zero_threshold));
                    let exemplars: Vec<Json> =
                        exemplars.iter().flatten().map(exemplar_json).collect();
                    if !exemplars.is_empty() {
                        m.insert("exemplars".into(), exemplars.into());
                    }
                }
                Point::Histogram {
                    bounds,
                    cumulative,
                    sum,
                    exemplars,
                    ..
                } => {
                    let counts = bucket_counts(cumulative);
                    m.insert(
                        "count".into(),
                        cumulative.last().copied().unwrap_or(0).to_string().into(),
                    );
                    m.insert("sum".into(), number(*sum));
                    m.insert(
                        "bucketCounts".into(),
                        counts.iter().map(|c| Json::from(c.to_string())).collect(),
                    );
                    m.insert("explicitBounds".into(), json!(bounds));
                    let exemplars: Vec<Json> =
                        exemplars.iter().flatten().map(exemplar_json).collect();
                    if !exemplars.is_empty() {
                        m.insert("exemplars".into(), exemplars.into());
                    }
                }
            }
            Json::Object(m)
        })
        .collect();
    let data = match family.kind {
        MetricType::Counter => json!({
            "sum": {
                "dataPoints": points,
                "aggregationTemporality": c.temporality,
                "isMonotonic": true,
            }
        }),
        MetricType::Histogram if exponential(family) => json!({
            "exponentialHistogram": {
                "dataPoints": points,
                "aggregationTemporality": c.temporality,
            }
        }),
        MetricType::Histogram => json!({
            "histogram": {
                "dataPoints": points,
                "aggregationTemporality": c.temporality,
            }
        }),
        _ => json!({ "gauge": { "dataPoints": points } }),
    };
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    if !family.help.is_empty() {
        m.insert("description".into(), family.help.to_string().into());
    }
    if !unit.is_empty() {
        m.insert("unit".into(), unit.into());
    }
    if let Json::Object(data) = data {
        m.extend(data);
    }
    Json::Object(m)
}

/// A double as protobuf's JSON mapping writes it (non-finite as strings).
fn number(v: f64) -> Json {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

/// Per-bucket counts from cumulative ones.
fn bucket_counts(cumulative: &[u64]) -> Vec<u64> {
    let mut last = 0;
    cumulative
        .iter()
        .map(|&c| {
            let n = c.saturating_sub(last);
            last = c;
            n
        })
        .collect()
}

// ---- protobuf -------------------------------------------------------------

pub(super) fn protobuf(resource: &[KeyValue], c: &Collected) -> Vec<u8> {
    let mut w = Writer::default();
    // resource_metrics = 1
    w.message(1, |rm| {
        // resource = 1 { attributes = 1 }
        rm.message(1, |r| attributes(r, 1, resource));
        // scope_metrics = 2
        rm.message(2, |sm| {
            // scope = 1 { name = 1, version = 2 }
            sm.message(1, crate::otlp::wire::scope);
            for (i, f) in exported(c) {
                // metrics = 2
                sm.message(2, |m| metric_proto(m, c, i, f));
            }
        });
    });
    w.0
}

fn exemplar_proto(w: &mut Writer, e: &Exemplar) {
    // time_unix_nano = 2, as_double = 3, span_id = 4, trace_id = 5
    w.fixed64(2, e.unix_nanos);
    w.double(3, e.value);
    w.bytes(4, &e.span_id.to_be_bytes());
    w.bytes(5, &e.trace_id.to_be_bytes());
}

fn metric_proto(w: &mut Writer, c: &Collected, index: usize, family: &FamilySnapshot) {
    let (name, unit) = name_and_unit(family);
    // name = 1, description = 2, unit = 3
    w.bytes(1, name.as_bytes());
    w.bytes(2, family.help.as_bytes());
    w.bytes(3, unit.as_bytes());
    let points = |m: &mut Writer| {
        for (j, s) in family.series.iter().enumerate() {
            let start = c.starts[index][j];
            // data_points = 1
            m.message(1, |p| match &s.point {
                Point::Counter(v) => {
                    // NumberDataPoint: start = 2, time = 3, as_double = 4,
                    // exemplars = 5, as_int = 6 (sfixed64), attributes = 7
                    p.fixed64(2, start);
                    p.fixed64(3, c.now);
                    if v.float == 0.0 {
                        p.tag(6, 1);
                        p.0.extend_from_slice(&v.int.min(i64::MAX as u64).to_le_bytes());
                    } else {
                        p.double(4, v.total());
                    }
                    if let Some(e) = &v.exemplar {
                        p.message(5, |x| exemplar_proto(x, e));
                    }
                    attributes(p, 7, &labels(s));
                }
                Point::Gauge(v) => {
                    p.fixed64(2, start);
                    p.fixed64(3, c.now);
                    p.double(4, *v);
                    attributes(p, 7, &labels(s));
                }
                Point::Histogram {
                    native: Some(n),
                    sum,
                    exemplars,
                    ..
                } if exponential(family) => {
                    // ExponentialHistogramDataPoint: attributes = 1,
                    // start = 2, time = 3, count = 4, sum = 5, scale = 6
                    // (sint32), zero_count = 7, positive = 8, negative = 9,
                    // exemplars = 11, zero_threshold = 14
                    attributes(p, 1, &labels(s));
                    p.fixed64(2, start);
                    p.fixed64(3, c.now);
                    p.fixed64(4, n.count());
                    p.double(5, *sum);
                    p.sint(6, i64::from(n.schema));
                    p.fixed64(7, n.zero_count);
                    for (field, buckets) in [(8, &n.positive), (9, &n.negative)] {
                        let (offset, counts) = NativePoint::otel_buckets(buckets);
                        if !counts.is_empty() {
                            // Buckets { offset = 1 (sint32), bucket_counts = 2 }
                            p.message(field, |b| {
                                b.sint(1, i64::from(offset));
                                b.packed_uint(2, &counts);
                            });
                        }
                    }
                    for e in exemplars.iter().flatten() {
                        p.message(11, |x| exemplar_proto(x, e));
                    }
                    p.double(14, n.zero_threshold);
                }
                Point::Histogram {
                    bounds,
                    cumulative,
                    sum,
                    exemplars,
                    ..
                } => {
                    // HistogramDataPoint: start = 2, time = 3, count = 4,
                    // sum = 5, bucket_counts = 6, explicit_bounds = 7,
                    // exemplars = 8, attributes = 9
                    p.fixed64(2, start);
                    p.fixed64(3, c.now);
                    p.fixed64(4, cumulative.last().copied().unwrap_or(0));
                    p.double(5, *sum);
                    p.packed_fixed64(6, &bucket_counts(cumulative));
                    p.packed_double(7, bounds);
                    for e in exemplars.iter().flatten() {
                        p.message(8, |x| exemplar_proto(x, e));
                    }
                    attributes(p, 9, &labels(s));
                }
            });
        }
    };
    match family.kind {
        // sum = 7 { data_points = 1, aggregation_temporality = 2,
        // is_monotonic = 3 }
        MetricType::Counter => w.message(7, |m| {
            points(m);
            m.uint(2, c.temporality);
            m.uint(3, 1);
        }),
        // exponential_histogram = 10 { data_points = 1,
        // aggregation_temporality = 2 }
        MetricType::Histogram if exponential(family) => w.message(10, |m| {
            points(m);
            m.uint(2, c.temporality);
        }),
        // histogram = 9 { data_points = 1, aggregation_temporality = 2 }
        MetricType::Histogram => w.message(9, |m| {
            points(m);
            m.uint(2, c.temporality);
        }),
        // gauge = 5 { data_points = 1 }
        _ => w.message(5, points),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_cumulative() {
        assert_eq!(bucket_counts(&[1, 1, 4, 6]), [1, 0, 3, 2]);
        assert_eq!(bucket_counts(&[]), Vec::<u64>::new());
    }
}
