//! Configuration of the resilience policies and its validity rules, used by
//! the runtime (`cortex::resilience`, including `reconfigure`) and by the
//! policy attributes at compile time.

use std::fmt;
use std::time::Duration;

/// A rule a policy configuration broke: the key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending key, as written in the attribute.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn fail(key: &'static str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        key,
        message: message.into(),
    })
}

fn positive(key: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return fail(key, "must be longer than zero");
    }
    Ok(())
}

/// The window a circuit breaker judges its failure rate over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The last N calls.
    Count(u32),
    /// The calls of the last period (kept in one-second buckets).
    Time(Duration),
}

/// How an open circuit breaker reports in `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OpenHealth {
    /// Open is DEGRADED (the default).
    #[default]
    Degraded,
    /// Open is DOWN.
    Down,
}

/// Circuit breaker settings. Defaults are Resilience4j's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CircuitBreakerConfig {
    /// Opens when this percentage of calls in the window failed (1..=100).
    pub failure_rate: u8,
    /// Opens when this percentage of calls in the window were slow (1..=100).
    pub slow_call_rate: u8,
    /// A call slower than this is slow; `None` (the default) does not time
    /// calls at all, which keeps the closed path free of clock reads.
    pub slow_call_threshold: Option<Duration>,
    /// No verdict before this many calls are in the window.
    pub minimum_calls: u32,
    /// The window.
    pub window: Window,
    /// How long it stays open before letting trial calls through.
    pub open_for: Duration,
    /// How many trial calls it lets through when half-open.
    pub half_open_calls: u32,
    /// How an open breaker shows in `/health`.
    pub health: OpenHealth,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_rate: 50,
            slow_call_rate: 100,
            slow_call_threshold: None,
            minimum_calls: 100,
            window: Window::Count(100),
            open_for: Duration::from_secs(60),
            half_open_calls: 10,
            health: OpenHealth::Degraded,
        }
    }
}

impl CircuitBreakerConfig {
    /// Checks every rule.
    ///
    /// ```
    /// use cortex_rules::resilience::{CircuitBreakerConfig, Window};
    /// let mut c = CircuitBreakerConfig::default();
    /// assert!(c.validate().is_ok());
    /// c.window = Window::Count(10);
    /// assert_eq!(c.validate().unwrap_err().key, "minimum_calls");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=100).contains(&self.failure_rate) {
            return fail(
                "failure_rate",
                format!("{} is outside 1..=100 (a percentage)", self.failure_rate),
            );
        }
        if !(1..=100).contains(&self.slow_call_rate) {
            return fail(
                "slow_call_rate",
                format!("{} is outside 1..=100 (a percentage)", self.slow_call_rate),
            );
        }
        if let Some(t) = self.slow_call_threshold {
            positive("slow_call_threshold", t)?;
        }
        if self.minimum_calls == 0 {
            return fail("minimum_calls", "must be at least 1");
        }
        match self.window {
            Window::Count(0) => return fail("window", "a count window needs at least 1 call"),
            Window::Count(n) if n > 1_000_000 => {
                return fail("window", "a count window holds at most 1000000 calls")
            }
            Window::Count(n) if self.minimum_calls > n => {
                return fail(
                    "minimum_calls",
                    format!(
                    "{} is more than the window holds ({n} calls), so the breaker could never open",
                    self.minimum_calls
                ),
                )
            }
            Window::Time(d) if d < Duration::from_secs(1) => {
                return fail(
                    "window",
                    "a time window is at least 1s (it is kept in one-second buckets)",
                )
            }
            Window::Time(d) if d > Duration::from_secs(3600) => {
                return fail("window", "a time window is at most 1h")
            }
            _ => {}
        }
        positive("open_for", self.open_for)?;
        if self.half_open_calls == 0 {
            return fail(
                "half_open_calls",
                "must be at least 1 (the trial calls that can close the breaker)",
            );
        }
        Ok(())
    }
}

/// How retry delays grow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// The same delay every time.
    Fixed,
    /// `delay * multiplier^(attempt - 1)`, capped at `max_delay`.
    Exponential {
        /// Growth per attempt (> 1).
        multiplier: f64,
        /// The cap.
        max_delay: Duration,
    },
}

/// Retry settings. Defaults are Resilience4j's (3 attempts, 500 ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Attempts in all, including the first (at least 1).
    pub max: u32,
    /// The delay before the first retry.
    pub delay: Duration,
    /// How delays grow.
    pub backoff: Backoff,
    /// Random spread of each delay: 0.2 means +-20 % (0..=1).
    pub jitter: f64,
    /// Retries may be at most this share of recent calls (0..=1; `None`: no
    /// budget).
    pub budget: Option<f64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(500),
            backoff: Backoff::Fixed,
            jitter: 0.0,
            budget: None,
        }
    }
}

impl RetryConfig {
    /// Checks every rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max == 0 {
            return fail("max", "must be at least 1 (it counts the first attempt)");
        }
        positive("delay", self.delay)?;
        if let Backoff::Exponential {
            multiplier,
            max_delay,
        } = self.backoff
        {
            if !(multiplier.is_finite() && multiplier > 1.0) {
                return fail(
                    "multiplier",
                    format!("{multiplier} must be a finite number above 1"),
                );
            }
            if max_delay < self.delay {
                return fail(
                    "max_delay",
                    format!("{max_delay:?} is below `delay` ({:?})", self.delay),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return fail("jitter", format!("{} is outside 0..=1", self.jitter));
        }
        if let Some(b) = self.budget {
            if !(b > 0.0 && b <= 1.0) {
                return fail("budget", format!("{b} is outside 0 (excluded)..=1"));
            }
        }
        Ok(())
    }
}

/// Bulkhead settings. Defaults are Resilience4j's (25, no wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BulkheadConfig {
    /// Calls allowed at once (at least 1).
    pub max_concurrent: u32,
    /// How long a caller may wait for a place (zero: reject at once).
    pub max_wait: Duration,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
        }
    }
}

impl BulkheadConfig {
    /// Checks every rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent == 0 {
            return fail("max_concurrent", "must be at least 1");
        }
        Ok(())
    }
}

/// Rate limiter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimiterConfig {
    /// Permits per period (at least 1).
    pub permits: u32,
    /// The period.
    pub period: Duration,
    /// How long a caller may wait for a permit (zero: reject at once).
    pub max_wait: Duration,
}

impl Default for RateLimiterConfig {
    fn default() -> Self {
        RateLimiterConfig {
            permits: 50,
            period: Duration::from_millis(500),
            max_wait: Duration::from_secs(5),
        }
    }
}

impl RateLimiterConfig {
    /// Checks every rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.permits == 0 {
            return fail("permits", "must be at least 1");
        }
        positive("period", self.period)?;
        Ok(())
    }
}

/// Checks a timeout duration.
pub fn check_timeout(d: Duration) -> Result<(), ConfigError> {
    positive("timeout", d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_rules() {
        let ok = CircuitBreakerConfig::default();
        assert!(ok.validate().is_ok());
        let key = |c: CircuitBreakerConfig| c.validate().unwrap_err().key;
        assert_eq!(
            key(CircuitBreakerConfig {
                failure_rate: 0,
                ..ok
            }),
            "failure_rate"
        );
        assert_eq!(
            key(CircuitBreakerConfig {
                failure_rate: 101,
                ..ok
            }),
            "failure_rate"
        );
        assert_eq!(
            key(CircuitBreakerConfig {
                slow_call_rate: 0,
                ..ok
            }),
            "slow_call_rate"
        );
        assert_eq!(
            key(CircuitBreakerConfig {
                half_open_calls: 0,
                ..ok
            }),
            "half_open_calls"
        );
        assert_eq!(
            key(CircuitBreakerConfig {
                open_for: Duration::ZERO,
                ..ok
            }),
            "open_for"
        );
        assert_eq!(
            key(CircuitBreakerConfig {
                window: Window::Time(Duration::from_millis(10)),
                ..ok
            }),
            "window"
        );
        assert!(CircuitBreakerConfig {
            window: Window::Time(Duration::from_secs(60)),
            ..ok
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn retry_rules() {
        let ok = RetryConfig::default();
        assert!(ok.validate().is_ok());
        assert_eq!(
            RetryConfig { max: 0, ..ok }.validate().unwrap_err().key,
            "max"
        );
        assert_eq!(
            RetryConfig { jitter: 1.5, ..ok }
                .validate()
                .unwrap_err()
                .key,
            "jitter"
        );
        let exp = |m, d| RetryConfig {
            backoff: Backoff::Exponential {
                multiplier: m,
                max_delay: d,
            },
            ..ok
        };
        assert_eq!(
            exp(2.0, Duration::from_millis(100))
                .validate()
                .unwrap_err()
                .key,
            "max_delay"
        );
        assert_eq!(
            exp(1.0, Duration::from_secs(10))
                .validate()
                .unwrap_err()
                .key,
            "multiplier"
        );
        assert!(exp(2.0, Duration::from_secs(10)).validate().is_ok());
    }
}
