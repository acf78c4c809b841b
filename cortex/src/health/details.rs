//! Who may see the details of a health report.

use std::fmt;

/// Who may see check details in the JSON report (they can leak internals:
/// host names, versions, error messages).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum ShowDetails {
    /// Never: statuses and durations only. The default: what a port
    /// facing clients should show.
    #[default]
    Never,
    /// Always (what [`cortex::http::serve`](crate::http::serve)'s separate
    /// admin port shows; fine on an internal port).
    Always,
    /// Only to requests with `Authorization: Bearer <token>` (the scheme
    /// matched case-insensitively, as RFC 9110 says).
    WhenAuthorized(String),
}

impl ShowDetails {
    /// Whether a request with this `Authorization` header value sees details.
    ///
    /// ```
    /// use cortex::health::ShowDetails;
    /// let policy = ShowDetails::WhenAuthorized("s3cret".into());
    /// assert!(policy.allows(Some("Bearer s3cret")));
    /// assert!(policy.allows(Some("bearer s3cret")));
    /// assert!(!policy.allows(Some("Bearer wrong")));
    /// assert!(!policy.allows(None));
    /// ```
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        match self {
            ShowDetails::Never => false,
            ShowDetails::Always => true,
            ShowDetails::WhenAuthorized(token) => bearer_matches(authorization, token),
        }
    }
}

impl fmt::Debug for ShowDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShowDetails::Never => f.write_str("Never"),
            ShowDetails::Always => f.write_str("Always"),
            // Never print the token.
            ShowDetails::WhenAuthorized(_) => f.write_str("WhenAuthorized(..)"),
        }
    }
}

/// Whether an `Authorization` header value is `Bearer <token>` (the
/// scheme in any case), compared in constant time.
pub(crate) fn bearer_matches(authorization: Option<&str>, token: &str) -> bool {
    authorization
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, given)| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

// Compares without an early exit, so the time taken does not reveal how much
// of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
