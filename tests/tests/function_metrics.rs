//! `#[counted]` and `#[timed]`: what an annotated function records, in the
//! global registry, for every shape of function and every way a call ends.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::{Context, Waker};

use cortex::metrics::{global, Format};

const MODULE: &str = "function_metrics";

use cortex_tests::sample;

fn calls(function: &str, result: &str) -> Option<f64> {
    sample(&format!(
        "cortex_function_calls_total{{function=\"{function}\",module=\"{MODULE}\",result=\"{result}\"}}"
    ))
}

fn duration_count(function: &str) -> Option<f64> {
    sample(&format!(
        "cortex_function_duration_seconds_count{{function=\"{function}\",module=\"{MODULE}\"}}"
    ))
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

// ---- series exist before the first call ----

#[cortex::counted]
#[cortex::timed(track_in_flight)]
fn never_called_before_the_check() -> u32 {
    1
}

#[test]
fn series_exist_at_zero_before_any_call() {
    for result in ["ok", "error", "panic", "cancelled"] {
        assert_eq!(
            calls("never_called_before_the_check", result),
            Some(0.0),
            "result={result}"
        );
    }
    assert_eq!(duration_count("never_called_before_the_check"), Some(0.0));
    assert_eq!(
        sample(&format!(
            "cortex_function_calls_in_flight{{function=\"never_called_before_the_check\",module=\"{MODULE}\"}}"
        )),
        Some(0.0)
    );
    assert_eq!(never_called_before_the_check(), 1);
    assert_eq!(calls("never_called_before_the_check", "ok"), Some(1.0));
}

// ---- results ----

#[cortex::counted]
fn parse_port(s: &str) -> Result<u16, std::num::ParseIntError> {
    let port = s.parse()?;
    Ok(port)
}

#[cortex::counted]
fn io_alias(fail: bool) -> std::io::Result<()> {
    if fail {
        return Err(std::io::Error::other("disk on fire"));
    }
    Ok(())
}

#[test]
fn ok_and_error_follow_the_result() {
    parse_port("80").unwrap();
    parse_port("x").unwrap_err();
    parse_port("y").unwrap_err();
    assert_eq!(calls("parse_port", "ok"), Some(1.0));
    assert_eq!(calls("parse_port", "error"), Some(2.0));
    // A type alias of `Result` is still a `Result`.
    io_alias(true).unwrap_err();
    io_alias(false).unwrap();
    assert_eq!(calls("io_alias", "error"), Some(1.0));
    assert_eq!(calls("io_alias", "ok"), Some(1.0));
}

#[cortex::counted]
#[cortex::timed]
fn explodes(n: u32) -> u32 {
    if n > 1 {
        panic!("boom");
    }
    n
}

#[test]
fn a_panic_is_recorded_and_still_unwinds() {
    let caught = catch_unwind(|| explodes(2));
    assert!(caught.is_err(), "the panic reaches the caller unchanged");
    assert_eq!(explodes(1), 1);
    assert_eq!(calls("explodes", "panic"), Some(1.0));
    assert_eq!(calls("explodes", "ok"), Some(1.0));
    assert_eq!(
        duration_count("explodes"),
        Some(2.0),
        "panicking calls are timed too"
    );
}

#[cortex::counted]
#[cortex::timed]
async fn waits_forever() -> Result<(), ()> {
    std::future::pending::<()>().await;
    Ok(())
}

#[test]
fn a_dropped_future_counts_as_cancelled() {
    {
        let mut fut = pin!(waits_forever());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(calls("waits_forever", "cancelled"), Some(1.0));
    assert_eq!(calls("waits_forever", "ok"), Some(0.0));
    assert_eq!(duration_count("waits_forever"), Some(1.0));

    // A future dropped before its first poll never started: nothing recorded.
    drop(waits_forever());
    assert_eq!(calls("waits_forever", "cancelled"), Some(1.0));
}

#[cortex::counted]
async fn async_panics() -> u8 {
    panic!("async boom")
}

#[test]
fn an_async_panic_is_recorded() {
    let caught = catch_unwind(AssertUnwindSafe(|| block_on(async_panics())));
    assert!(caught.is_err());
    assert_eq!(calls("async_panics", "panic"), Some(1.0));
}

// ---- timing ----

#[cortex::timed(buckets = [0.04, 10])]
async fn quick_async() {}

#[test]
fn async_time_runs_from_first_poll() {
    let fut = quick_async();
    // Time spent before the first poll is not the call's.
    std::thread::sleep(std::time::Duration::from_millis(60));
    block_on(fut);
    let le = |b: &str| {
        sample(&format!(
            "cortex_function_duration_seconds_bucket{{function=\"quick_async\",module=\"{MODULE}\",le=\"{b}\"}}"
        ))
    };
    assert_eq!(le("0.04"), Some(1.0));
    assert_eq!(le("10"), Some(1.0));
    assert_eq!(le("+Inf"), Some(1.0));
}

#[cortex::timed(track_in_flight)]
fn in_flight_probe() -> Option<f64> {
    sample(&format!(
        "cortex_function_calls_in_flight{{function=\"in_flight_probe\",module=\"{MODULE}\"}}"
    ))
}

#[test]
fn in_flight_gauge_counts_running_calls() {
    assert_eq!(in_flight_probe(), Some(1.0));
    assert_eq!(
        sample(&format!(
            "cortex_function_calls_in_flight{{function=\"in_flight_probe\",module=\"{MODULE}\"}}"
        )),
        Some(0.0)
    );
}

// ---- options ----

#[cortex::counted(
    name = "payments_refunds_total",
    help = "Refunds issued.",
    labels(team = "payments", tier = "1")
)]
#[cortex::timed(
    name = "payments_refund_seconds",
    help = "Refund latency.",
    buckets = [0.5, 1],
    labels(team = "payments")
)]
fn refund() {}

#[test]
fn options_name_help_labels_and_buckets() {
    refund();
    let text = global().encode(Format::PrometheusText);
    assert!(text.contains(
        "# HELP payments_refunds_total Refunds issued.\n# TYPE payments_refunds_total counter\n"
    ));
    assert!(text.contains(&format!(
        "payments_refunds_total{{function=\"refund\",module=\"{MODULE}\",result=\"ok\",team=\"payments\",tier=\"1\"}} 1\n"
    )));
    assert!(text.contains("# HELP payments_refund_seconds Refund latency.\n# TYPE payments_refund_seconds histogram\n"));
    assert!(text.contains(&format!(
        "payments_refund_seconds_bucket{{function=\"refund\",module=\"{MODULE}\",team=\"payments\",le=\"0.5\"}} 1\n\
         payments_refund_seconds_bucket{{function=\"refund\",module=\"{MODULE}\",team=\"payments\",le=\"1\"}} 1\n\
         payments_refund_seconds_bucket{{function=\"refund\",module=\"{MODULE}\",team=\"payments\",le=\"+Inf\"}} 1\n"
    )));
}

// ---- function shapes ----

struct Cache {
    items: Vec<u32>,
}

impl Cache {
    #[cortex::counted]
    fn new() -> Self {
        Cache { items: Vec::new() }
    }

    #[cortex::counted]
    #[cortex::timed]
    fn items_mut(&mut self) -> &mut Vec<u32> {
        &mut self.items
    }

    #[cortex::counted]
    fn into_items(self) -> Vec<u32> {
        self.items
    }

    #[cortex::counted]
    async fn len_later(&self) -> usize {
        tokio::task::yield_now().await;
        self.items.len()
    }
}

#[cortex::counted]
fn describe<T: std::fmt::Debug>(value: T) -> impl std::fmt::Display {
    format!("{value:?}")
}

#[async_trait::async_trait]
trait Store {
    async fn put(&self, key: &str) -> Result<(), String>;
}

struct MemStore;

#[async_trait::async_trait]
impl Store for MemStore {
    #[cortex::counted]
    #[cortex::timed]
    async fn put(&self, key: &str) -> Result<(), String> {
        tokio::task::yield_now().await;
        if key.is_empty() {
            Err("empty key".into())
        } else {
            Ok(())
        }
    }
}

#[test]
fn methods_generics_impl_trait_and_async_trait() {
    let mut cache = Cache::new();
    cache.items_mut().push(7);
    assert_eq!(block_on(cache.len_later()), 1);
    assert_eq!(cache.into_items(), vec![7]);
    assert_eq!(describe(3).to_string(), "3");
    assert_eq!(describe("x").to_string(), "\"x\"");
    // A method's `function` label names its impl's type.
    for f in [
        "Cache::new",
        "Cache::items_mut",
        "Cache::into_items",
        "Cache::len_later",
    ] {
        assert_eq!(calls(f, "ok"), Some(1.0), "{f}");
    }
    // One series for every instantiation of a generic fn.
    assert_eq!(calls("describe", "ok"), Some(2.0));

    let store = MemStore;
    block_on(store.put("k")).unwrap();
    block_on(store.put("")).unwrap_err();
    // `#[async_trait]` turns the method into one returning a boxed future;
    // the call is still counted when that future completes, with its result.
    // ...and, in a trait impl, the trait.
    let put = "<MemStore as Store>::put";
    assert_eq!(calls(put, "ok"), Some(1.0));
    assert_eq!(calls(put, "error"), Some(1.0));
    assert_eq!(duration_count(put), Some(2.0));
}

#[cortex::counted(labels(team = "validation"))]
#[cortex::timed(buckets = [0.001])]
fn validated() -> Result<(), ()> {
    Err(())
}

#[test]
fn exposition_with_annotated_functions_passes_both_validators() {
    let _ = validated();
    let text = global().encode(Format::PrometheusText);
    if let cortex_tests::Verdict::Refused(why) = cortex_tests::promtool_check_metrics(&text) {
        panic!("promtool refused:\n{why}\n{text}");
    }
    let om = global().encode(Format::OpenMetrics);
    if let cortex_tests::Verdict::Refused(why) = cortex_tests::openmetrics_parse(&om) {
        panic!("OpenMetrics parser refused:\n{why}\n{om}");
    }
}

// ---- stacking: either order, fused or not, records the same ----

#[cortex::timed(buckets = [1])]
#[cortex::counted]
fn timed_first(fail: bool) -> Result<(), ()> {
    if fail {
        Err(())
    } else {
        Ok(())
    }
}

mod imported {
    use cortex::{counted, timed};

    // Imported names are not fused (a bare `#[timed]` could be another
    // crate's); the two wrappers nest and record the same series.
    #[counted]
    #[timed(buckets = [1])]
    pub(super) fn nested(fail: bool) -> Result<(), ()> {
        if fail {
            Err(())
        } else {
            Ok(())
        }
    }
}

#[test]
fn stacked_attributes_agree_in_any_order() {
    for f in [timed_first as fn(bool) -> Result<(), ()>, imported::nested] {
        f(false).unwrap();
        f(true).unwrap_err();
        f(false).unwrap();
    }
    let module_of = |f: &str| {
        if f == "nested" {
            format!("{MODULE}::imported")
        } else {
            MODULE.to_owned()
        }
    };
    for f in ["timed_first", "nested"] {
        let m = module_of(f);
        let series = |result: &str| {
            sample(&format!(
                "cortex_function_calls_total{{function=\"{f}\",module=\"{m}\",result=\"{result}\"}}"
            ))
        };
        assert_eq!(series("ok"), Some(2.0), "{f}");
        assert_eq!(series("error"), Some(1.0), "{f}");
        assert_eq!(series("panic"), Some(0.0), "{f}");
        assert_eq!(
            sample(&format!(
                "cortex_function_duration_seconds_bucket{{function=\"{f}\",module=\"{m}\",le=\"+Inf\"}}"
            )),
            Some(3.0),
            "{f}"
        );
    }
}

#[cortex::counted]
#[cortex::timed]
fn hammered(i: u64) -> Result<u64, u64> {
    if i % 4 == 0 {
        Err(i)
    } else {
        Ok(i)
    }
}

#[test]
fn concurrent_calls_lose_nothing() {
    const THREADS: u64 = 8;
    const CALLS: u64 = 20_000;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(|| {
                for i in 0..CALLS {
                    let _ = hammered(i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = (THREADS * CALLS) as f64;
    assert_eq!(calls("hammered", "error"), Some(total / 4.0));
    assert_eq!(calls("hammered", "ok"), Some(total * 3.0 / 4.0));
    assert_eq!(duration_count("hammered"), Some(total));
}

// ---- functions returning `impl Future` ----

struct Feed;

trait Source {
    fn next_item(&self, fail: bool) -> impl Future<Output = Result<u32, String>> + Send;
}

impl Source for Feed {
    #[cortex::counted]
    #[cortex::timed(buckets = [0.005, 10])]
    fn next_item(&self, fail: bool) -> impl Future<Output = Result<u32, String>> + Send {
        async move {
            // Real time, so the timing has something to measure.
            std::thread::sleep(std::time::Duration::from_millis(10));
            if fail {
                Err("empty".into())
            } else {
                Ok(7)
            }
        }
    }
}

#[test]
fn a_trailing_async_block_is_the_call() {
    let label = "<Feed as Source>::next_item";
    // Building the future is not the call.
    let fut = Feed.next_item(false);
    assert_eq!(calls(label, "ok"), Some(0.0));
    assert_eq!(block_on(fut), Ok(7));
    assert_eq!(calls(label, "ok"), Some(1.0));
    block_on(Feed.next_item(true)).unwrap_err();
    assert_eq!(calls(label, "error"), Some(1.0));
    // Both calls took their 10 ms: none is in the 5 ms bucket.
    let le_5ms = sample(&format!(
        "cortex_function_duration_seconds_bucket{{function=\"{label}\",module=\"{MODULE}\",le=\"0.005\"}}"
    ));
    assert_eq!(le_5ms, Some(0.0));
    assert_eq!(duration_count(label), Some(2.0));
    // Dropped after a poll: cancelled.
    {
        let mut fut = pin!(Feed.next_item(false));
        let mut cx = Context::from_waker(Waker::noop());
        let _ = fut.as_mut().poll(&mut cx);
    }
    assert_eq!(calls(label, "ok"), Some(2.0));
}

// ---- functions that never return ----

#[cortex::counted]
#[cortex::timed]
fn never_returns(message: &str) -> ! {
    panic!("{message}")
}

#[cortex::counted]
fn never_returns_alone() -> ! {
    panic!("alone")
}

#[test]
fn a_never_returning_function_counts_its_panic() {
    assert!(catch_unwind(|| never_returns("gone")).is_err());
    assert!(catch_unwind(|| never_returns_alone()).is_err());
    assert_eq!(calls("never_returns", "panic"), Some(1.0));
    assert_eq!(duration_count("never_returns"), Some(1.0));
    assert_eq!(calls("never_returns_alone", "panic"), Some(1.0));
}

// ---- #[track_caller] ----

#[cortex::counted]
#[cortex::timed]
#[track_caller]
fn caller_line() -> u32 {
    std::panic::Location::caller().line()
}

#[cortex::counted]
#[track_caller]
fn checked_caller(ok: bool) -> Result<u32, String> {
    if ok {
        Ok(std::panic::Location::caller().line())
    } else {
        Err("no".into())
    }
}

#[test]
fn track_caller_still_names_the_caller() {
    let here = line!();
    assert_eq!(caller_line(), here + 1);
    assert_eq!(checked_caller(true), Ok(here + 2));
    assert_eq!(calls("caller_line", "ok"), Some(1.0));
    assert_eq!(calls("checked_caller", "ok"), Some(1.0));
    checked_caller(false).unwrap_err();
    assert_eq!(calls("checked_caller", "error"), Some(1.0));
}
