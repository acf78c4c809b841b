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

/// Every rule a configuration breaks, in key order.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn fail(&mut self, key: &'static str, message: impl Into<String>) {
        self.0.push(ConfigError {
            key,
            message: message.into(),
        });
    }

    fn positive(&mut self, key: &'static str, d: Duration) {
        if d.is_zero() {
            self.fail(key, "must be longer than zero");
        }
    }

    fn first(self) -> Result<(), ConfigError> {
        match self.0.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
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

/// Longer waits in the open state after consecutive openings:
/// `open_for * multiplier^(n - 1)` for the n-th opening in a row (the count
/// starts again when the breaker closes), capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenForBackoff {
    /// Growth per consecutive opening (> 1).
    pub multiplier: f64,
    /// The longest wait.
    pub max: Duration,
}

/// The most trial calls a half-open breaker can let through.
pub const MAX_HALF_OPEN_CALLS: u32 = 4095;

/// The duration of a bare `#[timeout]`: 1 s, Resilience4j TimeLimiter's
/// default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Circuit breaker settings. Defaults are Resilience4j's, but for
/// `slow_call_threshold`, off by default (see there).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerConfig {
    /// Opens when this percentage of calls in the window failed (1..=100).
    pub failure_rate: u8,
    /// Opens when this percentage of calls in the window were slow (1..=100).
    pub slow_call_rate: u8,
    /// A call slower than this is slow; `None` (the default) does not time
    /// calls at all, which keeps the closed path free of clock reads.
    /// (Resilience4j's default is 60 s with a 100 % slow-call rate, so a
    /// breaker opens when every call in the window took over a minute; set
    /// `Some(Duration::from_secs(60))` for that.)
    pub slow_call_threshold: Option<Duration>,
    /// No verdict before this many calls are in the window.
    pub minimum_calls: u32,
    /// The window.
    pub window: Window,
    /// How long it stays open before letting trial calls through.
    pub open_for: Duration,
    /// How many trial calls it lets through when half-open (at most
    /// [`MAX_HALF_OPEN_CALLS`]).
    pub half_open_calls: u32,
    /// How an open breaker shows in `/health`.
    pub health: OpenHealth,
    /// Goes half-open by itself when `open_for` has passed, even if no call
    /// arrives (Resilience4j's `automaticTransitionFromOpenToHalfOpenEnabled`);
    /// otherwise the first call after it does.
    pub automatic_half_open: bool,
    /// A half-open breaker whose trial calls have not all finished by then
    /// opens again (Resilience4j's `maxWaitDurationInHalfOpenState`); `None`
    /// waits for them however long they take.
    pub max_wait_in_half_open: Option<Duration>,
    /// Longer `open_for` after consecutive openings; `None` keeps it fixed.
    pub open_for_backoff: Option<OpenForBackoff>,
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
            automatic_half_open: false,
            max_wait_in_half_open: None,
            open_for_backoff: None,
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
        self.check().first()
    }

    /// Every rule this configuration breaks (empty when it is valid), so a
    /// caller can report them all at once.
    pub fn problems(&self) -> Vec<ConfigError> {
        self.check().0
    }

    fn check(&self) -> Problems {
        let mut p = Problems::default();
        if !(1..=100).contains(&self.failure_rate) {
            p.fail(
                "failure_rate",
                format!(
                    "{} is outside 1..=100 (a percentage, like `failure_rate = 50`)",
                    self.failure_rate
                ),
            );
        }
        if !(1..=100).contains(&self.slow_call_rate) {
            p.fail(
                "slow_call_rate",
                format!(
                    "{} is outside 1..=100 (a percentage, like `slow_call_rate = 80`)",
                    self.slow_call_rate
                ),
            );
        }
        if let Some(t) = self.slow_call_threshold {
            p.positive("slow_call_threshold", t);
        }
        if self.minimum_calls == 0 {
            p.fail("minimum_calls", "must be at least 1");
        }
        match self.window {
            Window::Count(0) => p.fail("window", "a count window needs at least 1 call"),
            Window::Count(n) if n > 1_000_000 => {
                p.fail("window", "a count window holds at most 1000000 calls")
            }
            Window::Count(n) if self.minimum_calls > n => p.fail(
                "minimum_calls",
                format!(
                    "{} is more than the window holds ({n} calls), so the breaker could never open",
                    self.minimum_calls
                ),
            ),
            Window::Time(d) if d < Duration::from_secs(1) => p.fail(
                "window",
                "a time window is at least 1s (it is kept in one-second buckets)",
            ),
            Window::Time(d) if d > Duration::from_secs(3600) => {
                p.fail("window", "a time window is at most 1h")
            }
            _ => {}
        }
        p.positive("open_for", self.open_for);
        if self.half_open_calls == 0 {
            p.fail(
                "half_open_calls",
                "must be at least 1 (the trial calls that can close the breaker)",
            );
        } else if self.half_open_calls > MAX_HALF_OPEN_CALLS {
            p.fail(
                "half_open_calls",
                format!(
                    "{} is more than {MAX_HALF_OPEN_CALLS}, the most trial calls a breaker counts",
                    self.half_open_calls
                ),
            );
        }
        if let Some(d) = self.max_wait_in_half_open {
            p.positive("max_wait_in_half_open", d);
        }
        if let Some(b) = self.open_for_backoff {
            if !(b.multiplier.is_finite() && b.multiplier > 1.0) {
                p.fail(
                    "open_for_multiplier",
                    format!(
                        "{} must be a finite number above 1, like `open_for_multiplier = 2.0`",
                        b.multiplier
                    ),
                );
            }
            if b.max < self.open_for {
                p.fail(
                    "max_open_for",
                    format!("{:?} is below `open_for` ({:?})", b.max, self.open_for),
                );
            }
        }
        p
    }

    /// How long the `n`-th consecutive opening (1 for the first) stays open.
    pub fn open_for_nth(&self, n: u32) -> Duration {
        match self.open_for_backoff {
            None => self.open_for,
            Some(b) => {
                let factor = b
                    .multiplier
                    .powi(i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX));
                let secs = self.open_for.as_secs_f64() * factor;
                if !secs.is_finite() || secs >= b.max.as_secs_f64() {
                    b.max
                } else {
                    Duration::from_secs_f64(secs)
                }
            }
        }
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
        /// The cap on the backoff. [`JitterMode::Proportional`] jitter is
        /// applied after it, so a delay can be up to `jitter` of it above
        /// (with `jitter = 0.2`, up to 1.2 x `max_delay`), as Resilience4j's
        /// randomized wait does; `Full` and `Decorrelated` jitter stay
        /// within it.
        max_delay: Duration,
    },
}

/// How a retry's delays are randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JitterMode {
    /// Each delay moved by up to `jitter` of itself either way (`jitter =
    /// 0.2`: +-20 %); none with `jitter = 0`.
    #[default]
    Proportional,
    /// Each delay drawn uniformly from zero to the backoff's delay ("full
    /// jitter"): spreads a herd of clients the most.
    Full,
    /// Each delay drawn from `delay` to three times the previous one, capped
    /// at the backoff's largest delay ("decorrelated jitter").
    Decorrelated,
}

/// The smallest retry budget (a share of calls).
pub const MIN_RETRY_BUDGET: f64 = 0.000_001;

/// Retry settings. Defaults are Resilience4j's (3 attempts, 500 ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Attempts in all, including the first (at least 1).
    pub max: u32,
    /// The delay before the first retry.
    pub delay: Duration,
    /// How delays grow.
    pub backoff: Backoff,
    /// Random spread of each delay: 0.2 means +-20 % (0..=1), for
    /// [`JitterMode::Proportional`].
    pub jitter: f64,
    /// How delays are randomised.
    pub jitter_mode: JitterMode,
    /// Retries may be at most this share of recent calls
    /// ([`MIN_RETRY_BUDGET`]..=1; `None`: no budget).
    pub budget: Option<f64>,
    /// No attempt starts later than this after the first one; `None`: no
    /// deadline.
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(500),
            backoff: Backoff::Fixed,
            jitter: 0.0,
            jitter_mode: JitterMode::Proportional,
            budget: None,
            max_elapsed: None,
        }
    }
}

impl RetryConfig {
    /// Checks every rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().first()
    }

    /// Every rule this configuration breaks (empty when it is valid).
    pub fn problems(&self) -> Vec<ConfigError> {
        self.check().0
    }

    fn check(&self) -> Problems {
        let mut p = Problems::default();
        if self.max == 0 {
            p.fail("max", "must be at least 1 (it counts the first attempt)");
        }
        p.positive("delay", self.delay);
        if let Backoff::Exponential {
            multiplier,
            max_delay,
        } = self.backoff
        {
            if !(multiplier.is_finite() && multiplier > 1.0) {
                p.fail(
                    "multiplier",
                    format!(
                        "{multiplier} must be a finite number above 1, like `multiplier = 2.0`"
                    ),
                );
            }
            if max_delay < self.delay {
                p.fail(
                    "max_delay",
                    format!("{max_delay:?} is below `delay` ({:?})", self.delay),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            p.fail(
                "jitter",
                format!(
                    "{} is outside 0..=1: jitter is the share of each delay to randomise, like `jitter = 0.2` for +-20 %",
                    self.jitter
                ),
            );
        }
        if let Some(b) = self.budget {
            if !(MIN_RETRY_BUDGET..=1.0).contains(&b) {
                p.fail(
                    "budget",
                    format!(
                        "{b} is outside {MIN_RETRY_BUDGET}..=1: the budget is the share of calls that may be retried, like `budget = 0.1`"
                    ),
                );
            }
        }
        if let Some(d) = self.max_elapsed {
            p.positive("max_elapsed", d);
        }
        p
    }
}

/// Bulkhead settings. Defaults are Resilience4j's (25, no wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BulkheadConfig {
    /// Calls allowed at once (at least 1).
    pub max_concurrent: u32,
    /// How long a caller may wait for a place (zero: reject at once).
    pub max_wait: Duration,
    /// Waiting callers get places in arrival order (the default, as
    /// Resilience4j's); `false` lets a newcomer take a place that comes free
    /// before a waiter does.
    pub fair: bool,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
            fair: true,
        }
    }
}

impl BulkheadConfig {
    /// Checks every rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().first()
    }

    /// Every rule this configuration breaks (empty when it is valid).
    pub fn problems(&self) -> Vec<ConfigError> {
        self.check().0
    }

    fn check(&self) -> Problems {
        let mut p = Problems::default();
        if self.max_concurrent == 0 {
            p.fail("max_concurrent", "must be at least 1");
        }
        p
    }
}

/// The highest rate a rate limiter counts (one permit a nanosecond).
pub const MAX_PERMITS_PER_SECOND: f64 = 1e9;

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
        self.check().first()
    }

    /// Every rule this configuration breaks (empty when it is valid).
    pub fn problems(&self) -> Vec<ConfigError> {
        self.check().0
    }

    fn check(&self) -> Problems {
        let mut p = Problems::default();
        if self.permits == 0 {
            p.fail("permits", "must be at least 1");
        }
        p.positive("period", self.period);
        if !self.period.is_zero()
            && f64::from(self.permits) / self.period.as_secs_f64() > MAX_PERMITS_PER_SECOND
        {
            p.fail(
                "permits",
                format!(
                    "{} per {:?} is more than {MAX_PERMITS_PER_SECOND} permits a second",
                    self.permits, self.period
                ),
            );
        }
        p
    }
}

/// Checks a timeout duration.
pub fn check_timeout(d: Duration) -> Result<(), ConfigError> {
    let mut p = Problems::default();
    p.positive("timeout", d);
    p.first()
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
    fn problems_lists_every_broken_rule() {
        let bad = CircuitBreakerConfig {
            failure_rate: 0,
            half_open_calls: 0,
            open_for: Duration::ZERO,
            ..CircuitBreakerConfig::default()
        };
        let keys: Vec<_> = bad.problems().iter().map(|e| e.key).collect();
        assert_eq!(keys, ["failure_rate", "open_for", "half_open_calls"]);
        assert_eq!(bad.validate().unwrap_err().key, "failure_rate");
        let retry = RetryConfig {
            max: 0,
            jitter: -0.5,
            ..RetryConfig::default()
        };
        let keys: Vec<_> = retry.problems().iter().map(|e| e.key).collect();
        assert_eq!(keys, ["max", "jitter"]);
        assert!(CircuitBreakerConfig::default().problems().is_empty());
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
