//! Policy instances by name.

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::Mutex;

use super::{CircuitBreaker, CircuitBreakerConfig, ConfigError};
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
    BREAKERS.lock().get(name).cloned()
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
