//! What the policy attributes (`#[circuit_breaker]`, `#[retry]`,
//! `#[bulkhead]`, `#[timeout]`, `#[rate_limit]`) expand to.

use std::time::Duration;

use linkme::distributed_slice;

use crate::metrics::Registry;
use crate::resilience::{
    self, Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, ConfigError, RateLimiter,
    RateLimiterConfig, Retry, RetryConfig, Timeout,
};

/// Creates an annotated function's policy instances (with their metrics at
/// zero) when the global registry is first used.
#[derive(Debug)]
pub struct PolicySite {
    /// Registers the instances in the registry being built.
    pub init: fn(&Registry),
}

/// Every policy attribute's site.
#[distributed_slice]
pub static POLICY_SITES: [PolicySite];

pub(crate) fn register_policy_sites(registry: &Registry) {
    for site in POLICY_SITES.iter() {
        (site.init)(registry);
    }
}

// A site whose instance cannot be made as written (another site made the
// same name with another configuration, or a metric conflicts) logs why and
// uses the existing instance, or an unregistered one: the function still runs
// under its policy.
fn settle<P>(
    kind: &str,
    name: &str,
    made: Result<P, ConfigError>,
    existing: impl FnOnce() -> Option<P>,
    unregistered: impl FnOnce() -> Result<P, ConfigError>,
) -> P {
    match made {
        Ok(p) => p,
        Err(error) => {
            tracing::error!(target: "cortex::resilience", kind, name, %error, "policy attribute's instance differs from the registered one; using the registered one");
            existing()
                .or_else(|| unregistered().ok())
                .unwrap_or_else(|| panic!("cortex: {kind} `{name}` cannot be created: {error}"))
        }
    }
}

fn private_registry() -> &'static Registry {
    static PRIVATE: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::new);
    &PRIVATE
}

/// The breaker for an annotated function.
pub fn breaker(
    name: &'static str,
    config: CircuitBreakerConfig,
    registry: Option<&Registry>,
) -> CircuitBreaker {
    let made = match registry {
        Some(r) => {
            resilience::registry::breaker_or_create(name, config, r, Some(crate::health::global()))
        }
        None => CircuitBreaker::new(name, config),
    };
    settle(
        "circuit breaker",
        name,
        made,
        || resilience::circuit_breaker(name),
        || CircuitBreaker::build(name, config, private_registry(), None),
    )
}

/// The retry for an annotated function.
pub fn retry(name: &'static str, config: RetryConfig, registry: Option<&Registry>) -> Retry {
    let made = resilience::registry::retry_or_create(
        name,
        config,
        registry.unwrap_or_else(|| crate::metrics::global()),
    );
    settle(
        "retry",
        name,
        made,
        || resilience::retry(name),
        || Retry::build(name, config, private_registry()),
    )
}

/// The bulkhead for an annotated function.
pub fn bulkhead(
    name: &'static str,
    config: BulkheadConfig,
    registry: Option<&Registry>,
) -> Bulkhead {
    let made = resilience::registry::bulkhead_or_create(
        name,
        config,
        registry.unwrap_or_else(|| crate::metrics::global()),
    );
    settle(
        "bulkhead",
        name,
        made,
        || resilience::bulkhead(name),
        || Bulkhead::build(name, config, private_registry()),
    )
}

/// The timeout for an annotated function.
pub fn timeout(name: &'static str, nanos: u64, registry: Option<&Registry>) -> Timeout {
    let after = Duration::from_nanos(nanos);
    let made = resilience::registry::timeout_or_create(
        name,
        after,
        registry.unwrap_or_else(|| crate::metrics::global()),
    );
    settle(
        "timeout",
        name,
        made,
        || resilience::timeout(name),
        || Timeout::build(name, after, private_registry()),
    )
}

/// The rate limiter for an annotated function.
pub fn rate_limiter(
    name: &'static str,
    config: RateLimiterConfig,
    registry: Option<&Registry>,
) -> RateLimiter {
    let made = resilience::registry::rate_limiter_or_create(
        name,
        config,
        registry.unwrap_or_else(|| crate::metrics::global()),
    );
    settle(
        "rate limiter",
        name,
        made,
        || resilience::rate_limiter(name),
        || RateLimiter::build(name, config, private_registry()),
    )
}

/// Return types a policy attribute accepts without a fallback:
/// `Result<T, E>` where a policy's rejection converts into `E`.
#[diagnostic::on_unimplemented(
    message = "a function under a resilience policy must return `Result<T, E>` with `E: From<cortex::resilience::Error>` (or have a `fallback`), not `{Self}`",
    label = "policy rejections cannot be returned as this type"
)]
pub trait PolicyResult {}

impl<T, E: From<resilience::Error>> PolicyResult for Result<T, E> {}

/// Names the return type in the expansion, so a wrong one is reported there.
pub fn assert_policy_result<R: PolicyResult>() {}

/// Names an argument's type in `#[retry]`'s expansion, so a by-value
/// argument that is not `Clone` is reported there.
pub fn clone_for_retry<T: Clone>(value: &T) -> T {
    value.clone()
}
