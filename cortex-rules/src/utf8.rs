//! Prometheus 3's UTF-8 names (`http.server.request.duration`, labels such
//! as `url.scheme`): which names need it, the checks a UTF-8 name still
//! passes, and the underscore escaping served to scrapers that do not ask
//! for UTF-8 (`escaping=underscores`, the default).
//!
//! ```
//! use cortex_rules::utf8::{escape_underscores, is_legacy};
//! use cortex_rules::NameKind;
//!
//! assert!(is_legacy("http_requests_total", NameKind::Metric));
//! assert!(!is_legacy("http.server.duration", NameKind::Metric));
//! assert_eq!(escape_underscores("http.server.duration", NameKind::Metric), "http_server_duration");
//! assert_eq!(escape_underscores("2xx.rate", NameKind::Metric), "_2xx_rate");
//! assert_eq!(escape_underscores("url.scheme", NameKind::Label), "url_scheme");
//! ```

use std::borrow::Cow;

use crate::{NameError, NameKind};

/// Whether `name` is valid without UTF-8 support (the classic rules).
pub fn is_legacy(name: &str, kind: NameKind) -> bool {
    match kind {
        NameKind::Metric => crate::check_metric_name(name).is_ok(),
        NameKind::Label => crate::check_chars_only(name, NameKind::Label),
    }
}

/// A UTF-8 metric name: anything but empty (Prometheus 3 accepts every
/// other string).
///
/// # Errors
/// [`NameError::Empty`].
pub fn check_metric_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty {
            kind: NameKind::Metric,
        });
    }
    Ok(())
}

/// A UTF-8 label name: not empty and not starting with `__` (reserved for
/// Prometheus's own labels).
///
/// # Errors
/// [`NameError::Empty`] or [`NameError::ReservedPrefix`].
pub fn check_label_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty {
            kind: NameKind::Label,
        });
    }
    if name.starts_with("__") {
        return Err(NameError::ReservedPrefix { name: name.into() });
    }
    Ok(())
}

/// The name with every character the classic rules refuse replaced by `_`,
/// and `_` in front of a leading digit: what Prometheus's
/// `escaping=underscores` does. Classic names come back as they are.
pub fn escape_underscores(name: &str, kind: NameKind) -> Cow<'_, str> {
    if is_legacy(name, kind) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (kind == NameKind::Metric && c == ':');
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        out.push(if ok { c } else { '_' });
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape_underscores("a.b-c/d", NameKind::Metric), "a_b_c_d");
        assert_eq!(escape_underscores("ns:x.y", NameKind::Metric), "ns:x_y");
        assert_eq!(escape_underscores("ns:x", NameKind::Label), "ns_x");
        assert_eq!(escape_underscores("ünï", NameKind::Label), "_n_");
        assert!(check_label_name("__x").is_err());
        assert!(check_label_name("url.scheme").is_ok());
        assert!(check_metric_name("").is_err());
        assert!(check_metric_name("a b").is_ok());
    }
}
