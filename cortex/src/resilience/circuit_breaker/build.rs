//! Making a breaker: its metrics (Resilience4j + Micrometer's set, named
//! `cortex_circuit_breaker_*`) and its health component.

use std::sync::{Arc, Weak};

use super::core::{Inner, Meters};
use super::{CircuitBreaker, STATES};
use crate::health::{CheckOptions, Health, HealthRegistry};
use crate::metrics::{Buckets, Histogram, Registry};
use crate::resilience::{CircuitBreakerConfig, ConfigError};

impl CircuitBreaker {
    pub(crate) fn build(
        name: &str,
        config: CircuitBreakerConfig,
        metrics: &Registry,
        health: Option<&HealthRegistry>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let conflict = crate::resilience::metrics_conflict("breaker", name);
        let calls = metrics
            .counter_family(
                "cortex_circuit_breaker_calls_total",
                "Calls through a circuit breaker, by kind.",
                &["name", "kind"],
            )
            .map_err(conflict)?;
        let series = |kind: &str| calls.with_labels(&[name, kind]).map_err(conflict);
        let durations = metrics
            .family::<Histogram>(
                "cortex_circuit_breaker_call_duration_seconds",
                "Durations of calls through a circuit breaker that times its calls (one with a slow_call_threshold), by kind.",
                &["name", "kind"],
                Buckets::default(),
            )
            .map_err(conflict)?;
        let duration = |kind: &str| durations.with_labels(&[name, kind]).map_err(conflict);
        let meters = Meters {
            successful: crate::metrics::Counter::new(),
            failed: series("failed")?,
            ignored: series("ignored")?,
            not_permitted: series("not_permitted")?,
            slow: metrics
                .counter_family(
                    "cortex_circuit_breaker_slow_calls_total",
                    "Calls slower than the breaker's slow_call_threshold.",
                    &["name"],
                )
                .and_then(|f| f.with_labels(&[name]))
                .map_err(conflict)?,
            durations: [
                duration("successful")?,
                duration("failed")?,
                duration("ignored")?,
            ],
        };
        let inner = Arc::new_cyclic(|me| Inner::new(name, config, meters, me.clone()));
        let breaker = CircuitBreaker { inner };
        let weak = Arc::downgrade(&breaker.inner);

        // Derived series: computed when /metrics is scraped, free per call.
        let derived = |f: fn(&CircuitBreaker) -> f64| {
            let w: Weak<Inner> = weak.clone();
            Arc::new(move || w.upgrade().map_or(0.0, |i| f(&CircuitBreaker { inner: i })))
                as Arc<dyn Fn() -> f64 + Send + Sync>
        };
        calls.core().attach_derived(
            &[name, "successful"],
            derived(|b| b.inner.successes() as f64),
        );
        let states = metrics
            .gauge_family(
                "cortex_circuit_breaker_state",
                "1 for a circuit breaker's current state, 0 for the others.",
                &["name", "state"],
            )
            .map_err(conflict)?;
        for state in STATES {
            let w = weak.clone();
            states.core().attach_derived(
                &[name, state.as_str()],
                Arc::new(move || {
                    w.upgrade().map_or(0.0, |i| {
                        f64::from(u8::from(CircuitBreaker { inner: i }.state() == state))
                    })
                }),
            );
        }
        let gauge = |metric: &str, help: &str| {
            metrics
                .gauge_family(metric, help, &["name"])
                .map_err(conflict)
        };
        gauge(
            "cortex_circuit_breaker_failure_rate",
            "Failed calls in a circuit breaker's window, in percent (-1 below minimum_calls).",
        )?
        .core()
        .attach_derived(&[name], derived(|b| b.stats().failure_rate.unwrap_or(-1.0)));
        gauge(
            "cortex_circuit_breaker_slow_call_rate",
            "Slow calls in a circuit breaker's window, in percent (-1 below minimum_calls).",
        )?
        .core()
        .attach_derived(
            &[name],
            derived(|b| b.stats().slow_call_rate.unwrap_or(-1.0)),
        );
        let buffered = metrics
            .gauge_family(
                "cortex_circuit_breaker_buffered_calls",
                "Calls in a circuit breaker's window, by kind.",
                &["name", "kind"],
            )
            .map_err(conflict)?;
        buffered.core().attach_derived(
            &[name, "successful"],
            derived(|b| {
                let s = b.stats();
                (s.calls_in_window - s.failed_in_window.min(s.calls_in_window)) as f64
            }),
        );
        buffered.core().attach_derived(
            &[name, "failed"],
            derived(|b| b.stats().failed_in_window as f64),
        );
        if let Some(health) = health {
            let b = weak;
            health.register(
                format!("circuit_breaker.{name}"),
                CheckOptions::default(),
                move || {
                    let h = b.upgrade().map(|i| CircuitBreaker { inner: i }.health());
                    async move { h.unwrap_or_else(Health::unknown) }
                },
            );
        }
        Ok(breaker)
    }
}
