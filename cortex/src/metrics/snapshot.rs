//! What a series' readings add up to, shared by every encoder: the text
//! expositions write it straight out, the OTLP exporter keeps it as a
//! [`FamilySnapshot`] (owned, so it can be compared with the last push).

use super::encode::{LabelSet, Reading};
use super::exemplar::Exemplar;
use super::histogram::HistogramCell;
use super::native::NativePoint;
use super::series::Descriptor;
use super::MetricType;

/// A counter's readings added up: the whole part and the fractional part
/// kept apart (`inc_by_f64`), and the newest exemplar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CounterValue {
    pub(crate) int: u64,
    pub(crate) float: f64,
    pub(crate) exemplar: Option<Exemplar>,
}

impl CounterValue {
    pub(crate) fn total(&self) -> f64 {
        self.int as f64 + self.float
    }
}

pub(crate) fn counter(readings: &[Reading<'_>]) -> CounterValue {
    let mut out = CounterValue {
        int: 0,
        float: 0.0,
        exemplar: None,
    };
    let newer = |e: Option<Exemplar>, out: &mut CounterValue| {
        if e.is_some_and(|e| out.exemplar.is_none_or(|x| e.unix_nanos > x.unix_nanos)) {
            out.exemplar = e;
        }
    };
    for r in readings {
        match r {
            Reading::Counter(c) => {
                let (i, f) = c.parts();
                out.int = out.int.wrapping_add(i);
                out.float += f;
                newer(c.exemplar.get(0), &mut out);
            }
            Reading::Lane(h, lane) => {
                out.int = out.int.wrapping_add(h.lane_count(*lane));
                newer(
                    h.lane_exemplar(*lane).map(|e| Exemplar { value: 1.0, ..e }),
                    &mut out,
                );
            }
            Reading::Value(v) => out.float += v,
            _ => {}
        }
    }
    out
}

pub(crate) fn gauge(readings: &[Reading<'_>]) -> f64 {
    readings
        .iter()
        .map(|r| match r {
            Reading::Gauge(g) => g.get(),
            Reading::Value(v) => *v,
            _ => 0.0,
        })
        .sum()
}

/// Fills `cumulative` with the buckets of every histogram reading with the
/// first one's bounds (one entry per bound plus `+Inf`, each the count of
/// observations at or under it), and returns the first histogram (for its
/// bounds and exemplars) and the sum.
pub(crate) fn histogram<'a>(
    readings: &[Reading<'a>],
    cumulative: &mut Vec<u64>,
    scratch: &mut Vec<u64>,
) -> Option<(&'a HistogramCell, f64)> {
    let Some(Reading::Histogram(first)) = readings.first() else {
        return None;
    };
    let bounds = first.bounds();
    let mut sum = first.snapshot_into(cumulative);
    for r in &readings[1..] {
        if let Reading::Histogram(h) = r {
            if h.bounds() == bounds {
                sum += h.snapshot_into(scratch);
                for (a, b) in cumulative.iter_mut().zip(scratch.iter()) {
                    *a += b;
                }
            }
        }
    }
    Some((first, sum))
}

/// The native buckets of every histogram reading with `first`'s bounds,
/// added up.
fn native(readings: &[Reading<'_>], first: &HistogramCell) -> Option<NativePoint> {
    let mut out: Option<NativePoint> = None;
    for r in readings {
        let Reading::Histogram(h) = r else { continue };
        if h.bounds() != first.bounds() {
            continue;
        }
        if let Some(n) = h.native().map(super::native::NativeCell::read) {
            match &mut out {
                Some(a) => a.merge(n),
                None => out = Some(n),
            }
        }
    }
    out
}

/// One series' value at a collection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Point {
    Counter(CounterValue),
    Gauge(f64),
    Histogram {
        bounds: Vec<f64>,
        /// Cumulative, one per bound plus `+Inf`.
        cumulative: Vec<u64>,
        sum: f64,
        /// The newest exemplar of each bucket.
        exemplars: Vec<Option<Exemplar>>,
        /// The native buckets, if kept.
        native: Option<NativePoint>,
    },
}

/// One series: its labels (the family's, then constant ones) and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesSnapshot {
    pub(crate) labels: Vec<(Box<str>, Box<str>)>,
    pub(crate) point: Point,
}

/// A family at one collection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FamilySnapshot {
    pub(crate) name: Box<str>,
    pub(crate) help: Box<str>,
    pub(crate) kind: MetricType,
    pub(crate) series: Vec<SeriesSnapshot>,
}

impl FamilySnapshot {
    pub(crate) fn new(desc: &Descriptor) -> Self {
        FamilySnapshot {
            name: desc.name.clone(),
            help: desc.help.clone(),
            kind: desc.kind,
            series: Vec::new(),
        }
    }

    /// Adds a series from its readings.
    pub(crate) fn push(&mut self, labels: &LabelSet<'_>, readings: &[Reading<'_>]) {
        let point = match self.kind {
            MetricType::Counter => Point::Counter(counter(readings)),
            MetricType::Gauge | MetricType::Info => Point::Gauge(gauge(readings)),
            MetricType::Histogram => {
                let (mut cumulative, mut scratch) = (Vec::new(), Vec::new());
                let Some((first, sum)) = histogram(readings, &mut cumulative, &mut scratch) else {
                    return;
                };
                Point::Histogram {
                    native: native(readings, first),
                    bounds: first.bounds().to_vec(),
                    exemplars: (0..cumulative.len())
                        .map(|i| first.bucket_exemplar(i))
                        .collect(),
                    cumulative,
                    sum,
                }
            }
        };
        let labels = labels
            .names
            .iter()
            .zip(labels.values)
            .map(|(n, v)| (n.clone(), v.clone()))
            .chain(
                labels
                    .extra
                    .iter()
                    .map(|(n, v)| (Box::from(*n), Box::from(*v))),
            )
            .collect();
        self.series.push(SeriesSnapshot { labels, point });
    }
}
