//! Policy settings by key, as a configuration file or the environment
//! writes them: the keys each policy accepts (the attribute's keys, less
//! those that name code), how a value sets one, how a configuration shows
//! one, and the nearest known name for a typo.
//!
//! The runtime's `cortex::config` reads files and variables with these; the
//! values then go through the same `problems()` checks as an attribute's.
//!
//! ```
//! use cortex_rules::config::{set_breaker, Value};
//! use cortex_rules::resilience::CircuitBreakerConfig;
//!
//! let mut c = CircuitBreakerConfig::default();
//! set_breaker(&mut c, "failure_rate", &Value::Int(60)).unwrap();
//! set_breaker(&mut c, "open_for", &Value::Text("30s")).unwrap(); // from an env var
//! assert_eq!((c.failure_rate, c.open_for.as_secs()), (60, 30));
//! assert_eq!(
//!     set_breaker(&mut c, "failure_rate", &Value::Str("60")).unwrap_err(),
//!     "expects a whole number, like `failure_rate = 50`, not a string"
//! );
//! ```

use std::time::Duration;

pub use crate::nearest::nearest;

use crate::resilience::{
    Backoff, BulkheadConfig, CircuitBreakerConfig, JitterMode, OpenForBackoff, OpenHealth,
    RateLimiterConfig, RetryConfig, Window,
};

/// A value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A TOML integer.
    Int(i64),
    /// A TOML float.
    Float(f64),
    /// A TOML boolean.
    Bool(bool),
    /// A TOML string.
    Str(&'a str),
    /// Untyped text (an environment variable): read as whatever the key
    /// expects.
    Text(&'a str),
    /// Any other TOML value (an array, a table, a date), by its type name.
    Other(&'static str),
}

/// A setting's value, as a configuration shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shown {
    /// A whole number.
    Int(i64),
    /// A number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// A duration, shown in the attribute syntax (`"250ms"`).
    Duration(Duration),
    /// A word (`"degraded"`, `"full"`).
    Word(&'static str),
    /// Not set (`None`).
    Unset,
}

/// The keys `#[circuit_breaker]` accepts, in the order its errors list
/// them; a configuration may set all but the [`CODE_KEYS`].
pub const BREAKER_KEYS: &[&str] = &[
    "name",
    "failure_rate",
    "slow_call_rate",
    "slow_call_threshold",
    "minimum_calls",
    "window",
    "open_for",
    "half_open_calls",
    "health",
    "record_if",
    "ignore_if",
    "record_result",
    "automatic_half_open",
    "max_wait_in_half_open",
    "open_for_multiplier",
    "max_open_for",
    "fallback",
    "crate",
];

/// A breaker rule between two keys, reported on the second when the
/// first was not written: `minimum_calls` over the window's size is the
/// window's fault when only the window was set.
pub const BREAKER_RELATED: &[(&str, &str)] =
    &[("minimum_calls", "window"), ("max_open_for", "open_for")];

/// The retry's rules between two keys (see [`BREAKER_RELATED`]).
pub const RETRY_RELATED: &[(&str, &str)] = &[("max_delay", "delay")];

/// The keys `#[retry]` accepts.
pub const RETRY_KEYS: &[&str] = &[
    "name",
    "max",
    "delay",
    "multiplier",
    "max_delay",
    "jitter",
    "budget",
    "max_elapsed",
    "retry_if",
    "retry_on_result",
    "fallback",
    "crate",
];

/// The keys `#[bulkhead]` accepts.
pub const BULKHEAD_KEYS: &[&str] = &[
    "name",
    "max_concurrent",
    "max_wait",
    "fair",
    "fallback",
    "crate",
];

/// The keys `#[rate_limit]` accepts.
pub const RATE_LIMITER_KEYS: &[&str] =
    &["name", "permits", "period", "max_wait", "fallback", "crate"];

/// The keys `#[timeout]` accepts.
pub const TIMEOUT_KEYS: &[&str] = &["after", "name", "fallback", "crate"];

/// Attribute keys that name code (a function, a path) or the instance
/// itself, so only the attribute can set them.
pub const CODE_KEYS: &[&str] = &[
    "record_if",
    "ignore_if",
    "record_result",
    "retry_if",
    "retry_on_result",
    "fallback",
    "name",
    "crate",
];

/// A whole number that fits `T`.
pub fn whole<T: TryFrom<i64>>(key: &str, v: &Value<'_>) -> Result<T, String> {
    let n = match v {
        Value::Int(n) => *n,
        Value::Text(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("`{t}` is not a whole number, like `{key} = 50`"))?,
        other => {
            return Err(format!(
                "expects a whole number, like `{key} = 50`, {}",
                not(other)
            ))
        }
    };
    T::try_from(n).map_err(|_| format!("{n} is out of range for `{key}`"))
}

/// A number (a whole one too).
pub fn number(key: &str, v: &Value<'_>) -> Result<f64, String> {
    match v {
        Value::Int(n) => Ok(*n as f64),
        Value::Float(f) => Ok(*f),
        Value::Text(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{t}` is not a number, like `{key} = 0.5`")),
        other => Err(format!(
            "expects a number, like `{key} = 0.5`, {}",
            not(other)
        )),
    }
}

/// A flag.
pub fn flag(key: &str, v: &Value<'_>) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Text(t) => match t.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("`{other}` is not `true` or `false`")),
        },
        other => Err(format!(
            "expects `true` or `false` for `{key}`, {}",
            not(other)
        )),
    }
}

/// A word (a string in a file, the text of a variable).
pub fn word<'a>(key: &str, v: &Value<'a>) -> Result<&'a str, String> {
    match v {
        Value::Str(s) | Value::Text(s) => Ok(s.trim()),
        other => Err(format!("expects a string for `{key}`, {}", not(other))),
    }
}

/// A duration in the attribute syntax (`"250ms"`); `zero_ok` also takes
/// `"0s"` (or `0`).
pub fn duration(key: &str, v: &Value<'_>, zero_ok: bool) -> Result<Duration, String> {
    let text = match v {
        Value::Str(s) | Value::Text(s) => s.trim(),
        Value::Int(0) if zero_ok => return Ok(Duration::ZERO),
        other => {
            return Err(format!(
                "expects a duration like `{key} = \"250ms\"`, {}",
                not(other)
            ))
        }
    };
    if zero_ok
        && text
            .bytes()
            .take_while(u8::is_ascii_digit)
            .all(|b| b == b'0')
    {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && crate::parse_duration(&format!("1{}", &text[digits..])).is_ok() {
            return Ok(Duration::ZERO);
        }
    }
    crate::parse_duration(text)
        .map(Duration::from_nanos)
        .map_err(|e| e.to_string())
}

fn not(v: &Value<'_>) -> String {
    match v {
        Value::Int(n) => format!("not the integer {n}"),
        Value::Float(f) => format!("not the number {f}"),
        Value::Bool(b) => format!("not `{b}`"),
        Value::Str(_) => "not a string".into(),
        Value::Text(t) => format!("not `{t}`"),
        Value::Other(kind) => format!("not {kind}"),
    }
}

/// Sets one key of a breaker configuration.
///
/// # Errors
/// An unknown key, or a value of the wrong kind, with what was expected.
/// The rules between keys are left to
/// [`CircuitBreakerConfig::problems`].
pub fn set_breaker(c: &mut CircuitBreakerConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
    match key {
        "failure_rate" => c.failure_rate = whole(key, v)?,
        "slow_call_rate" => c.slow_call_rate = whole(key, v)?,
        "slow_call_threshold" => c.slow_call_threshold = Some(duration(key, v, false)?),
        "minimum_calls" => c.minimum_calls = whole(key, v)?,
        "window" => {
            c.window = match v {
                Value::Int(_) => Window::Count(whole(key, v)?),
                Value::Text(t) if t.trim().bytes().all(|b| b.is_ascii_digit()) => {
                    Window::Count(whole(key, v)?)
                }
                Value::Str(_) | Value::Text(_) => Window::Time(duration(key, v, false)?),
                other => {
                    return Err(format!(
                    "is a number of calls (`window = 100`) or a duration (`window = \"60s\"`), {}",
                    not(other)
                ))
                }
            }
        }
        "open_for" => c.open_for = duration(key, v, false)?,
        "half_open_calls" => c.half_open_calls = whole(key, v)?,
        "health" => {
            c.health = match word(key, v)? {
                "degraded" => OpenHealth::Degraded,
                "down" => OpenHealth::Down,
                other => {
                    return Err(format!(
                    "unknown health \"{other}\"; an open breaker reports \"degraded\" or \"down\""
                ))
                }
            }
        }
        "automatic_half_open" => c.automatic_half_open = flag(key, v)?,
        "max_wait_in_half_open" => c.max_wait_in_half_open = Some(duration(key, v, false)?),
        "open_for_multiplier" => {
            let multiplier = number(key, v)?;
            let max = c
                .open_for_backoff
                .map_or(Duration::from_secs(3600), |b| b.max);
            c.open_for_backoff = Some(OpenForBackoff { multiplier, max });
        }
        "max_open_for" => {
            let max = duration(key, v, false)?;
            let multiplier = c.open_for_backoff.map_or(2.0, |b| b.multiplier);
            c.open_for_backoff = Some(OpenForBackoff { multiplier, max });
        }
        _ => return Err(unknown(key, BREAKER_KEYS)),
    }
    Ok(())
}

/// Shows one key of a breaker configuration (`None` for an unknown key).
pub fn show_breaker(c: &CircuitBreakerConfig, key: &str) -> Option<Shown> {
    Some(match key {
        "failure_rate" => Shown::Int(c.failure_rate.into()),
        "slow_call_rate" => Shown::Int(c.slow_call_rate.into()),
        "slow_call_threshold" => c.slow_call_threshold.map_or(Shown::Unset, Shown::Duration),
        "minimum_calls" => Shown::Int(c.minimum_calls.into()),
        "window" => match c.window {
            Window::Count(n) => Shown::Int(n.into()),
            Window::Time(d) => Shown::Duration(d),
        },
        "open_for" => Shown::Duration(c.open_for),
        "half_open_calls" => Shown::Int(c.half_open_calls.into()),
        "health" => Shown::Word(match c.health {
            OpenHealth::Degraded => "degraded",
            OpenHealth::Down => "down",
        }),
        "automatic_half_open" => Shown::Bool(c.automatic_half_open),
        "max_wait_in_half_open" => c
            .max_wait_in_half_open
            .map_or(Shown::Unset, Shown::Duration),
        "open_for_multiplier" => c
            .open_for_backoff
            .map_or(Shown::Unset, |b| Shown::Float(b.multiplier)),
        "max_open_for" => c
            .open_for_backoff
            .map_or(Shown::Unset, |b| Shown::Duration(b.max)),
        _ => return None,
    })
}

/// Sets one key of a retry configuration.
///
/// # Errors
/// As [`set_breaker`].
pub fn set_retry(c: &mut RetryConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
    match key {
        "max" => c.max = whole(key, v)?,
        "delay" => c.delay = duration(key, v, false)?,
        "multiplier" => {
            let multiplier = number(key, v)?;
            let max_delay = match c.backoff {
                Backoff::Exponential { max_delay, .. } => max_delay,
                Backoff::Fixed => Duration::from_secs(3600),
            };
            c.backoff = Backoff::Exponential {
                multiplier,
                max_delay,
            };
        }
        "max_delay" => {
            let max_delay = duration(key, v, false)?;
            let multiplier = match c.backoff {
                Backoff::Exponential { multiplier, .. } => multiplier,
                Backoff::Fixed => 2.0,
            };
            c.backoff = Backoff::Exponential {
                multiplier,
                max_delay,
            };
        }
        "jitter" => match v {
            Value::Str(s) | Value::Text(s) if s.trim().parse::<f64>().is_err() => {
                c.jitter_mode = match s.trim() {
                    "full" => JitterMode::Full,
                    "decorrelated" => JitterMode::Decorrelated,
                    other => return Err(format!(
                        "unknown jitter \"{other}\"; write a share of the delay (`jitter = 0.2`), \"full\" or \"decorrelated\""
                    )),
                }
            }
            _ => {
                c.jitter = number(key, v)?;
                c.jitter_mode = JitterMode::Proportional;
            }
        },
        "budget" => c.budget = Some(number(key, v)?),
        "max_elapsed" => c.max_elapsed = Some(duration(key, v, false)?),
        _ => return Err(unknown(key, RETRY_KEYS)),
    }
    Ok(())
}

/// Shows one key of a retry configuration.
pub fn show_retry(c: &RetryConfig, key: &str) -> Option<Shown> {
    Some(match key {
        "max" => Shown::Int(c.max.into()),
        "delay" => Shown::Duration(c.delay),
        "multiplier" => match c.backoff {
            Backoff::Exponential { multiplier, .. } => Shown::Float(multiplier),
            Backoff::Fixed => Shown::Unset,
        },
        "max_delay" => match c.backoff {
            Backoff::Exponential { max_delay, .. } => Shown::Duration(max_delay),
            Backoff::Fixed => Shown::Unset,
        },
        "jitter" => match c.jitter_mode {
            JitterMode::Proportional => Shown::Float(c.jitter),
            JitterMode::Full => Shown::Word("full"),
            JitterMode::Decorrelated => Shown::Word("decorrelated"),
        },
        "budget" => c.budget.map_or(Shown::Unset, Shown::Float),
        "max_elapsed" => c.max_elapsed.map_or(Shown::Unset, Shown::Duration),
        _ => return None,
    })
}

/// Sets one key of a bulkhead configuration.
///
/// # Errors
/// As [`set_breaker`].
pub fn set_bulkhead(c: &mut BulkheadConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
    match key {
        "max_concurrent" => c.max_concurrent = whole(key, v)?,
        "max_wait" => c.max_wait = duration(key, v, true)?,
        "fair" => c.fair = flag(key, v)?,
        _ => return Err(unknown(key, BULKHEAD_KEYS)),
    }
    Ok(())
}

/// Shows one key of a bulkhead configuration.
pub fn show_bulkhead(c: &BulkheadConfig, key: &str) -> Option<Shown> {
    Some(match key {
        "max_concurrent" => Shown::Int(c.max_concurrent.into()),
        "max_wait" => Shown::Duration(c.max_wait),
        "fair" => Shown::Bool(c.fair),
        _ => return None,
    })
}

/// Sets one key of a rate limiter configuration.
///
/// # Errors
/// As [`set_breaker`].
pub fn set_rate_limiter(c: &mut RateLimiterConfig, key: &str, v: &Value<'_>) -> Result<(), String> {
    match key {
        "permits" => c.permits = whole(key, v)?,
        "period" => c.period = duration(key, v, false)?,
        "max_wait" => c.max_wait = duration(key, v, true)?,
        _ => return Err(unknown(key, RATE_LIMITER_KEYS)),
    }
    Ok(())
}

/// Shows one key of a rate limiter configuration.
pub fn show_rate_limiter(c: &RateLimiterConfig, key: &str) -> Option<Shown> {
    Some(match key {
        "permits" => Shown::Int(c.permits.into()),
        "period" => Shown::Duration(c.period),
        "max_wait" => Shown::Duration(c.max_wait),
        _ => return None,
    })
}

/// Sets a timeout's one key, `after`.
///
/// # Errors
/// As [`set_breaker`].
pub fn set_timeout(after: &mut Duration, key: &str, v: &Value<'_>) -> Result<(), String> {
    match key {
        "after" => *after = duration(key, v, false)?,
        _ => return Err(unknown(key, TIMEOUT_KEYS)),
    }
    Ok(())
}

/// The message for a key that is not one of `known`: names the nearest, or
/// says the key names code.
pub fn unknown(key: &str, known: &[&str]) -> String {
    if CODE_KEYS.contains(&key) {
        return format!("`{key}` names code, so only the attribute can set it");
    }
    let settable: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| !CODE_KEYS.contains(k))
        .collect();
    match nearest(key, settable.iter().copied()) {
        Some(near) => format!("unknown key `{key}`; did you mean `{near}`?"),
        None => format!("unknown key `{key}`; the keys are {}", settable.join(", ")),
    }
}

/// A duration in the attribute syntax: the largest unit that divides it.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(cortex_rules::config::show_duration(Duration::from_millis(1500)), "1500ms");
/// assert_eq!(cortex_rules::config::show_duration(Duration::from_secs(120)), "2m");
/// assert_eq!(cortex_rules::config::show_duration(Duration::ZERO), "0s");
/// ```
pub fn show_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos % scale == 0 {
            return format!("{}{unit}", nanos / scale);
        }
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_breaker_key_sets_and_shows() {
        let mut c = CircuitBreakerConfig::default();
        for (key, v) in [
            ("failure_rate", Value::Int(60)),
            ("slow_call_rate", Value::Text("70")),
            ("slow_call_threshold", Value::Str("2s")),
            ("minimum_calls", Value::Int(5)),
            ("window", Value::Text("60s")),
            ("open_for", Value::Str("30s")),
            ("half_open_calls", Value::Int(3)),
            ("health", Value::Str("down")),
            ("automatic_half_open", Value::Text("true")),
            ("max_wait_in_half_open", Value::Str("5s")),
            ("open_for_multiplier", Value::Float(1.5)),
            ("max_open_for", Value::Str("10m")),
        ] {
            set_breaker(&mut c, key, &v).unwrap();
            assert!(show_breaker(&c, key).is_some(), "{key}");
        }
        assert_eq!(c.window, Window::Time(Duration::from_secs(60)));
        assert_eq!(show_breaker(&c, "health"), Some(Shown::Word("down")));
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        set_breaker(&mut c, "window", &Value::Text("100")).unwrap();
        assert_eq!(c.window, Window::Count(100));
        assert_eq!(
            set_breaker(&mut c, "failure_rat", &Value::Int(1)).unwrap_err(),
            "unknown key `failure_rat`; did you mean `failure_rate`?"
        );
        assert_eq!(
            set_breaker(&mut c, "record_if", &Value::Str("f")).unwrap_err(),
            "`record_if` names code, so only the attribute can set it"
        );
        assert_eq!(
            set_breaker(&mut c, "failure_rate", &Value::Int(1000)).unwrap_err(),
            "1000 is out of range for `failure_rate`"
        );
    }

    #[test]
    fn retry_and_the_rest() {
        let mut r = RetryConfig::default();
        set_retry(&mut r, "multiplier", &Value::Float(3.0)).unwrap();
        set_retry(&mut r, "jitter", &Value::Str("full")).unwrap();
        assert_eq!(show_retry(&r, "jitter"), Some(Shown::Word("full")));
        set_retry(&mut r, "jitter", &Value::Text("0.2")).unwrap();
        assert_eq!(show_retry(&r, "jitter"), Some(Shown::Float(0.2)));
        assert_eq!(
            r.backoff,
            Backoff::Exponential {
                multiplier: 3.0,
                max_delay: Duration::from_secs(3600)
            }
        );
        let mut b = BulkheadConfig::default();
        set_bulkhead(&mut b, "max_wait", &Value::Text("0s")).unwrap();
        set_bulkhead(&mut b, "max_wait", &Value::Int(0)).unwrap();
        assert_eq!(b.max_wait, Duration::ZERO);
        assert!(set_bulkhead(&mut b, "max_wait", &Value::Int(5)).is_err());
        let mut l = RateLimiterConfig::default();
        assert!(set_rate_limiter(&mut l, "period", &Value::Str("0s")).is_err());
        let mut t = Duration::ZERO;
        set_timeout(&mut t, "after", &Value::Str("250ms")).unwrap();
        assert_eq!(t, Duration::from_millis(250));
    }

    #[test]
    fn typos_are_near_and_strangers_are_not() {
        assert_eq!(
            nearest("open_fro", BREAKER_KEYS.iter().copied()),
            Some("open_for")
        );
        assert_eq!(nearest("mx", RETRY_KEYS.iter().copied()), Some("max"));
        assert_eq!(nearest("completely_else", RETRY_KEYS.iter().copied()), None);
    }
}
