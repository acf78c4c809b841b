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

/// Every breaker, by name.
pub(crate) fn breakers() -> Vec<(String, CircuitBreaker)> {
    annotated_ready();
    sorted(&BREAKERS.lock())
}

/// Every retry, by name.
pub(crate) fn retries() -> Vec<(String, Retry)> {
    RETRIES.all()
}

/// Every bulkhead, by name.
pub(crate) fn bulkheads() -> Vec<(String, Bulkhead)> {
    BULKHEADS.all()
}

/// Every timeout, by name.
pub(crate) fn timeouts() -> Vec<(String, Timeout)> {
    TIMEOUTS.all()
}

/// Every rate limiter, by name.
pub(crate) fn rate_limiters() -> Vec<(String, RateLimiter)> {
    RATE_LIMITERS.all()
}

fn sorted<P: Clone>(map: &HashMap<String, P>) -> Vec<(String, P)> {
    let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
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
    strict(
        "circuit breaker",
        name,
        breaker_lookup_or_create(name, config, metrics, health)?,
    )
}

/// What a lookup by name found or made.
pub(crate) enum Found<P> {
    /// Made now, or found with the same configuration.
    Same(P),
    /// Found with another configuration, which it keeps.
    Other(P, String),
}

impl<P> Found<P> {
    /// The instance, and the configuration it has if that is another one.
    pub(crate) fn split(self) -> (P, Option<String>) {
        match self {
            Found::Same(p) => (p, None),
            Found::Other(p, have) => (p, Some(have)),
        }
    }
}

/// A configuration that differs from the registered one is an error.
fn strict<P>(kind: &str, name: &str, found: Found<P>) -> Result<P, ConfigError> {
    match found {
        Found::Same(p) => Ok(p),
        Found::Other(_, have) => Err(ConfigError {
            key: "name",
            message: format!("{kind} `{name}` already exists with another configuration ({have})"),
        }),
    }
}

/// The breaker named `name`, made with `config` if there is none; never
/// touches a global registry (attribute sites are settled with this while
/// the global metrics registry is being built).
pub(crate) fn breaker_lookup_or_create(
    name: &str,
    config: CircuitBreakerConfig,
    metrics: &Registry,
    health: Option<&HealthRegistry>,
) -> Result<Found<CircuitBreaker>, ConfigError> {
    let mut breakers = BREAKERS.lock();
    if let Some(existing) = breakers.get(name) {
        let have = existing.config();
        if have != config {
            return Ok(Found::Other(existing.clone(), format!("{have:?}")));
        }
        return Ok(Found::Same(existing.clone()));
    }
    let breaker = CircuitBreaker::build(name, config, metrics, health)?;
    breakers.insert(name.to_owned(), breaker.clone());
    Ok(Found::Same(breaker))
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

    fn all(&self) -> Vec<(String, P)> {
        annotated_ready();
        sorted(&self.map.lock())
    }

    fn get_or_create<C: PartialEq + std::fmt::Debug>(
        &self,
        name: &str,
        config: C,
        current: impl Fn(&P) -> C,
        build: impl FnOnce() -> Result<P, ConfigError>,
    ) -> Result<Found<P>, ConfigError> {
        let mut map = self.map.lock();
        if let Some(existing) = map.get(name) {
            let have = current(existing);
            if have != config {
                return Ok(Found::Other(existing.clone(), format!("{have:?}")));
            }
            return Ok(Found::Same(existing.clone()));
        }
        let policy = build()?;
        map.insert(name.to_owned(), policy.clone());
        Ok(Found::Same(policy))
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
    strict(
        "retry",
        name,
        retry_lookup_or_create(name, config, metrics)?,
    )
}

pub(crate) fn retry_lookup_or_create(
    name: &str,
    config: RetryConfig,
    metrics: &Registry,
) -> Result<Found<Retry>, ConfigError> {
    RETRIES.get_or_create(name, config, Retry::config, || {
        Retry::build(name, config, metrics)
    })
}

pub(crate) fn bulkhead_or_create(
    name: &str,
    config: BulkheadConfig,
    metrics: &Registry,
) -> Result<Bulkhead, ConfigError> {
    strict(
        "bulkhead",
        name,
        bulkhead_lookup_or_create(name, config, metrics)?,
    )
}

pub(crate) fn bulkhead_lookup_or_create(
    name: &str,
    config: BulkheadConfig,
    metrics: &Registry,
) -> Result<Found<Bulkhead>, ConfigError> {
    BULKHEADS.get_or_create(name, config, Bulkhead::config, || {
        Bulkhead::build(name, config, metrics)
    })
}

pub(crate) fn timeout_or_create(
    name: &str,
    after: Duration,
    metrics: &Registry,
) -> Result<Timeout, ConfigError> {
    strict(
        "timeout",
        name,
        timeout_lookup_or_create(name, after, metrics)?,
    )
}

pub(crate) fn timeout_lookup_or_create(
    name: &str,
    after: Duration,
    metrics: &Registry,
) -> Result<Found<Timeout>, ConfigError> {
    TIMEOUTS.get_or_create(name, after, Timeout::duration, || {
        Timeout::build(name, after, metrics)
    })
}

pub(crate) fn rate_limiter_or_create(
    name: &str,
    config: RateLimiterConfig,
    metrics: &Registry,
) -> Result<RateLimiter, ConfigError> {
    strict(
        "rate limiter",
        name,
        rate_limiter_lookup_or_create(name, config, metrics)?,
    )
}

pub(crate) fn rate_limiter_lookup_or_create(
    name: &str,
    config: RateLimiterConfig,
    metrics: &Registry,
) -> Result<Found<RateLimiter>, ConfigError> {
    RATE_LIMITERS.get_or_create(name, config, RateLimiter::config, || {
        RateLimiter::build(name, config, metrics)
    })
}
