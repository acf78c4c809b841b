//! Tail sampling under load: a big kept trace is exported whole, held spans
//! come out at a flush and at shutdown, and a trace whose root never ends
//! is decided on time, with no other traffic.

use std::time::Duration;

use cortex::trace::{InMemoryExporter, Sampler, Status, TailSampling, Tracer};
use cortex_tests::spans::{dropped, names};

#[test]
fn a_kept_trace_of_five_thousand_spans_is_exported_whole_in_batches() {
    let exporter = InMemoryExporter::default();
    // The default queue: 2,048 spans per thread, batches of 512.
    let tracer = Tracer::builder()
        .sampler(Sampler::AlwaysOn)
        .tail_sampling(TailSampling::new(Duration::from_secs(60), 0.0))
        .exporter(exporter.clone())
        .build();
    let full_before = dropped("queue_full");
    let mut root = tracer.start("batch job");
    {
        let _in = root.enter();
        for _ in 0..5_000 {
            tracer.start("item");
        }
    }
    root.set_status(Status::Error("one item failed".into()));
    root.end();
    assert!(tracer.force_flush());
    let spans = exporter.spans();
    assert_eq!(spans.len(), 5_001, "the whole trace, not a ring's worth");
    assert_eq!(dropped("queue_full"), full_before);
    let sizes = exporter.batch_sizes();
    assert!(sizes.iter().all(|&n| n <= 512), "bounded steps: {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 5_001);
}

#[test]
fn held_spans_come_out_at_a_flush_and_the_late_root_follows() {
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .tail_sampling(TailSampling::new(Duration::from_secs(60), 0.0))
        .exporter(exporter.clone())
        .build();
    let root = tracer.start("still open");
    {
        let _in = root.enter();
        let mut failed = tracer.start("failed child");
        failed.set_status(Status::Error("boom".into()));
    }
    let healthy_root = tracer.start("healthy, open");
    {
        let _in = healthy_root.enter();
        tracer.start("healthy child");
    }
    assert!(tracer.force_flush());
    let got = names(&exporter);
    assert_eq!(
        got,
        ["failed child"],
        "the failing trace is kept, the healthy not"
    );
    drop(root);
    drop(healthy_root);
    assert!(tracer.force_flush());
    let got = names(&exporter);
    assert_eq!(got, ["failed child", "still open"]);
}

#[test]
fn held_spans_come_out_at_shutdown() {
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .tail_sampling(TailSampling::new(Duration::from_secs(60), 1.0))
        .exporter(exporter.clone())
        .build();
    let root = tracer.start("open at shutdown");
    {
        let _in = root.enter();
        tracer.start("child");
    }
    assert!(tracer.shutdown_blocking());
    let got = names(&exporter);
    assert_eq!(got, ["child"]);
    std::mem::forget(root);
}

#[test]
fn a_trace_whose_root_never_ends_is_decided_on_time_without_traffic() {
    let exporter = InMemoryExporter::default();
    let mut tail = TailSampling::new(Duration::from_secs(60), 0.0);
    tail.max_hold = Duration::from_millis(200);
    let tracer = Tracer::builder()
        .tail_sampling(tail)
        .exporter(exporter.clone())
        .batch_delay(Duration::from_millis(100))
        .build();
    let root = tracer.start("lost root");
    {
        let _in = root.enter();
        let mut child = tracer.start("orphan");
        child.set_status(Status::Error("boom".into()));
    }
    // No flush, no other trace: the export thread's own sweep finds it.
    let mut waited = Duration::ZERO;
    while exporter.spans().is_empty() && waited < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    let got = names(&exporter);
    assert_eq!(got, ["orphan"]);
    std::mem::forget(root);
}
