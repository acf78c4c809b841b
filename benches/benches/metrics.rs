//! Cortex metrics against the peer crates, in the same run:
//! `prometheus`, `prometheus-client` and `autometrics`.
//!
//! ```text
//! cargo bench -p cortex-benches --bench metrics
//! ```
//! BENCHMARKS.md records the ratios.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

fn counter_inc(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_inc");
    let registry = cortex::metrics::Registry::new();
    let cortex_counter = registry.counter("bench_total", "Bench.").unwrap();
    g.bench_function("cortex", |b| b.iter(|| black_box(&cortex_counter).inc()));

    let prom = prometheus::IntCounter::new("bench_total", "Bench.").unwrap();
    g.bench_function("prometheus", |b| b.iter(|| black_box(&prom).inc()));

    let pc: prometheus_client::metrics::counter::Counter = Default::default();
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            black_box(&pc).inc();
        })
    });
    g.finish();
}

fn histogram_observe(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_observe");
    let registry = cortex::metrics::Registry::new();
    let h = registry
        .histogram(
            "bench_seconds",
            "Bench.",
            cortex::metrics::Buckets::default(),
        )
        .unwrap();
    let mut v = 0.0f64;
    g.bench_function("cortex", |b| {
        b.iter(|| {
            v = (v + 0.013) % 12.0;
            black_box(&h).observe(black_box(v));
        })
    });

    let prom =
        prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("bench_seconds", "Bench."))
            .unwrap();
    let mut v = 0.0f64;
    g.bench_function("prometheus", |b| {
        b.iter(|| {
            v = (v + 0.013) % 12.0;
            black_box(&prom).observe(black_box(v));
        })
    });

    let pc = prometheus_client::metrics::histogram::Histogram::new(
        cortex::metrics::DEFAULT_BUCKETS.iter().copied(),
    );
    let mut v = 0.0f64;
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            v = (v + 0.013) % 12.0;
            black_box(&pc).observe(black_box(v));
        })
    });
    g.finish();
}

fn labelled_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("labelled_lookup");
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let statuses = ["200", "201", "404", "500", "503"];

    let registry = cortex::metrics::Registry::new();
    let fam = registry
        .counter_family("requests_total", "Requests.", &["method", "status"])
        .unwrap();
    let prom = prometheus::IntCounterVec::new(
        prometheus::Opts::new("requests_total", "Requests."),
        &["method", "status"],
    )
    .unwrap();
    type Labels = Vec<(&'static str, &'static str)>;
    let pc: prometheus_client::metrics::family::Family<
        Labels,
        prometheus_client::metrics::counter::Counter,
    > = Default::default();
    for m in methods {
        for s in statuses {
            fam.with_labels(&[m, s]).unwrap().inc();
            prom.with_label_values(&[m, s]).inc();
            pc.get_or_create(&vec![("method", m), ("status", s)]).inc();
        }
    }
    let mut i = 0usize;
    g.bench_function("cortex", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let m = methods[i % 4];
            let s = statuses[i % 5];
            fam.with_labels(black_box(&[m, s])).unwrap().inc();
        })
    });
    let mut i = 0usize;
    g.bench_function("cortex_with", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let m = methods[i % 4];
            let s = statuses[i % 5];
            fam.with(black_box(&[m, s]), cortex::metrics::Counter::inc)
                .unwrap();
        })
    });
    let mut i = 0usize;
    g.bench_function("prometheus", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let m = methods[i % 4];
            let s = statuses[i % 5];
            prom.with_label_values(black_box(&[m, s])).inc();
        })
    });
    let mut i = 0usize;
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let m = methods[i % 4];
            let s = statuses[i % 5];
            // prometheus-client looks up by an owned label set.
            let labels: Labels = vec![("method", m), ("status", s)];
            pc.get_or_create(black_box(&labels)).inc();
        })
    });
    g.finish();
}

#[inline(never)]
fn plain(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[inline(never)]
#[cortex::counted]
fn counted(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[inline(never)]
#[cortex::counted]
#[cortex::timed]
fn counted_timed(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[inline(never)]
#[autometrics::autometrics]
fn autometrics_fn(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn annotated_calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("annotated_call");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(7))));
    g.bench_function("cortex_counted", |b| b.iter(|| counted(black_box(7))));
    g.bench_function("cortex_counted_timed", |b| {
        b.iter(|| counted_timed(black_box(7)))
    });
    g.bench_function("autometrics", |b| b.iter(|| autometrics_fn(black_box(7))));
    // The floor for any timing: `#[timed]` reads the clock twice per call.
    g.bench_function("std_instant_now", |b| b.iter(std::time::Instant::now));
    let clock = quanta::Clock::new();
    g.bench_function("tsc_read", |b| b.iter(|| black_box(clock.raw())));
    g.finish();
}

const SERIES: usize = 10_000;

/// Native (exponential) buckets against the classic ones and the peers'
/// classic histograms (which have no native mode), one thread.
fn native_observe(c: &mut Criterion) {
    use cortex::metrics::{Buckets, NativeOptions};
    let mut g = c.benchmark_group("native_observe");
    let registry = cortex::metrics::Registry::new();
    let classic = registry
        .histogram("classic_seconds", "", Buckets::default())
        .unwrap();
    let native = registry
        .histogram("native_seconds", "", Buckets::native())
        .unwrap();
    let both = registry
        .histogram(
            "both_seconds",
            "",
            Buckets::default().with_native(NativeOptions::default()),
        )
        .unwrap();
    for (name, h) in [
        ("cortex_classic", &classic),
        ("cortex_native", &native),
        ("cortex_native_and_classic", &both),
    ] {
        let mut v = 0.0f64;
        g.bench_function(name, |b| {
            b.iter(|| {
                v = (v + 0.013) % 12.0;
                black_box(h).observe(black_box(v));
            })
        });
    }
    let pc = prometheus_client::metrics::histogram::Histogram::new(
        cortex::metrics::DEFAULT_BUCKETS.iter().copied(),
    );
    let mut v = 0.0f64;
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            v = (v + 0.013) % 12.0;
            black_box(&pc).observe(black_box(v));
        })
    });
    let fm = fastmetrics::metrics::histogram::Histogram::new(
        cortex::metrics::DEFAULT_BUCKETS.iter().copied(),
    );
    let mut v = 0.0f64;
    g.bench_function("fastmetrics", |b| {
        b.iter(|| {
            v = (v + 0.013) % 12.0;
            black_box(&fm).observe(black_box(v));
        })
    });
    g.finish();
}

/// What the `process_*` series cost a scrape: reading `/proc` and writing
/// them.
fn process_collection(c: &mut Criterion) {
    let mut g = c.benchmark_group("process_metrics_scrape");
    let registry = cortex::metrics::Registry::new();
    registry.register_process_metrics();
    let mut buf = String::new();
    g.bench_function("cortex", |b| {
        b.iter(|| {
            buf.clear();
            registry.encode_into(&mut buf, cortex::metrics::Format::PrometheusText);
            black_box(buf.len())
        })
    });
    g.finish();
}

fn encode_10k(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_10k_series");
    g.sample_size(20);

    let registry = cortex::metrics::Registry::new();
    let fam = registry
        .counter_family("requests_total", "Requests.", &["route", "status"])
        .unwrap();
    // Past the default cap of 2,000: this bench means 10,000 real series.
    fam.set_series_limit(SERIES);
    let prom_registry = prometheus::Registry::new();
    let prom = prometheus::IntCounterVec::new(
        prometheus::Opts::new("requests_total", "Requests."),
        &["route", "status"],
    )
    .unwrap();
    prom_registry.register(Box::new(prom.clone())).unwrap();
    let mut pc_registry = prometheus_client::registry::Registry::default();
    type Labels = Vec<(&'static str, String)>;
    let pc: prometheus_client::metrics::family::Family<
        Labels,
        prometheus_client::metrics::counter::Counter,
    > = Default::default();
    pc_registry.register("requests", "Requests.", pc.clone());

    for i in 0..SERIES {
        let route = format!("/api/v1/items/{}", i / 10);
        let status = format!("{}", 200 + i % 10);
        fam.with_labels(&[&route, &status])
            .unwrap()
            .inc_by(i as u64);
        prom.with_label_values(&[&route, &status]).inc_by(i as u64);
        pc.get_or_create(&vec![("route", route), ("status", status)])
            .inc_by(i as u64);
    }

    let mut buf = String::new();
    g.bench_function("cortex", |b| {
        b.iter(|| {
            buf.clear();
            registry.encode_into(&mut buf, cortex::metrics::Format::PrometheusText);
            black_box(buf.len())
        })
    });
    g.bench_function("cortex_protobuf", |b| {
        b.iter(|| black_box(registry.encode_protobuf().len()))
    });
    let mut out = Vec::new();
    g.bench_function("prometheus", |b| {
        use prometheus::Encoder;
        let encoder = prometheus::TextEncoder::new();
        b.iter(|| {
            out.clear();
            encoder.encode(&prom_registry.gather(), &mut out).unwrap();
            black_box(out.len())
        })
    });
    let mut s = String::new();
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            s.clear();
            prometheus_client::encoding::text::encode(&mut s, &pc_registry).unwrap();
            black_box(s.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(2);
    targets = counter_inc, histogram_observe, native_observe, labelled_lookup, annotated_calls, encode_10k, process_collection
}
criterion_main!(benches);
