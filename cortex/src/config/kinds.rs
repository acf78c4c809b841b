//! The kinds of configurable instances: how each is listed, read, set,
//! shown, checked and reconfigured.

use std::collections::HashMap;
use std::time::Duration;

use cortex_rules::config::{self as rules, Shown, Value};
use cortex_rules::resilience::ConfigError;

use super::plan::Bases;
use super::source::Section;
use crate::health::{CheckOptions, Group};
use crate::resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, RateLimiter, RateLimiterConfig,
    Retry, RetryConfig, Timeout,
};

/// One kind of configurable instance.
pub(crate) trait Kind {
    type Instance: Clone;
    type Config: Copy + PartialEq;
    const SECTION: Section;
    /// As a message names one (`no retry is named ..`).
    const WHAT: &'static str;
    const KEYS: &'static [&'static str];
    fn instances() -> Vec<(String, Self::Instance)>;
    fn current(i: &Self::Instance) -> Self::Config;
    fn set(c: &mut Self::Config, key: &str, v: &Value<'_>) -> Result<(), String>;
    fn show(c: &Self::Config, key: &str) -> Option<Shown>;
    fn problems(_c: &Self::Config) -> Vec<ConfigError> {
        Vec::new()
    }
    /// A rule broken on a key the configuration did not set is reported
    /// on the key it was compared with.
    const RELATED: &'static [(&'static str, &'static str)] = &[];
    fn bases(b: &mut Bases) -> &mut HashMap<String, Self::Config>;
    fn reconfigure(i: &Self::Instance, c: Self::Config);
}

pub(crate) struct Breakers;
pub(crate) struct Retries;
pub(crate) struct Bulkheads;
pub(crate) struct RateLimiters;
pub(crate) struct Timeouts;
pub(crate) struct Checks;

// Each reconfigure below gets a configuration its own rules were checked
// against in `resolve`, so it cannot fail.
impl Kind for Breakers {
    type Instance = CircuitBreaker;
    type Config = CircuitBreakerConfig;
    const SECTION: Section = Section::CircuitBreaker;
    const WHAT: &'static str = "circuit breaker";
    const KEYS: &'static [&'static str] = rules::BREAKER_KEYS;
    const RELATED: &'static [(&'static str, &'static str)] = rules::BREAKER_RELATED;
    fn instances() -> Vec<(String, CircuitBreaker)> {
        crate::resilience::registry::breakers()
    }
    fn current(i: &CircuitBreaker) -> CircuitBreakerConfig {
        i.config()
    }
    fn set(c: &mut CircuitBreakerConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
        rules::set_breaker(c, key, v)
    }
    fn show(c: &CircuitBreakerConfig, key: &str) -> Option<Shown> {
        rules::show_breaker(c, key)
    }
    fn problems(c: &CircuitBreakerConfig) -> Vec<ConfigError> {
        c.problems()
    }
    fn bases(b: &mut Bases) -> &mut HashMap<String, CircuitBreakerConfig> {
        &mut b.breakers
    }
    fn reconfigure(i: &CircuitBreaker, c: CircuitBreakerConfig) {
        let _ = i.reconfigure(c);
    }
}

impl Kind for Retries {
    type Instance = Retry;
    type Config = RetryConfig;
    const SECTION: Section = Section::Retry;
    const WHAT: &'static str = "retry";
    const KEYS: &'static [&'static str] = rules::RETRY_KEYS;
    const RELATED: &'static [(&'static str, &'static str)] = rules::RETRY_RELATED;
    fn instances() -> Vec<(String, Retry)> {
        crate::resilience::registry::retries()
    }
    fn current(i: &Retry) -> RetryConfig {
        i.config()
    }
    fn set(c: &mut RetryConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
        rules::set_retry(c, key, v)
    }
    fn show(c: &RetryConfig, key: &str) -> Option<Shown> {
        rules::show_retry(c, key)
    }
    fn problems(c: &RetryConfig) -> Vec<ConfigError> {
        c.problems()
    }
    fn bases(b: &mut Bases) -> &mut HashMap<String, RetryConfig> {
        &mut b.retries
    }
    fn reconfigure(i: &Retry, c: RetryConfig) {
        let _ = i.reconfigure(c);
    }
}

impl Kind for Bulkheads {
    type Instance = Bulkhead;
    type Config = BulkheadConfig;
    const SECTION: Section = Section::Bulkhead;
    const WHAT: &'static str = "bulkhead";
    const KEYS: &'static [&'static str] = rules::BULKHEAD_KEYS;
    fn instances() -> Vec<(String, Bulkhead)> {
        crate::resilience::registry::bulkheads()
    }
    fn current(i: &Bulkhead) -> BulkheadConfig {
        i.config()
    }
    fn set(c: &mut BulkheadConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
        rules::set_bulkhead(c, key, v)
    }
    fn show(c: &BulkheadConfig, key: &str) -> Option<Shown> {
        rules::show_bulkhead(c, key)
    }
    fn problems(c: &BulkheadConfig) -> Vec<ConfigError> {
        c.problems()
    }
    fn bases(b: &mut Bases) -> &mut HashMap<String, BulkheadConfig> {
        &mut b.bulkheads
    }
    fn reconfigure(i: &Bulkhead, c: BulkheadConfig) {
        let _ = i.reconfigure(c);
    }
}

impl Kind for RateLimiters {
    type Instance = RateLimiter;
    type Config = RateLimiterConfig;
    const SECTION: Section = Section::RateLimiter;
    const WHAT: &'static str = "rate limiter";
    const KEYS: &'static [&'static str] = rules::RATE_LIMITER_KEYS;
    fn instances() -> Vec<(String, RateLimiter)> {
        crate::resilience::registry::rate_limiters()
    }
    fn current(i: &RateLimiter) -> RateLimiterConfig {
        i.config()
    }
    fn set(c: &mut RateLimiterConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
        rules::set_rate_limiter(c, key, v)
    }
    fn show(c: &RateLimiterConfig, key: &str) -> Option<Shown> {
        rules::show_rate_limiter(c, key)
    }
    fn problems(c: &RateLimiterConfig) -> Vec<ConfigError> {
        c.problems()
    }
    fn bases(b: &mut Bases) -> &mut HashMap<String, RateLimiterConfig> {
        &mut b.rate_limiters
    }
    fn reconfigure(i: &RateLimiter, c: RateLimiterConfig) {
        let _ = i.reconfigure(c);
    }
}

impl Kind for Timeouts {
    type Instance = Timeout;
    type Config = Duration;
    const SECTION: Section = Section::Timeout;
    const WHAT: &'static str = "timeout";
    const KEYS: &'static [&'static str] = rules::TIMEOUT_KEYS;
    fn instances() -> Vec<(String, Timeout)> {
        crate::resilience::registry::timeouts()
    }
    fn current(i: &Timeout) -> Duration {
        i.duration()
    }
    fn set(c: &mut Duration, key: &str, v: &Value<'_>) -> Result<(), String> {
        rules::set_timeout(c, key, v)
    }
    fn show(c: &Duration, key: &str) -> Option<Shown> {
        (key == "after").then_some(Shown::Duration(*c))
    }
    fn problems(c: &Duration) -> Vec<ConfigError> {
        cortex_rules::resilience::check_timeout(*c)
            .err()
            .into_iter()
            .collect()
    }
    fn bases(b: &mut Bases) -> &mut HashMap<String, Duration> {
        &mut b.timeouts
    }
    fn reconfigure(i: &Timeout, c: Duration) {
        let _ = i.reconfigure(c);
    }
}

/// The keys of `[health.<check>]`.
pub(crate) const CHECK_KEYS: &[&str] = &["timeout", "group", "critical"];
/// The keys of `[health]` itself.
pub(crate) const HEALTH_KEYS: &[&str] = &["cache", "probe_deadline"];
/// The keys of `[traces]`.
pub(crate) const TRACES_KEYS: &[&str] = &["sampler_ratio"];

impl Kind for Checks {
    type Instance = String;
    type Config = CheckOptions;
    const SECTION: Section = Section::Health;
    const WHAT: &'static str = "health check";
    const KEYS: &'static [&'static str] = CHECK_KEYS;
    fn instances() -> Vec<(String, String)> {
        let _ = crate::metrics::global();
        crate::health::global()
            .names()
            .into_iter()
            .map(|n| (n.clone(), n))
            .collect()
    }
    fn current(name: &String) -> CheckOptions {
        crate::health::global()
            .check_options(name)
            .unwrap_or_default()
    }
    fn set(c: &mut CheckOptions, key: &str, v: &Value<'_>) -> Result<(), String> {
        *c = match key {
            "timeout" => c.timeout(rules::duration(key, v, false)?),
            "critical" => c.critical(rules::flag(key, v)?),
            "group" => c.group(match rules::word(key, v)? {
                "liveness" => Group::Liveness,
                "readiness" => Group::Readiness,
                "both" => Group::Both,
                other => {
                    return Err(format!(
                        "unknown group \"{other}\"; the groups are \"liveness\", \"readiness\" and \"both\""
                    ))
                }
            }),
            _ => return Err(rules::unknown(key, CHECK_KEYS)),
        };
        Ok(())
    }
    fn show(c: &CheckOptions, key: &str) -> Option<Shown> {
        Some(match key {
            "timeout" => Shown::Duration(c.time_limit()),
            "critical" => Shown::Bool(c.is_critical()),
            "group" => Shown::Word(match c.probe_group() {
                Group::Liveness => "liveness",
                Group::Readiness => "readiness",
                Group::Both => "both",
            }),
            _ => return None,
        })
    }
    fn bases(b: &mut Bases) -> &mut HashMap<String, CheckOptions> {
        &mut b.checks
    }
    fn reconfigure(name: &String, c: CheckOptions) {
        crate::health::global().set_check_options(name, c);
    }
}
