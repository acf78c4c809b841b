use std::time::Duration;

#[derive(Debug)]
pub enum AppError {
    Backend(String),
    Policy(cortex::resilience::Error),
}

impl From<cortex::resilience::Error> for AppError {
    fn from(e: cortex::resilience::Error) -> Self {
        AppError::Policy(e)
    }
}

fn is_backend(e: &AppError) -> bool {
    matches!(e, AppError::Backend(_))
}

#[cortex::circuit_breaker]
#[cortex::retry]
#[cortex::bulkhead]
async fn bare_defaults() -> Result<(), AppError> {
    Ok(())
}

/// Documented, public, every key.
#[cortex::retry(max = 3, delay = "100ms", multiplier = 2.0, max_delay = "1s", jitter = 0.2, budget = 0.1, retry_if = is_backend)]
#[cortex::circuit_breaker(
    name = "payments",
    failure_rate = 50,
    slow_call_rate = 80,
    slow_call_threshold = "500ms",
    minimum_calls = 10,
    window = "60s",
    open_for = "30s",
    half_open_calls = 3,
    health = "down",
    record_if = is_backend
)]
#[cortex::rate_limit(permits = 10, period = "1s", max_wait = "100ms")]
#[cortex::timeout("2s")]
#[cortex::bulkhead(max_concurrent = 5, max_wait = "0ms")]
pub async fn everything(card: String, cents: u64, note: &str) -> Result<u64, AppError> {
    if card.is_empty() || note.is_empty() {
        return Err(AppError::Backend("no card".into()));
    }
    tokio_sleep_free(cents).await
}

async fn tokio_sleep_free(cents: u64) -> Result<u64, AppError> {
    Ok(cents)
}

struct Client {
    base: String,
}

impl Client {
    #[cortex::retry(max = 2, delay = "1ms")]
    async fn get(&self, path: &str) -> Result<String, AppError> {
        Ok(format!("{}{path}", self.base))
    }

    #[cortex::bulkhead(max_concurrent = 1)]
    fn sync_get(&self) -> Result<usize, cortex::resilience::Error> {
        Ok(self.base.len())
    }
}

async fn backup(id: u32) -> Result<u32, AppError> {
    Ok(id)
}

#[cortex::circuit_breaker(fallback = backup)]
async fn with_fallback(id: u32) -> Result<u32, AppError> {
    Ok(id * 2)
}

#[cortex::retry(max = 2, delay = "1ms")]
fn sync_retry(x: Vec<u8>) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    Ok(x.len())
}

fn is_cancelled(e: &AppError) -> bool {
    matches!(e, AppError::Policy(_))
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Every key added with Resilience4j's semantics.
#[cortex::retry(max = 4, jitter = "decorrelated", max_elapsed = "5s", retry_on_result = is_zero)]
#[cortex::circuit_breaker(
    record_if = is_backend,
    ignore_if = is_cancelled,
    record_result = is_zero,
    automatic_half_open,
    max_wait_in_half_open = "5s",
    open_for_multiplier = 2.0,
    max_open_for = "10m"
)]
#[cortex::bulkhead(max_concurrent = 2, max_wait = "10ms", fair = false)]
pub async fn resilience4j_keys(cents: u64) -> Result<u64, AppError> {
    Ok(cents)
}

#[cortex::retry(jitter = "full")]
fn full_jitter() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = resilience4j_keys(1);
    let _ = full_jitter();
    let _ = bare_defaults();
    let _ = everything("c".into(), 1, "n");
    let c = Client { base: "b".into() };
    let _ = c.get("/x");
    let _ = c.sync_get();
    let _ = with_fallback(1);
    let _ = sync_retry(vec![1]);
    let _ = Duration::ZERO;
}

// Bare: 1 s, Resilience4j TimeLimiter's default.
#[cortex::timeout]
pub async fn bare_timeout() -> Result<u8, cortex::resilience::Error> {
    Ok(1)
}
