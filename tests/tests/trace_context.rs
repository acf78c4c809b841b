//! W3C Trace Context rules, each from the spec text
//! (https://www.w3.org/TR/trace-context/): which `traceparent` and
//! `tracestate` headers are used, and which are discarded.

use cortex::trace::{extract, valid_trace_state};
use http::HeaderMap;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(lines: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in lines {
        h.append(*name, value.parse().unwrap());
    }
    h
}

#[test]
fn two_traceparent_headers_are_invalid_and_a_new_trace_starts() {
    assert!(extract(&headers(&[("traceparent", PARENT)])).is_some());
    let twice = headers(&[
        ("traceparent", PARENT),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ]);
    assert!(extract(&twice).is_none());
}

#[test]
fn several_tracestate_headers_are_one_list_in_order() {
    let cx = extract(&headers(&[
        ("traceparent", PARENT),
        ("tracestate", "foo=1"),
        ("tracestate", "bar=2,baz=3"),
    ]))
    .unwrap();
    assert_eq!(cx.trace_state(), Some("foo=1,bar=2,baz=3"));
}

#[test]
fn an_invalid_tracestate_is_discarded_and_the_traceparent_kept() {
    for bad in ["foo=1,Bar=2", "foo", "foo=1,foo=2", "foo=", "foo=a,b", "=1"] {
        let cx = extract(&headers(&[("traceparent", PARENT), ("tracestate", bad)]))
            .unwrap_or_else(|| panic!("the traceparent stays valid with {bad:?}"));
        assert_eq!(cx.trace_state(), None, "{bad:?}");
    }
    // One bad line spoils the combined list.
    let cx = extract(&headers(&[
        ("traceparent", PARENT),
        ("tracestate", "foo=1"),
        ("tracestate", "BAD=2"),
    ]))
    .unwrap();
    assert_eq!(cx.trace_state(), None);
}

#[test]
fn at_most_32_members() {
    let members = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(valid_trace_state(&members(32)), Some(members(32)));
    assert_eq!(valid_trace_state(&members(33)), None);
    // Empty members do not count, and are dropped.
    assert_eq!(
        valid_trace_state(&format!("{},,, ,", members(32))),
        Some(members(32))
    );
}

#[test]
fn keys_follow_the_simple_and_multi_tenant_grammar() {
    let ok = |key: &str| valid_trace_state(&format!("{key}=v")).is_some();
    // Simple keys: a lower-case letter, then up to 255 of [a-z0-9_-*/].
    assert!(ok("a"));
    assert!(ok("a-b_c*d/e9"));
    assert!(ok(&format!("a{}", "b".repeat(255))));
    assert!(!ok(&format!("a{}", "b".repeat(256))));
    assert!(!ok("9a"), "a simple key starts with a letter");
    assert!(!ok("aB"), "no upper case");
    assert!(!ok("a.b"));
    // Multi-tenant keys: tenant (letter or digit first, up to 241) @ system
    // (letter first, up to 14).
    assert!(ok("9tenant@vendor"));
    assert!(ok(&format!("{}@v", "t".repeat(241))));
    assert!(!ok(&format!("{}@v", "t".repeat(242))));
    assert!(ok(&format!("t@v{}", "x".repeat(13))));
    assert!(!ok(&format!("t@v{}", "x".repeat(14))));
    assert!(!ok("t@9vendor"), "a system id starts with a letter");
    assert!(!ok("@vendor"));
    assert!(!ok("t@"));
    assert!(!ok("a@b@c"));
}

#[test]
fn values_follow_the_grammar() {
    let ok = |value: &str| valid_trace_state(&format!("k={value}")).is_some();
    assert!(ok("t61rcWkgMzE"));
    assert!(ok("with inner space"));
    assert!(ok(&"x".repeat(256)));
    assert!(!ok(&"x".repeat(257)));
    assert!(!ok("a=b"), "no `=` in a value");
    assert!(!ok("caf\u{e9}"), "printable ASCII only");
    assert!(!ok("tab\there"));
    // Spaces around a member are optional whitespace, not part of it.
    assert_eq!(valid_trace_state(" k=v \t"), Some("k=v".into()));
}
