//! `#[traced]`, server spans and exemplars, through the global tracer (one
//! per test binary: installed once here, spans told apart by trace id).

use cortex::metrics::{global as metrics, Format};
use cortex::trace::{self, SpanKind, Status, Value};
use cortex_tests::spans::{in_trace, installed, named};
use cortex_tests::{openmetrics_parse, raw, Verdict};

#[derive(Debug)]
struct CardDeclined {
    code: u16,
}

impl std::fmt::Display for CardDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "card declined ({})", self.code)
    }
}

impl std::error::Error for CardDeclined {}

#[derive(Debug)]
struct DebugOnly(#[allow(dead_code)] &'static str);

#[cortex::traced]
fn inner() -> u32 {
    7
}

#[cortex::traced(name = "outer work", kind = "client", attributes(user.id = user, "card.last4" = &card[card.len() - 4..], items = items.len()))]
fn outer(user: u64, card: &str, items: Vec<u8>) -> u32 {
    inner() + items.len() as u32
}

#[cortex::traced]
fn charge(amount: u64) -> Result<u64, CardDeclined> {
    if amount > 100 {
        Err(CardDeclined { code: 51 })
    } else {
        Ok(amount)
    }
}

#[cortex::traced]
fn debug_error() -> Result<(), DebugOnly> {
    Err(DebugOnly("no display"))
}

type Alias<T> = std::io::Result<T>;

#[cortex::traced]
fn aliased() -> Alias<()> {
    Err(std::io::Error::other("via an alias"))
}

#[cortex::traced]
fn panics() {
    panic!("boom");
}

#[test]
fn names_kinds_and_attributes() {
    let (root, spans) = in_trace(|| {
        assert_eq!(outer(42, "4111111111111111", vec![1, 2, 3]), 10);
    });
    let outer = named(&spans, "outer work");
    let inner = named(&spans, "trace_macros::inner");
    assert_eq!(outer.parent_span_id, Some(root.span_id));
    assert_eq!(inner.parent_span_id, Some(outer.span_id));
    assert_eq!(outer.kind, SpanKind::Client);
    assert_eq!(inner.kind, SpanKind::Internal);
    assert_eq!(outer.attribute("user.id"), Some(&Value::I64(42)));
    assert_eq!(outer.attribute("card.last4"), Some(&Value::from("1111")));
    assert_eq!(outer.attribute("items"), Some(&Value::I64(3)));
    // Only what was named: no argument is captured by itself.
    assert_eq!(outer.attributes.len(), 3);
    assert!(inner.attributes.is_empty());
    assert_eq!(outer.status, Status::Unset);
}

#[test]
fn an_err_sets_error_status_and_records_the_exception() {
    let (_, spans) = in_trace(|| {
        charge(5).unwrap();
        charge(500).unwrap_err();
        debug_error().unwrap_err();
        aliased().unwrap_err();
    });
    let charges: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "trace_macros::charge")
        .collect();
    assert_eq!(charges.len(), 2);
    let ok = charges.iter().find(|s| s.events.is_empty()).unwrap();
    assert_eq!(ok.status, Status::Unset);
    let failed = charges.iter().find(|s| !s.events.is_empty()).unwrap();
    assert_eq!(failed.status, Status::Error("card declined (51)".into()));
    let e = &failed.events[0];
    assert_eq!(e.name, "exception");
    assert_eq!(
        e.attributes[0].value,
        Value::from("trace_macros::CardDeclined")
    );
    assert_eq!(e.attributes[1].value, Value::from("card declined (51)"));
    // Debug-only errors and Result aliases are recognised too.
    let d = named(&spans, "trace_macros::debug_error");
    assert_eq!(d.status, Status::Error("DebugOnly(\"no display\")".into()));
    let a = named(&spans, "trace_macros::aliased");
    assert_eq!(a.status, Status::Error("via an alias".into()));
}

#[test]
fn a_panic_sets_error_status_and_unwinds_the_context() {
    let (root, spans) = in_trace(|| {
        let caught = std::panic::catch_unwind(panics);
        assert!(caught.is_err());
        // The panicking span is no longer current: this one is the root's child.
        inner();
    });
    let p = named(&spans, "trace_macros::panics");
    assert_eq!(p.status, Status::Error("the function panicked".into()));
    assert_eq!(
        named(&spans, "trace_macros::inner").parent_span_id,
        Some(root.span_id)
    );
}

#[cortex::traced]
async fn fetch(id: u64) -> u64 {
    tokio::task::yield_now().await;
    lookup(id).await
}

#[cortex::traced(kind = "client")]
async fn lookup(id: u64) -> u64 {
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    inner();
    id * 2
}

struct Repo {
    base: u64,
}

impl Repo {
    #[cortex::traced(attributes(base = self.base))]
    async fn get(&self, n: u64) -> Result<u64, CardDeclined> {
        tokio::task::yield_now().await;
        Ok(self.base + fetch(n).await)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_spans_nest_across_await_and_threads() {
    let (tracer, exporter) = installed();
    let root = tracer.start("async root");
    let trace_id = root.context().trace_id().unwrap();
    let repo = Repo { base: 100 };
    let work = async {
        let mut handles = Vec::new();
        for i in 0..4 {
            handles.push(trace::spawn(async move { fetch(i).await }));
        }
        let direct = repo.get(1).await.unwrap();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        (direct, sum)
    };
    let fut = {
        let _in = root.enter();
        trace::in_current_span(work)
    };
    assert_eq!(fut.await, (102, 12));
    let root_id = root.context().span_id().unwrap();
    drop(root);
    tracer.force_flush();
    let spans: Vec<_> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let fetches: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "trace_macros::fetch")
        .collect();
    assert_eq!(fetches.len(), 5);
    let get = named(&spans, "trace_macros::get");
    assert_eq!(get.attribute("base"), Some(&Value::I64(100)));
    assert_eq!(get.parent_span_id, Some(root_id));
    for f in &fetches {
        assert!(
            f.parent_span_id == Some(root_id) || f.parent_span_id == Some(get.span_id),
            "{f:?}"
        );
        let lookup = spans
            .iter()
            .find(|s| s.name == "trace_macros::lookup" && s.parent_span_id == Some(f.span_id))
            .expect("each fetch has its lookup");
        assert_eq!(lookup.kind, SpanKind::Client);
        assert!(spans
            .iter()
            .any(|s| s.name == "trace_macros::inner" && s.parent_span_id == Some(lookup.span_id)));
    }
    assert_eq!(
        fetches
            .iter()
            .filter(|f| f.parent_span_id == Some(root_id))
            .count(),
        4,
        "the four spawned"
    );
}

// The recommended order: the span outermost, so the metrics recorded
// inside it carry it as their exemplar.
#[cortex::traced]
#[cortex::counted]
#[cortex::timed(buckets = [0.001, 0.1, 10.0])]
fn measured() -> u32 {
    1
}

// Counted outside its span: the count is made after the span ended, in
// the caller's span.
#[cortex::counted(name = "exemplar_order_total")]
#[cortex::traced]
fn counted_first() -> u32 {
    2
}

#[test]
fn counted_and_timed_samples_carry_exemplars() {
    let (root, spans) = in_trace(|| {
        measured();
        counted_first();
    });
    let m = named(&spans, "trace_macros::measured");
    let c = named(&spans, "trace_macros::counted_first");
    let text = metrics().encode(Format::OpenMetrics);
    let exemplar_of = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    let counted = exemplar_of(
        r#"cortex_function_calls_total{function="measured",module="trace_macros",result="ok"} 1 # {trace_id=""#,
    );
    assert!(
        counted.contains(&format!(
            "trace_id=\"{}\",span_id=\"{}\"}} 1 ",
            m.trace_id, m.span_id
        )),
        "{counted}"
    );
    let bucket = exemplar_of(
        r#"cortex_function_duration_seconds_bucket{function="measured",module="trace_macros",le="0.001"} 1 # "#,
    );
    assert!(
        bucket.contains(&format!("span_id=\"{}\"", m.span_id)),
        "{bucket}"
    );
    // Written the other way round, the attribute written first is the
    // outer layer: the count sees the caller's span, not the function's.
    let other = exemplar_of(
        r#"exemplar_order_total{function="counted_first",module="trace_macros",result="ok"} 1 # "#,
    );
    assert!(
        other.contains(&format!("span_id=\"{}\"", root.span_id)),
        "{other}"
    );
    assert!(
        !other.contains(&format!("span_id=\"{}\"", c.span_id)),
        "{other}"
    );
    // The text format has no exemplars.
    assert!(!metrics()
        .encode(Format::PrometheusText)
        .contains("trace_id"));
    match openmetrics_parse(&text) {
        Verdict::Accepted | Verdict::Unavailable => {}
        Verdict::Refused(why) => panic!("the OpenMetrics parser refused exemplars: {why}"),
    }
}

#[cortex::traced(kind = "internal")]
async fn handler_work() -> &'static str {
    "ok"
}

async fn order(_req: cortex::http::Request) -> cortex::http::Response {
    let body = handler_work().await;
    // The handler runs in the server span: outgoing calls carry it.
    let (parent, _) = trace::outgoing_headers().expect("inside the server span");
    cortex::http::text(cortex::http::StatusCode::OK, format!("{body} {parent}"))
}

async fn fail(_req: cortex::http::Request) -> cortex::http::Response {
    cortex::http::text(cortex::http::StatusCode::SERVICE_UNAVAILABLE, "down")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_continues_the_callers_trace() {
    let (tracer, exporter) = installed();
    let server = cortex::http::Server::new()
        .route(cortex::http::Method::GET, "/orders/{id}", order)
        .unwrap()
        .route(cortex::http::Method::GET, "/fail", fail)
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = raw::get(
        addr,
        "/orders/7",
        &[&format!("traceparent: {caller}"), "tracestate: vendor=abc"],
    )
    .await;
    assert_eq!(r.status, 200);
    let bad = raw::get(addr, "/fail", &["traceparent: 00-garbage"]).await;
    assert_eq!(bad.status, 503);
    tracer.force_flush();
    let spans = exporter.spans();
    let server_span = spans
        .iter()
        .find(|s| s.name == "GET /orders/{id}")
        .expect("a server span named after the route");
    assert_eq!(server_span.kind, SpanKind::Server);
    assert_eq!(
        server_span.trace_id.to_hex(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(
        server_span.parent_span_id.unwrap().to_hex(),
        "b7ad6b7169203331"
    );
    assert!(server_span.parent_is_remote);
    assert_eq!(server_span.trace_state.as_deref(), Some("vendor=abc"));
    assert_eq!(
        server_span.attribute("http.request.method"),
        Some(&Value::from("GET"))
    );
    assert_eq!(
        server_span.attribute("http.route"),
        Some(&Value::from("/orders/{id}"))
    );
    assert_eq!(
        server_span.attribute("url.path"),
        Some(&Value::from("/orders/7"))
    );
    assert_eq!(
        server_span.attribute("http.response.status_code"),
        Some(&Value::I64(200))
    );
    let work = spans
        .iter()
        .find(|s| s.name == "trace_macros::handler_work" && s.trace_id == server_span.trace_id)
        .expect("the handler's span");
    assert_eq!(work.parent_span_id, Some(server_span.span_id));
    // What the handler would send on: the same trace, the server span as parent.
    let body = r.body.clone();
    assert_eq!(
        body,
        format!(
            "ok 00-0af7651916cd43dd8448eb211c80319c-{}-01",
            server_span.span_id
        )
    );
    // An invalid traceparent is ignored: a new trace, a 5xx is an error.
    let failed = spans.iter().find(|s| s.name == "GET /fail").unwrap();
    assert_eq!(failed.parent_span_id, None);
    assert_eq!(failed.status, Status::Error("HTTP 503".into()));
    server.shutdown(std::time::Duration::from_secs(1)).await;
}

#[test]
fn inject_writes_traceparent_for_the_current_span() {
    let (tracer, _) = installed();
    let mut headers = cortex::http::HeaderMap::new();
    trace::inject(&mut headers);
    assert!(headers.is_empty(), "no span, no header");
    let span = tracer.start("client call");
    let _in = span.enter();
    trace::inject(&mut headers);
    assert_eq!(
        headers.get("traceparent").unwrap().to_str().unwrap(),
        span.context().to_traceparent()
    );
    let cx = trace::extract(&headers).unwrap();
    assert_eq!(cx.trace_id(), span.context().trace_id());
}

#[cortex::traced]
async fn never_finishes() {
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_cancelled_async_call_still_ends_its_span() {
    let (tracer, exporter) = installed();
    let root = tracer.start("cancel root");
    let trace_id = root.context().trace_id().unwrap();
    let fut = {
        let _in = root.enter();
        trace::in_current_span(never_finishes())
    };
    // Polled once (it starts its span), then dropped, as a timeout would.
    let outcome = tokio::time::timeout(std::time::Duration::from_millis(1), fut).await;
    assert!(outcome.is_err());
    drop(root);
    tracer.force_flush();
    let span = exporter
        .spans()
        .into_iter()
        .find(|s| s.trace_id == trace_id && s.name == "trace_macros::never_finishes")
        .expect("the span of the cancelled call");
    assert_eq!(span.attribute("cortex.cancelled"), Some(&Value::Bool(true)));
    assert_eq!(span.status, Status::Unset);
}

// ---- functions returning `impl Future`, and `-> !` ----

struct Feed;

trait Source {
    fn pull(&self) -> impl std::future::Future<Output = u32> + Send;
}

impl Source for Feed {
    #[cortex::traced]
    fn pull(&self) -> impl std::future::Future<Output = u32> + Send {
        async move {
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_millis(5));
            inner()
        }
    }
}

#[cortex::traced]
fn diverges() -> ! {
    panic!("never returns")
}

#[test]
fn a_trailing_async_block_runs_inside_its_span() {
    let (root, spans) = in_trace(|| {
        let fut = Feed.pull();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(fut), 7);
    });
    let pull = named(&spans, "trace_macros::pull");
    assert_eq!(pull.parent_span_id, Some(root.span_id));
    // The work ran inside the span: its child, and its duration.
    let child = named(&spans, "trace_macros::inner");
    assert_eq!(child.parent_span_id, Some(pull.span_id));
    assert!(pull.end_unix_nanos - pull.start_unix_nanos >= 5_000_000);
}

#[test]
fn a_never_returning_function_ends_its_span_with_the_panic() {
    let (_, spans) = in_trace(|| {
        assert!(std::panic::catch_unwind(|| diverges()).is_err());
    });
    let d = named(&spans, "trace_macros::diverges");
    assert_eq!(d.status, Status::Error("the function panicked".into()));
}
