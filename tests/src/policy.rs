//! What the resilience tests share: an application error that can carry a
//! policy's rejection, and a count-window breaker configuration.

use std::time::Duration;

use cortex::resilience::{CircuitBreakerConfig, Error, Window};

/// A service's error type, with room for a policy's rejection.
#[derive(Debug, PartialEq)]
pub enum AppError {
    /// The backend failed.
    Backend,
    /// Not found (a business outcome, not a failure of the backend).
    NotFound,
    /// A policy refused the call.
    Policy(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Policy(e)
    }
}

/// A breaker opening at 50 % failures over a count window of `window`
/// calls, judged from `minimum` calls, open for 30 s, 3 trial calls.
pub fn config(window: u32, minimum: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_rate: 50,
        minimum_calls: minimum,
        window: Window::Count(window),
        open_for: Duration::from_secs(30),
        half_open_calls: 3,
        ..Default::default()
    }
}
