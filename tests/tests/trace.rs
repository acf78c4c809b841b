//! Spans, context, sampling, W3C Trace Context and the export pipeline,
//! with tracers built per test (the global tracer is in `trace_macros.rs`).

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use cortex::trace::{
    self, ExportError, InMemoryExporter, Parent, Sampler, SpanContext, SpanData, SpanExporter,
    SpanKind, Status, TailSampling, TraceId, Tracer, Value,
};
use cortex_tests::spans::dropped;
use cortex_tests::vars;

fn tracer(sampler: Sampler) -> (Tracer, InMemoryExporter) {
    let exporter = InMemoryExporter::default();
    // Room for every span the tests end in a burst (drops have their own
    // test).
    let tracer = Tracer::builder()
        .service_name("test")
        .sampler(sampler)
        .exporter(exporter.clone())
        .queue_capacity(20_000)
        .build();
    (tracer, exporter)
}

fn by_name<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

#[test]
fn ids_are_random_and_never_zero() {
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        let t = TraceId::random();
        assert_ne!(t.to_u128(), 0);
        assert!(seen.insert(t), "repeated trace id");
    }
    assert_eq!(TraceId::from_u128(0), None);
    assert_eq!(TraceId::from_hex(&"0".repeat(32)), None);
    let t = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    assert_eq!(t.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn nested_sync_spans_are_parent_and_child() {
    let (tracer, exporter) = tracer(Sampler::AlwaysOn);
    {
        let root = tracer.start("root");
        let _in_root = root.enter();
        {
            let child = tracer.start("child");
            let _in_child = child.enter();
            let _grandchild = tracer.start("grandchild");
        }
        let _sibling = tracer.start("sibling");
    }
    let _unrelated = tracer.start("after");
    drop(_unrelated);
    tracer.force_flush();
    let spans = exporter.spans();
    let root = by_name(&spans, "root");
    let child = by_name(&spans, "child");
    assert_eq!(root.parent_span_id, None);
    assert_eq!(child.parent_span_id, Some(root.span_id));
    assert_eq!(
        by_name(&spans, "grandchild").parent_span_id,
        Some(child.span_id)
    );
    assert_eq!(
        by_name(&spans, "sibling").parent_span_id,
        Some(root.span_id)
    );
    for name in ["child", "grandchild", "sibling"] {
        assert_eq!(by_name(&spans, name).trace_id, root.trace_id);
    }
    let after = by_name(&spans, "after");
    assert_eq!(after.parent_span_id, None, "the root's guard was dropped");
    assert_ne!(after.trace_id, root.trace_id);
    assert!(trace::current().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_children_follow_their_parent_across_await_and_spawn() {
    let (tracer, exporter) = tracer(Sampler::AlwaysOn);
    let root = tracer.start("request");
    let root_id = root.context().span_id().unwrap();
    let work = async move {
        for i in 0..20 {
            // Each yield may resume on the other worker thread.
            tokio::task::yield_now().await;
            let _step = tracer.start(format!("step {i}"));
        }
        // A spawned task stays in the trace when spawned through the helper,
        let handle = trace::spawn(async move {
            tokio::task::yield_now().await;
            tracer.start("spawned").end();
        });
        // and does not when spawned bare.
        let bare = tokio::spawn(async move { tracer.start("bare").end() });
        handle.await.unwrap();
        bare.await.unwrap();
    };
    let active = {
        let _in = root.enter();
        trace::in_current_span(work)
    };
    active.await;
    drop(root);
    // Outside the instrumented future, nothing is current on this thread.
    assert!(trace::current().is_none());
    tracer.force_flush();
    let spans = exporter.spans();
    for i in 0..20 {
        assert_eq!(
            by_name(&spans, &format!("step {i}")).parent_span_id,
            Some(root_id)
        );
    }
    assert_eq!(by_name(&spans, "spawned").parent_span_id, Some(root_id));
    assert_eq!(by_name(&spans, "bare").parent_span_id, None);
}

#[test]
fn a_span_is_immutable_once_ended() {
    let (tracer, exporter) = tracer(Sampler::AlwaysOn);
    let mut span = tracer
        .span("pay")
        .kind(SpanKind::Client)
        .attribute("amount", 12)
        .start();
    span.set_attribute("currency", "EUR");
    span.add_event("authorised", vec![trace::KeyValue::new("code", "A1")]);
    let err = std::io::Error::new(std::io::ErrorKind::TimedOut, "bank timed out");
    span.record_exception(&err);
    span.end();
    span.set_attribute("late", true);
    span.set_status(Status::Ok);
    span.add_event("late", vec![]);
    span.end();
    drop(span);
    tracer.force_flush();
    let spans = exporter.spans();
    assert_eq!(spans.len(), 1, "ended once");
    let s = &spans[0];
    assert_eq!(s.kind, SpanKind::Client);
    assert_eq!(s.attribute("amount"), Some(&Value::I64(12)));
    assert_eq!(s.attribute("currency"), Some(&Value::from("EUR")));
    assert_eq!(s.attribute("late"), None);
    assert_eq!(s.status, Status::Error("bank timed out".into()));
    assert_eq!(s.events.len(), 2);
    let exception = &s.events[1];
    assert_eq!(exception.name, "exception");
    assert_eq!(
        exception.attributes[0],
        trace::KeyValue::new("exception.type", "std::io::error::Error")
    );
    assert_eq!(
        exception.attributes[1],
        trace::KeyValue::new("exception.message", "bank timed out")
    );
    assert!(s.start_unix_nanos > 0 && s.end_unix_nanos >= s.start_unix_nanos);
}

#[test]
fn ratio_sampling_is_within_bounds_and_the_same_everywhere() {
    let ratio = 0.25;
    let (tracer, exporter) = tracer(Sampler::Ratio(ratio));
    let mut sampled = 0;
    for _ in 0..10_000 {
        let span = tracer.start("t");
        if span.context().is_sampled() {
            sampled += 1;
        }
    }
    // Binomial(10000, 0.25): sd = 43.3; 5 sd either side.
    assert!(
        (2284..=2716).contains(&sampled),
        "{sampled} of 10000 sampled"
    );
    tracer.force_flush();
    assert_eq!(exporter.spans().len(), sampled);
    // Decided from the trace id: another service makes the same choice.
    let other = Sampler::Ratio(ratio);
    for _ in 0..1000 {
        let id = TraceId::random().to_u128();
        assert_eq!(
            Sampler::Ratio(ratio).should_sample(None, id),
            other.should_sample(None, id)
        );
    }
    assert!(!Sampler::Ratio(0.0).should_sample(None, u128::MAX));
    assert!(Sampler::Ratio(1.0).should_sample(None, 1));
    // Children of a ratio-sampled root share its decision.
    let (tracer, _) = self::tracer(Sampler::Ratio(0.5));
    for _ in 0..200 {
        let root = tracer.start("root");
        let _in = root.enter();
        let child = tracer.start("child");
        assert_eq!(child.context().is_sampled(), root.context().is_sampled());
    }
}

#[test]
fn parent_based_follows_the_callers_flag() {
    let (tracer, exporter) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    let yes = SpanContext::from_traceparent(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        None,
    )
    .unwrap();
    let no = SpanContext::from_traceparent(
        "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-00",
        None,
    )
    .unwrap();
    let kept = tracer
        .span("kept")
        .parent(Parent::Context(yes.clone()))
        .start();
    let dropped = tracer.span("dropped").parent(Parent::Context(no)).start();
    let root = tracer.start("root");
    assert!(kept.is_recording());
    assert!(!dropped.is_recording());
    assert!(!root.is_recording(), "roots ask AlwaysOff");
    // An unsampled span still propagates: same trace, new span id.
    assert!(dropped.context().is_valid());
    assert_ne!(dropped.context().span_id(), no_span());
    drop((kept, dropped, root));
    tracer.force_flush();
    let spans = exporter.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].trace_id, yes.trace_id().unwrap());
    assert_eq!(spans[0].parent_span_id, yes.span_id());
    assert!(spans[0].parent_is_remote);
}

fn no_span() -> Option<trace::SpanId> {
    trace::SpanId::from_hex("b7ad6b7169203331")
}

#[test]
fn tail_sampling_keeps_every_error_and_slow_trace() {
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .sampler(Sampler::AlwaysOn)
        .tail_sampling(TailSampling::new(Duration::from_millis(500), 0.0))
        .exporter(exporter.clone())
        .queue_capacity(20_000)
        .build();
    let mut want = HashSet::new();
    for i in 0..300 {
        let slow = i % 7 == 0;
        let failing = i % 5 == 0;
        let mut root = if slow {
            // Started a second ago: its duration passes the threshold.
            tracer
                .span("root")
                .start_time(SystemTime::now() - Duration::from_secs(1))
                .start()
        } else {
            tracer.start("root")
        };
        {
            let _in = root.enter();
            let mut child = tracer.start("child");
            let _grandchild = tracer.start("grandchild");
            if failing {
                child.set_status(Status::Error("boom".into()));
            }
        }
        if slow || failing {
            want.insert(root.context().trace_id().unwrap());
        }
        root.end();
    }
    tracer.force_flush();
    let spans = exporter.spans();
    let got: HashSet<_> = spans.iter().map(|s| s.trace_id).collect();
    assert_eq!(got, want, "exactly the error and slow traces");
    // Whole traces: root, child and grandchild each.
    assert_eq!(spans.len(), want.len() * 3);

    // keep_ratio keeps about that share of the healthy rest.
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .tail_sampling(TailSampling::new(Duration::from_secs(60), 0.3))
        .exporter(exporter.clone())
        .queue_capacity(20_000)
        .build();
    for _ in 0..2000 {
        let root = tracer.start("root");
        let _in = root.enter();
        tracer.start("child");
    }
    tracer.force_flush();
    let kept = exporter.spans().len() / 2;
    // Binomial(2000, 0.3): sd = 20.5; 5 sd either side.
    assert!((497..=703).contains(&kept), "{kept} of 2000 kept");
}

#[test]
fn tail_sampling_follows_the_decision_for_spans_ending_after_their_root() {
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .tail_sampling(TailSampling::new(Duration::from_secs(60), 0.0))
        .exporter(exporter.clone())
        .queue_capacity(20_000)
        .build();
    // A failing trace whose child outlives the root (a spawned task, say).
    let mut kept_root = tracer.start("kept root");
    let late_kept = {
        let _in = kept_root.enter();
        tracer.start("late child of kept")
    };
    kept_root.set_status(Status::Error("boom".into()));
    kept_root.end();
    drop(late_kept);
    // A healthy trace, not kept: its late child is not kept either.
    let healthy_root = tracer.start("healthy root");
    let late_dropped = {
        let _in = healthy_root.enter();
        tracer.start("late child of healthy")
    };
    drop(healthy_root);
    drop(late_dropped);
    tracer.force_flush();
    let names: HashSet<_> = exporter.spans().into_iter().map(|s| s.name).collect();
    assert!(
        names.contains("kept root") && names.contains("late child of kept"),
        "{names:?}"
    );
    assert!(!names.contains("healthy root") && !names.contains("late child of healthy"));
}

#[test]
fn traceparent_vectors() {
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let cx = SpanContext::from_traceparent(valid, Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
        .unwrap();
    assert_eq!(cx.to_traceparent(), valid);
    assert!(cx.is_sampled());
    assert_eq!(
        cx.trace_state(),
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    );
    let unsampled = SpanContext::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        None,
    )
    .unwrap();
    assert!(!unsampled.is_sampled());
    // Flags other than sampled are not passed on.
    let other_flags = SpanContext::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
        None,
    )
    .unwrap();
    assert!(other_flags.to_traceparent().ends_with("-01"));
    // A future version with more fields is read for its first four.
    assert!(SpanContext::from_traceparent(
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
        None
    )
    .is_some());
    for bad in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",  // too short
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // 00 with extra
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", // separators
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", // bad hex
        "garbage",
        "",
        "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        assert!(
            SpanContext::from_traceparent(bad, None).is_none(),
            "accepted {bad:?}"
        );
    }
}

/// An exporter that says when a batch arrives and waits for the test's
/// go-ahead before taking it.
struct Gated {
    arrived: mpsc::Sender<usize>,
    go: mpsc::Receiver<()>,
    seen: InMemoryExporter,
}

impl SpanExporter for Gated {
    fn export(&mut self, batch: &[SpanData]) -> Result<(), ExportError> {
        let _ = self.arrived.send(batch.len());
        let _ = self.go.recv();
        self.seen.export(batch)
    }
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_growing() {
    let (go, gate) = mpsc::channel();
    let (arrived_tx, arrived) = mpsc::channel();
    let seen = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .exporter(Gated {
            arrived: arrived_tx,
            go: gate,
            seen: seen.clone(),
        })
        .queue_capacity(8)
        .max_batch(4)
        .build();
    let before = dropped("queue_full");
    // A thread wakes the export thread every quarter ring (2 spans here):
    // it takes them and stops at the gate with them.
    for _ in 0..2 {
        tracer.start("first").end();
    }
    assert_eq!(arrived.recv_timeout(Duration::from_secs(10)).unwrap(), 2);
    // Nobody drains now: 8 fit, the other 92 are dropped and counted.
    for _ in 0..100 {
        tracer.start("burst").end();
    }
    assert_eq!(dropped("queue_full") - before, 92);
    for _ in 0..10 {
        let _ = go.send(());
    }
    tracer.force_flush();
    assert_eq!(seen.spans().len(), 10, "the first 2 and the 8 queued");
}

#[test]
fn batches_are_bounded_and_shutdown_flushes() {
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .exporter(exporter.clone())
        .max_batch(16)
        .batch_delay(Duration::from_secs(3600))
        .build();
    for i in 0..100 {
        tracer.start(format!("s{i}")).end();
    }
    tracer.shutdown_blocking();
    assert_eq!(exporter.spans().len(), 100, "shutdown exported everything");
    assert!(
        exporter.batch_sizes().iter().all(|&n| n <= 16),
        "{:?}",
        exporter.batch_sizes()
    );
    // After shutdown, spans are dropped and counted.
    let before = dropped("shutdown");
    tracer.start("late").end();
    assert_eq!(dropped("shutdown"), before + 1);
    assert_eq!(exporter.spans().len(), 100);
}

#[test]
fn configuration_from_the_standard_variables() {
    let b = Tracer::builder()
        .from_vars(vars(&[
            ("OTEL_SERVICE_NAME", "checkout"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ]))
        .unwrap();
    let text = format!("{b:?}");
    assert!(text.contains("\"checkout\""), "{text}");
    assert!(text.contains("ParentBased(Ratio(0.1))"), "{text}");
    assert!(text.contains("exporter: true"), "{text}");

    let err = Tracer::builder()
        .from_vars(vars(&[("OTEL_TRACES_SAMPLER", "sometimes")]))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("OTEL_TRACES_SAMPLER=\"sometimes\": expected always_on"),
        "{err}"
    );
    let err = Tracer::builder()
        .from_vars(vars(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ]))
        .unwrap_err();
    assert!(err.to_string().contains("from 0 to 1"), "{err}");
    // https needs the `tls` feature, which these tests build with.
    assert!(Tracer::builder()
        .from_vars(vars(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://saas.example",
        )]))
        .is_ok());
    let err = Tracer::builder()
        .from_vars(vars(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:99999",
        )]))
        .unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    // Nothing set: the defaults.
    let b = Tracer::builder().from_vars(|_| None).unwrap();
    assert!(format!("{b:?}").contains("exporter: false"));
}

#[test]
fn a_span_ended_while_thread_locals_are_destroyed_does_not_abort() {
    use std::cell::RefCell;
    thread_local! {
        static HELD: RefCell<Option<cortex::trace::Span>> = const { RefCell::new(None) };
    }
    let (tracer, exporter) = tracer(Sampler::AlwaysOn);
    let held_tracer = tracer;
    std::thread::spawn(move || {
        // `HELD` is registered first, so its destructor runs after those of
        // the tracer's own thread locals (made by the span ended below):
        // the held span ends when the tracer's locals are already gone.
        HELD.with(|_| {});
        held_tracer.start("first").end();
        let late = held_tracer.start("ended at thread exit");
        HELD.with(|h| *h.borrow_mut() = Some(late));
    })
    .join()
    .expect("the thread exits cleanly");
    tracer.force_flush();
    let names: Vec<String> = exporter
        .spans()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert!(names.iter().any(|n| n == "first"), "{names:?}");
    assert!(
        names.iter().any(|n| n == "ended at thread exit"),
        "the late span is exported too: {names:?}"
    );
}

/// An exporter stuck on a collector that never answers.
struct Stuck;

impl SpanExporter for Stuck {
    fn export(&mut self, _batch: &[SpanData]) -> Result<(), ExportError> {
        std::thread::sleep(Duration::from_secs(10));
        Ok(())
    }
}

#[test]
fn flush_and_shutdown_give_up_at_their_deadlines() {
    let stuck = Tracer::builder()
        .exporter(Stuck)
        .force_flush_timeout(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_millis(200))
        .build();
    stuck.start("stuck span").end();
    let started = std::time::Instant::now();
    assert!(!stuck.force_flush(), "the flush could not finish");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    assert!(!stuck.shutdown_blocking(), "the shutdown gave up");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A tracer whose exporter answers flushes in time.
    let (fine, exporter) = tracer(Sampler::AlwaysOn);
    fine.start("fine span").end();
    assert!(fine.force_flush());
    assert_eq!(exporter.spans().len(), 1);
}
