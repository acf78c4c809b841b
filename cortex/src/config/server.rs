//! The `[server]` section: the fields of the server's limits.

use cortex_rules::config::{self as rules, Value};

#[cfg(feature = "http")]
pub(super) fn check_limit(key: &str, v: &Value<'_>) -> Result<(), String> {
    set_limit(&mut crate::http::Limits::default(), key, v)
}

#[cfg(not(feature = "http"))]
pub(super) fn check_limit(_key: &str, _v: &Value<'_>) -> Result<(), String> {
    Err("server settings need Cortex's `http` feature".into())
}

/// The keys of `[server]`: the fields of [`Limits`](crate::http::Limits).
pub(crate) const SERVER_KEYS: &[&str] = &[
    "header_read_timeout",
    "idle_timeout",
    "body_read_timeout",
    "request_timeout",
    "max_header_bytes",
    "max_body_bytes",
    "max_buffered_body_bytes",
    "max_connections",
    "at_connection_limit",
    "http2_max_concurrent_streams",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
];

#[cfg(feature = "http")]
fn set_limit(l: &mut crate::http::Limits, key: &str, v: &Value<'_>) -> Result<(), String> {
    use crate::http::AtConnectionLimit;
    let optional = |v: &Value<'_>| match v {
        Value::Str(s) | Value::Text(s) if s.trim() == "none" => Ok(None),
        _ => rules::duration(key, v, false).map(Some),
    };
    let at_least = |min: usize| -> Result<usize, String> {
        let n: usize = rules::whole(key, v)?;
        if n < min {
            return Err(format!("{n} is below {min}, the least `{key}` can be"));
        }
        Ok(n)
    };
    match key {
        "header_read_timeout" => l.header_read_timeout = rules::duration(key, v, false)?,
        "idle_timeout" => l.idle_timeout = rules::duration(key, v, false)?,
        "body_read_timeout" => l.body_read_timeout = rules::duration(key, v, false)?,
        "request_timeout" => l.request_timeout = optional(v)?,
        "max_header_bytes" => l.max_header_bytes = at_least(8 * 1024)?,
        "max_body_bytes" => l.max_body_bytes = at_least(1)?,
        "max_buffered_body_bytes" => l.max_buffered_body_bytes = at_least(1)?,
        "max_connections" => l.max_connections = at_least(1)?,
        "at_connection_limit" => {
            l.at_connection_limit = match rules::word(key, v)? {
                "wait" => AtConnectionLimit::Wait,
                "close" => AtConnectionLimit::Close,
                other => {
                    return Err(format!(
                        "unknown `{other}`; a server at its limit does \"wait\" or \"close\""
                    ))
                }
            }
        }
        "http2_max_concurrent_streams" => {
            l.http2_max_concurrent_streams =
                u32::try_from(at_least(1)?).map_err(|_| format!("is at most {}", u32::MAX))?;
        }
        "http2_keep_alive_interval" => l.http2_keep_alive_interval = optional(v)?,
        "http2_keep_alive_timeout" => l.http2_keep_alive_timeout = rules::duration(key, v, false)?,
        _ => return Err(rules::unknown(key, SERVER_KEYS)),
    }
    Ok(())
}

/// A `[server]` setting as the limits hold it.
#[cfg(feature = "http")]
pub(super) fn show_limit(key: &str, v: &Value<'_>) -> Option<rules::Shown> {
    use rules::Shown;
    let mut l = crate::http::Limits::default();
    set_limit(&mut l, key, v).ok()?;
    let optional = |d: Option<std::time::Duration>| d.map_or(Shown::Unset, Shown::Duration);
    let count = |n: usize| Shown::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Some(match key {
        "header_read_timeout" => Shown::Duration(l.header_read_timeout),
        "idle_timeout" => Shown::Duration(l.idle_timeout),
        "body_read_timeout" => Shown::Duration(l.body_read_timeout),
        "request_timeout" => optional(l.request_timeout),
        "max_header_bytes" => count(l.max_header_bytes),
        "max_body_bytes" => count(l.max_body_bytes),
        "max_buffered_body_bytes" => count(l.max_buffered_body_bytes),
        "max_connections" => count(l.max_connections),
        "at_connection_limit" => Shown::Word(match l.at_connection_limit {
            crate::http::AtConnectionLimit::Wait => "wait",
            crate::http::AtConnectionLimit::Close => "close",
        }),
        "http2_max_concurrent_streams" => Shown::Int(l.http2_max_concurrent_streams.into()),
        "http2_keep_alive_interval" => optional(l.http2_keep_alive_interval),
        "http2_keep_alive_timeout" => Shown::Duration(l.http2_keep_alive_timeout),
        _ => return None,
    })
}

#[cfg(not(feature = "http"))]
pub(super) fn show_limit(_key: &str, _v: &Value<'_>) -> Option<rules::Shown> {
    None
}

/// A server's limits with the configuration's `[server]` settings over
/// them.
#[cfg(feature = "http")]
pub(crate) fn server_limits(mut limits: crate::http::Limits) -> crate::http::Limits {
    for s in &super::plan::ACTIVE.lock().server {
        // Checked when the configuration was applied.
        let _ = set_limit(&mut limits, &s.key, &s.value.value());
    }
    limits
}
