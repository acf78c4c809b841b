//! The global tracer of a test binary (installed once, exporting to
//! memory) and the spans of one trace started by a test.

use std::sync::LazyLock;

use cortex::trace::{InMemoryExporter, SpanData, Tracer};

static INSTALLED: LazyLock<(Tracer, InMemoryExporter)> = LazyLock::new(|| {
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .service_name("cortex-tests")
        .exporter(exporter.clone())
        .install()
        .expect("installed once per test binary");
    (tracer, exporter)
});

/// The binary's global tracer and where it exports to; tests tell their
/// spans apart by trace id.
pub fn installed() -> &'static (Tracer, InMemoryExporter) {
    &INSTALLED
}

/// Runs `f` inside a fresh root span ("test root") and returns that root
/// and every other exported span of its trace.
pub fn in_trace(f: impl FnOnce()) -> (SpanData, Vec<SpanData>) {
    let (tracer, exporter) = installed();
    let root = tracer.start("test root");
    let trace_id = root.context().trace_id().expect("the root is sampled");
    {
        let _in = root.enter();
        f();
    }
    drop(root);
    tracer.force_flush();
    let mut spans: Vec<SpanData> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let pos = spans
        .iter()
        .position(|s| s.name == "test root")
        .expect("the root was exported");
    let root = spans.remove(pos);
    (root, spans)
}

/// The span called `name`.
pub fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}: {spans:#?}"))
}

/// The names of the spans `exporter` has, in export order.
pub fn names(exporter: &InMemoryExporter) -> Vec<String> {
    exporter
        .spans()
        .into_iter()
        .map(|s| s.name.into_owned())
        .collect()
}

/// `cortex_trace_spans_dropped_total{reason}` in the global registry.
pub fn dropped(reason: &str) -> u64 {
    crate::sample(&format!(
        "cortex_trace_spans_dropped_total{{reason=\"{reason}\"}}"
    ))
    .map_or(0, |v| v as u64)
}

/// One ended span named `one`, from a tracer of its own (for exporter
/// tests that need something to send).
pub fn one_span() -> Vec<SpanData> {
    let memory = InMemoryExporter::default();
    let tracer = Tracer::builder().exporter(memory.clone()).build();
    tracer.start("one").end();
    tracer.force_flush();
    memory.spans()
}
