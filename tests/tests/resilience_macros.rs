//! The policy attributes: behaviour, stacking order, shared instances,
//! fallbacks, and metrics present before the first call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::resilience::{circuit_breaker, Error, State};

#[derive(Debug, PartialEq, Clone)]
enum AppError {
    Down,
    Policy(String),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Policy(e.to_string())
    }
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cortex::retry(max = 3, delay = "10ms")]
async fn flaky(fail_times: usize, tag: String) -> Result<String, AppError> {
    let n = FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    if n < fail_times {
        return Err(AppError::Down);
    }
    Ok(format!("{tag} after {}", n + 1))
}

#[tokio::test(start_paused = true)]
async fn retry_attribute_reruns_the_body_with_fresh_arguments() {
    assert_eq!(flaky(2, "x".to_string()).await, Ok("x after 3".to_string()));
}

#[cortex::circuit_breaker(
    name = "shared-backend",
    failure_rate = 50,
    minimum_calls = 2,
    window = 2,
    open_for = "1m"
)]
async fn backend_a(fail: bool) -> Result<(), AppError> {
    if fail {
        Err(AppError::Down)
    } else {
        Ok(())
    }
}

#[cortex::circuit_breaker(
    name = "shared-backend",
    failure_rate = 50,
    minimum_calls = 2,
    window = 2,
    open_for = "1m"
)]
async fn backend_b() -> Result<(), AppError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn one_breaker_shared_by_name() {
    backend_a(true).await.unwrap_err();
    backend_a(true).await.unwrap_err();
    assert_eq!(
        circuit_breaker("shared-backend").unwrap().state(),
        State::Open
    );
    // backend_b shares the breaker: rejected without running.
    match backend_b().await {
        Err(AppError::Policy(msg)) => assert!(
            msg.contains("circuit breaker `shared-backend` is open"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
}

static ORDER: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::timeout("50ms")]
async fn retried_timeout() -> Result<(), AppError> {
    ORDER.lock().unwrap().push("attempt");
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[cortex::timeout("50ms")]
#[cortex::retry(max = 2, delay = "1ms")]
async fn timed_out_retries() -> Result<(), AppError> {
    ORDER.lock().unwrap().push("try");
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn stacked_attributes_nest_in_source_order() {
    // retry outside timeout: each attempt gets its own 50 ms, so two attempts.
    retried_timeout().await.unwrap_err();
    assert_eq!(
        ORDER
            .lock()
            .unwrap()
            .iter()
            .filter(|s| **s == "attempt")
            .count(),
        2
    );
    // timeout outside retry: the first attempt uses the whole 50 ms.
    timed_out_retries().await.unwrap_err();
    assert_eq!(
        ORDER
            .lock()
            .unwrap()
            .iter()
            .filter(|s| **s == "try")
            .count(),
        1
    );
}

async fn cached_price(item: u32) -> Result<u32, AppError> {
    Ok(item * 10)
}

#[cortex::bulkhead(max_concurrent = 1, fallback = cached_price)]
async fn live_price(item: u32) -> Result<u32, AppError> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(item * 11)
}

#[tokio::test(start_paused = true)]
async fn fallback_runs_when_the_policy_rejects() {
    let (a, b) = tokio::join!(live_price(1), live_price(2));
    let mut got = [a.unwrap(), b.unwrap()];
    got.sort();
    assert_eq!(got, [11, 20], "one call ran, the other got the fallback");
}

#[cortex::bulkhead(max_concurrent = 2)]
fn sync_work(x: u32) -> Result<u32, Error> {
    Ok(x + 1)
}

#[cortex::rate_limit(permits = 1, period = "1s", max_wait = "0ms")]
async fn limited() -> Result<(), Error> {
    Ok(())
}

#[test]
fn policy_metrics_exist_before_the_first_call() {
    let text = global().encode(Format::PrometheusText);
    let module = "resilience_macros";
    for line in [
        format!("cortex_bulkhead_max_allowed_concurrent_calls{{name=\"{module}::sync_work\"}} 2"),
        format!("cortex_rate_limiter_rejected_total{{name=\"{module}::limited\"}} "),
        "cortex_circuit_breaker_state{name=\"shared-backend\",state=\"closed\"}".to_string(),
    ] {
        assert!(text.contains(&line), "missing {line}");
    }
    assert_eq!(sync_work(1), Ok(2));
}

#[tokio::test]
async fn rate_limit_attribute_rejects_over_the_limit() {
    limited().await.unwrap();
    assert!(matches!(limited().await, Err(Error::RateLimited { .. })));
}

async fn default_greeting(name: &str) -> String {
    format!("hello, {name} (from the fallback)")
}

#[cortex::rate_limit(permits = 1, period = "1h", max_wait = "0ms", fallback = default_greeting)]
async fn greeting(name: &str) -> String {
    if name.is_empty() {
        return "hello, nobody".to_string();
    }
    format!("hello, {name}")
}

#[tokio::test]
async fn a_fallback_lets_a_non_result_function_use_a_policy() {
    assert_eq!(greeting("ada").await, "hello, ada");
    assert_eq!(greeting("bob").await, "hello, bob (from the fallback)");
}

// ---- identity: a method's default instance names its impl ----

struct Pg;
struct MySql;

trait Store {
    async fn save(&self, fail: bool) -> Result<(), AppError>;
}

impl Pg {
    #[cortex::circuit_breaker(minimum_calls = 1, window = 1, failure_rate = 100, open_for = "1h")]
    async fn load(&self, fail: bool) -> Result<(), AppError> {
        if fail {
            Err(AppError::Down)
        } else {
            Ok(())
        }
    }
}

impl MySql {
    #[cortex::circuit_breaker(minimum_calls = 1, window = 1, failure_rate = 100, open_for = "1h")]
    async fn load(&self, fail: bool) -> Result<(), AppError> {
        if fail {
            Err(AppError::Down)
        } else {
            Ok(())
        }
    }
}

impl Store for Pg {
    #[cortex::circuit_breaker(minimum_calls = 1, window = 1, failure_rate = 100, open_for = "1h")]
    async fn save(&self, fail: bool) -> Result<(), AppError> {
        if fail {
            Err(AppError::Down)
        } else {
            Ok(())
        }
    }
}

impl Store for MySql {
    #[cortex::circuit_breaker(minimum_calls = 1, window = 1, failure_rate = 100, open_for = "1h")]
    async fn save(&self, fail: bool) -> Result<(), AppError> {
        if fail {
            Err(AppError::Down)
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn same_named_methods_of_two_impls_have_breakers_of_their_own() {
    // Pg's failure opens Pg's breaker only.
    assert_eq!(Pg.load(true).await, Err(AppError::Down));
    assert!(matches!(Pg.load(false).await, Err(AppError::Policy(_))));
    assert_eq!(MySql.load(false).await, Ok(()));
    let state = |name: &str| {
        circuit_breaker(name)
            .unwrap_or_else(|| panic!("no breaker {name}"))
            .state()
    };
    assert_eq!(state("resilience_macros::Pg::load"), State::Open);
    assert_eq!(state("resilience_macros::MySql::load"), State::Closed);

    // The same for trait impls: the trait is part of the name.
    assert_eq!(MySql.save(true).await, Err(AppError::Down));
    assert_eq!(Pg.save(false).await, Ok(()));
    assert_eq!(
        state("resilience_macros::<MySql as Store>::save"),
        State::Open
    );
    assert_eq!(
        state("resilience_macros::<Pg as Store>::save"),
        State::Closed
    );
}

// ---- arguments: `mut`, patterns, raw identifiers, `#[cfg]` ----

static APPEND_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Debug, PartialEq)]
struct Json<T>(T);

#[cortex::retry(max = 3, delay = "1ms")]
fn append(
    mut buf: Vec<u8>,
    (a, b): (u8, u8),
    Json(extra): Json<u8>,
    r#type: &str,
    #[cfg(any())] never: u8,
) -> Result<Vec<u8>, AppError> {
    buf.push(a);
    buf.push(b);
    buf.push(extra);
    buf.extend_from_slice(r#type.as_bytes());
    // Fails twice: each attempt starts again from the caller's arguments.
    if APPEND_ATTEMPTS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(AppError::Down);
    }
    Ok(buf)
}

async fn stored_total(
    (a, b): (u32, u32),
    r#ref: String,
    #[cfg(test)] bonus: u32,
) -> Result<u32, AppError> {
    Ok(a + b + bonus + r#ref.len() as u32 + 1000)
}

#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::circuit_breaker(fallback = stored_total)]
async fn total(
    (a, b): (u32, u32),
    r#ref: String,
    #[cfg(test)] bonus: u32,
) -> Result<u32, AppError> {
    if r#ref.is_empty() {
        return Err(AppError::Down);
    }
    Ok(a + b + bonus)
}

#[tokio::test(start_paused = true)]
async fn retried_and_fallback_arguments_keep_their_patterns() {
    assert_eq!(
        append(vec![9], (1, 2), Json(3), "t"),
        Ok(vec![9, 1, 2, 3, b't'])
    );
    assert_eq!(APPEND_ATTEMPTS.load(Ordering::SeqCst), 3);
    assert_eq!(total((1, 2), "r".into(), 10).await, Ok(13));
    // The body fails: the fallback gets the same arguments.
    assert_eq!(total((1, 2), String::new(), 10).await, Ok(1013));
}

// ---- #[async_trait] methods ----

#[async_trait::async_trait]
trait Inventory {
    async fn reserve(&self, sku: String) -> Result<String, AppError>;
}

struct Warehouse {
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl Inventory for Warehouse {
    #[cortex::retry(max = 3, delay = "1ms")]
    #[cortex::timeout("1s")]
    async fn reserve(&self, sku: String) -> Result<String, AppError> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(AppError::Down);
        }
        Ok(format!("reserved {sku}"))
    }
}

#[tokio::test(start_paused = true)]
async fn policies_work_on_async_trait_methods() {
    let w = Warehouse {
        attempts: AtomicUsize::new(0),
    };
    assert_eq!(
        w.reserve("a-1".into()).await,
        Ok("reserved a-1".to_string())
    );
    assert_eq!(w.attempts.load(Ordering::SeqCst), 3);
    let name = "resilience_macros::<Warehouse as Inventory>::reserve";
    assert!(cortex::resilience::retry(name).is_some(), "{name}");
    assert!(cortex::resilience::timeout(name).is_some(), "{name}");
}

// ---- classification and retry decisions on the attributes ----

fn is_down(e: &AppError) -> bool {
    *e == AppError::Down
}

fn is_policy(e: &AppError) -> bool {
    matches!(e, AppError::Policy(_))
}

// `record_result` takes the fn's `Ok` type by reference: `&Vec<u8>` here.
#[allow(clippy::ptr_arg)]
fn is_empty(v: &Vec<u8>) -> bool {
    v.is_empty()
}

#[cortex::circuit_breaker(
    minimum_calls = 2,
    window = 2,
    failure_rate = 50,
    open_for = "1h",
    record_if = is_down,
    ignore_if = is_policy,
    record_result = is_empty
)]
fn classified(result: Result<Vec<u8>, AppError>) -> Result<Vec<u8>, AppError> {
    result
}

#[test]
fn breaker_attribute_classifies_like_resilience4j() {
    let name = "resilience_macros::classified";
    let stats = || circuit_breaker(name).unwrap().stats();
    // Ignored: counts as nothing.
    classified(Err(AppError::Policy("x".into()))).unwrap_err();
    assert_eq!(stats().calls_in_window, 0);
    // Not in record_if: a success.
    classified(Err(AppError::Policy("y".into()))).unwrap_err();
    classified(Ok(vec![1])).unwrap();
    assert_eq!((stats().calls_in_window, stats().failed_in_window), (1, 0));
    // An empty Ok is a failure (record_result): 1 of 2.
    classified(Ok(vec![])).unwrap();
    assert_eq!(stats().state, State::Open);
}

static REJECTED_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);
static FAILED_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

impl cortex::resilience::AsRejection for AppError {
    fn as_rejection(&self) -> Option<&Error> {
        None
    }
}

#[cortex::retry(max = 3, delay = "1ms")]
async fn behind_a_full_bulkhead() -> Result<(), Error> {
    REJECTED_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    Err(Error::BulkheadFull {
        name: "elsewhere".into(),
    })
}

#[cortex::retry(max = 3, delay = "1ms")]
async fn plain_failure() -> Result<(), AppError> {
    FAILED_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

static POLLS: AtomicUsize = AtomicUsize::new(0);

fn not_ready(v: &&str) -> bool {
    *v == "pending"
}

#[cortex::retry(max = 5, delay = "1ms", retry_on_result = not_ready)]
async fn poll_job() -> Result<&'static str, AppError> {
    Ok(if POLLS.fetch_add(1, Ordering::SeqCst) < 2 {
        "pending"
    } else {
        "done"
    })
}

#[tokio::test(start_paused = true)]
async fn retry_attribute_skips_rejections_and_retries_on_results() {
    behind_a_full_bulkhead().await.unwrap_err();
    assert_eq!(
        REJECTED_ATTEMPTS.load(Ordering::SeqCst),
        1,
        "a full bulkhead is not retried"
    );
    plain_failure().await.unwrap_err();
    assert_eq!(FAILED_ATTEMPTS.load(Ordering::SeqCst), 3);
    assert_eq!(poll_job().await, Ok("done"));
    assert_eq!(POLLS.load(Ordering::SeqCst), 3);
}

#[cortex::timeout]
async fn bare_timeout(wait: Duration) -> Result<(), Error> {
    tokio::time::sleep(wait).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_bare_timeout_is_one_second_as_resilience4j_s() {
    assert_eq!(bare_timeout(Duration::from_millis(999)).await, Ok(()));
    match bare_timeout(Duration::from_millis(1_001)).await {
        Err(Error::Timeout { after, .. }) => assert_eq!(after, Duration::from_secs(1)),
        other => panic!("expected the 1 s timeout, got {other:?}"),
    }
    assert_eq!(cortex::resilience::DEFAULT_TIMEOUT, Duration::from_secs(1));
}

/// A failure through `#[circuit_breaker]` is kept in the breaker's recent
/// events with the error's message: its `Display`, else its `Debug`, else
/// `error`.
#[test]
fn breaker_failures_keep_the_message_the_error_type_offers() {
    #[derive(Debug)]
    struct DebugOnly;
    struct Opaque;
    impl From<cortex::resilience::Error> for DebugOnly {
        fn from(_: cortex::resilience::Error) -> Self {
            DebugOnly
        }
    }
    impl From<cortex::resilience::Error> for Opaque {
        fn from(_: cortex::resilience::Error) -> Self {
            Opaque
        }
    }
    #[cortex::circuit_breaker(name = "msg-display")]
    fn display() -> Result<(), cortex::resilience::Error> {
        Err(cortex::resilience::Error::timeout(
            "backend",
            std::time::Duration::from_secs(1),
        ))
    }
    #[cortex::circuit_breaker(name = "msg-debug")]
    fn debug() -> Result<(), DebugOnly> {
        Err(DebugOnly)
    }
    #[cortex::circuit_breaker(name = "msg-opaque")]
    fn opaque() -> Result<(), Opaque> {
        Err(Opaque)
    }
    assert!(display().is_err() && debug().is_err() && opaque().is_err());
    for (name, message) in [
        ("msg-display", "`backend` timed out after 1s"),
        ("msg-debug", "DebugOnly"),
        ("msg-opaque", "error"),
    ] {
        let events = cortex::resilience::recent_events(&cortex::resilience::EventFilter {
            name: Some(name.into()),
            kind: Some("ERROR".into()),
            ..Default::default()
        });
        let got: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(got, [message], "{name}");
    }
}
