//! One span, started and ended, against the `tracing` crate with a
//! registry subscriber and against `fastrace`, in the same run; an
//! unsampled span; and a `tracing` span exported through Cortex's
//! `TracingLayer` against `tracing-opentelemetry`.
//!
//! ```text
//! cargo bench -p cortex-benches --bench trace
//! ```

use std::hint::black_box;

use cortex::trace::{ExportError, Parent, Sampler, SpanContext, SpanData, SpanExporter, Tracer};
use criterion::{criterion_group, criterion_main, Criterion};

/// Takes batches and drops them: the export thread's work is not what is
/// measured, the cost on the calling thread is.
struct Discard;

impl SpanExporter for Discard {
    fn export(&mut self, batch: &[SpanData]) -> Result<(), ExportError> {
        black_box(batch.len());
        Ok(())
    }
}

struct DiscardReporter;

impl fastrace::collector::Reporter for DiscardReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans.len());
    }
}

#[cortex::traced]
fn cortex_work(x: u64) -> u64 {
    black_box(x)
}

#[tracing::instrument(skip_all)]
fn tracing_work(x: u64) -> u64 {
    black_box(x)
}

#[fastrace::trace]
fn fastrace_work(x: u64) -> u64 {
    black_box(x)
}

fn spans(c: &mut Criterion) {
    let global = Tracer::builder()
        .sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .exporter(Discard)
        .queue_capacity(1 << 14)
        .max_batch(4096)
        .install()
        .unwrap();
    fastrace::set_reporter(DiscardReporter, fastrace::collector::Config::default());

    let mut g = c.benchmark_group("span_start_end");
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        // The registry's slab grows on first use; measure it warm.
        for _ in 0..200_000 {
            tracing_work(1);
        }
        g.bench_function("tracing_instrument_fn_registry", |b| {
            b.iter(|| tracing_work(black_box(1)))
        });
        g.bench_function("tracing_span_enter_registry", |b| {
            b.iter(|| {
                let span = tracing::info_span!("work");
                let _e = span.enter();
            })
        });
    });
    g.bench_function("cortex_traced_fn_sampled_exported", |b| {
        b.iter(|| cortex_work(black_box(1)))
    });
    g.bench_function("cortex_tracer_start_end_sampled_exported", |b| {
        b.iter(|| drop(global.start("work")))
    });
    g.bench_function("fastrace_root_span_reported", |b| {
        b.iter(|| {
            drop(fastrace::Span::root(
                "work",
                fastrace::prelude::SpanContext::random(),
            ))
        })
    });
    // fastrace records at most 10,240 local spans per root on a thread and
    // silently skips the rest, so a root that lived through the whole
    // measurement would time the skipping: a new root every 1,000 spans
    // (its cost spread over them).
    g.bench_function("fastrace_trace_fn_1000_per_root", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(1000);
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                {
                    let _g = root.set_local_parent();
                    for _ in 0..n {
                        fastrace_work(black_box(1));
                    }
                }
                drop(root);
                left -= n;
            }
            start.elapsed()
        })
    });

    // Unsampled: a child of an unsampled caller (what a service with
    // parent-based sampling does for most requests), and a root that the
    // sampler declines.
    let caller = SpanContext::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        None,
    )
    .unwrap();
    let parent = global
        .span("request")
        .parent(Parent::Context(caller))
        .start();
    {
        let _in = parent.enter();
        g.bench_function("cortex_traced_fn_unsampled", |b| {
            b.iter(|| cortex_work(black_box(1)))
        });
    }
    let off = Tracer::builder().sampler(Sampler::AlwaysOff).build();
    g.bench_function("cortex_root_unsampled", |b| {
        b.iter(|| drop(off.start("work")))
    });
    g.bench_function("baseline_plain_fn", |b| {
        #[inline(never)]
        fn plain(x: u64) -> u64 {
            black_box(x)
        }
        b.iter(|| plain(black_box(1)))
    });
    g.finish();
}

/// Drops what the OpenTelemetry SDK's batch processor hands it.
#[derive(Debug)]
struct OtelDiscard;

impl opentelemetry_sdk::trace::SpanExporter for OtelDiscard {
    fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        black_box(batch.len());
        std::future::ready(Ok(()))
    }
}

/// The same `tracing` span (a field, an event inside) made into an
/// exported span by Cortex's `TracingLayer` and by `tracing-opentelemetry`
/// with the OpenTelemetry SDK's batch processor, both sampling every span.
fn bridges(c: &mut Criterion) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    let work = || {
        let span = tracing::info_span!("query", db.rows = 3);
        let _in = span.enter();
        tracing::info!("done");
    };
    let mut g = c.benchmark_group("tracing_bridge");
    let cortex = tracing_subscriber::registry().with(cortex::trace::TracingLayer::global());
    tracing::subscriber::with_default(cortex, || {
        for _ in 0..100_000 {
            work();
        }
        g.bench_function("cortex_tracing_layer", |b| b.iter(work));
    });
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(OtelDiscard)
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
        .build();
    let otel = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::with_default(otel, || {
        for _ in 0..100_000 {
            work();
        }
        g.bench_function("tracing_opentelemetry", |b| b.iter(work));
    });
    g.finish();
    let _ = provider.shutdown();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(3);
    targets = spans, bridges
}
criterion_main!(benches);
