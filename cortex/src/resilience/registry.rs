//! Policy instances by name.

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::Mutex;

use std::time::Duration;

use super::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, ConfigError, RateLimiter,
    RateLimiterConfig, Retry, RetryConfig, Timeout,
};
use crate::health::HealthRegistry;
use crate::metrics::Registry;

static BREAKERS: LazyLock<Mutex<HashMap<String, CircuitBreaker>>> = LazyLock::new(Default::default);

/// The circuit breaker registered under `name`, to read its state and
/// stats, reset, force open, disable or reconfigure it.
///
/// ```
/// use cortex::resilience::{circuit_breaker, CircuitBreaker, CircuitBreakerConfig};
/// CircuitBreaker::new("doc-search", CircuitBreakerConfig::default())?;
/// let handle = circuit_breaker("doc-search").expect("registered");
/// handle.disable();
/// assert!(circuit_breaker("no-such-breaker").is_none());
/// # Ok::<(), cortex::resilience::ConfigError>(())
/// ```
pub fn circuit_breaker(name: &str) -> Option<CircuitBreaker> {
    annotated_ready();
    BREAKERS.lock().get(name).cloned()
}

/// Attribute-made instances are created with the global metrics registry;
/// make sure that has happened before a lookup by name.
fn annotated_ready() {
    let _ = crate::metrics::global();
}

pub(crate) fn breaker_or_create(
    name: &str,
    config: CircuitBreakerConfig,
    metrics: &Registry,
    health: Option<&HealthRegistry>,
) -> Result<CircuitBreaker, ConfigError> {
    let mut breakers = BREAKERS.lock();
    if let Some(existing) = breakers.get(name) {
        if existing.config() != config {
            return Err(ConfigError {
                key: "name",
                message: format!(
                    "circuit breaker `{name}` already exists with another configuration ({:?})",
                    existing.config()
                ),
            });
        }
        return Ok(existing.clone());
    }
    let breaker = CircuitBreaker::build(name, config, metrics, health)?;
    breakers.insert(name.to_owned(), breaker.clone());
    Ok(breaker)
}

/// Instances of one policy type by name, created on first use.
struct Named<P> {
    map: Mutex<HashMap<String, P>>,
}

impl<P: Clone> Named<P> {
    fn new() -> Self {
        Named {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, name: &str) -> Option<P> {
        annotated_ready();
        self.map.lock().get(name).cloned()
    }

    fn get_or_create<C: PartialEq + std::fmt::Debug>(
        &self,
        name: &str,
        config: C,
        current: impl Fn(&P) -> C,
        build: impl FnOnce() -> Result<P, ConfigError>,
    ) -> Result<P, ConfigError> {
        let mut map = self.map.lock();
        if let Some(existing) = map.get(name) {
            let have = current(existing);
            if have != config {
                return Err(ConfigError {
                    key: "name",
                    message: format!(
                        "`{name}` already exists with another configuration ({have:?})"
                    ),
                });
            }
            return Ok(existing.clone());
        }
        let policy = build()?;
        map.insert(name.to_owned(), policy.clone());
        Ok(policy)
    }
}

static RETRIES: LazyLock<Named<Retry>> = LazyLock::new(Named::new);
static BULKHEADS: LazyLock<Named<Bulkhead>> = LazyLock::new(Named::new);
static TIMEOUTS: LazyLock<Named<Timeout>> = LazyLock::new(Named::new);
static RATE_LIMITERS: LazyLock<Named<RateLimiter>> = LazyLock::new(Named::new);

/// The retry registered under `name`.
pub fn retry(name: &str) -> Option<Retry> {
    RETRIES.get(name)
}

/// The bulkhead registered under `name`.
pub fn bulkhead(name: &str) -> Option<Bulkhead> {
    BULKHEADS.get(name)
}

/// The timeout registered under `name`.
pub fn timeout(name: &str) -> Option<Timeout> {
    TIMEOUTS.get(name)
}

/// The rate limiter registered under `name`.
pub fn rate_limiter(name: &str) -> Option<RateLimiter> {
    RATE_LIMITERS.get(name)
}

pub(crate) fn retry_or_create(
    name: &str,
    config: RetryConfig,
    metrics: &Registry,
) -> Result<Retry, ConfigError> {
    RETRIES.get_or_create(name, config, Retry::config, || {
        Retry::build(name, config, metrics)
    })
}

pub(crate) fn bulkhead_or_create(
    name: &str,
    config: BulkheadConfig,
    metrics: &Registry,
) -> Result<Bulkhead, ConfigError> {
    BULKHEADS.get_or_create(name, config, Bulkhead::config, || {
        Bulkhead::build(name, config, metrics)
    })
}

pub(crate) fn timeout_or_create(
    name: &str,
    after: Duration,
    metrics: &Registry,
) -> Result<Timeout, ConfigError> {
    TIMEOUTS.get_or_create(name, after, Timeout::duration, || {
        Timeout::build(name, after, metrics)
    })
}

pub(crate) fn rate_limiter_or_create(
    name: &str,
    config: RateLimiterConfig,
    metrics: &Registry,
) -> Result<RateLimiter, ConfigError> {
    RATE_LIMITERS.get_or_create(name, config, RateLimiter::config, || {
        RateLimiter::build(name, config, metrics)
    })
}
