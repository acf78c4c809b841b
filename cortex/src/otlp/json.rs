//! The OTLP/JSON encoding of `KeyValue` lists (protobuf's JSON mapping),
//! shared by the trace and metrics encodings.

use serde_json::{json, Value as Json};

use crate::trace::{KeyValue, Value};

pub(crate) fn attributes(kvs: &[KeyValue]) -> Json {
    // The last value set for a key wins; keys appear once.
    let mut seen: Vec<&str> = Vec::with_capacity(kvs.len());
    let mut out = Vec::with_capacity(kvs.len());
    for kv in kvs.iter().rev() {
        if !seen.contains(&kv.key.as_ref()) {
            seen.push(&kv.key);
            out.push(attribute(&kv.key, &kv.value));
        }
    }
    out.reverse();
    out.into()
}

fn attribute(key: &str, value: &Value) -> Json {
    let value = match value {
        Value::Str(s) => json!({ "stringValue": s }),
        Value::Bool(b) => json!({ "boolValue": b }),
        // int64 is a string in protobuf's JSON mapping.
        Value::I64(i) => json!({ "intValue": i.to_string() }),
        Value::F64(x) if x.is_finite() => json!({ "doubleValue": x }),
        Value::F64(x) if x.is_nan() => json!({ "doubleValue": "NaN" }),
        Value::F64(x) if *x > 0.0 => json!({ "doubleValue": "Infinity" }),
        Value::F64(_) => json!({ "doubleValue": "-Infinity" }),
    };
    json!({ "key": key, "value": value })
}

/// The instrumentation scope of every signal: Cortex and its version.
pub(crate) fn scope() -> Json {
    json!({ "name": "cortex", "version": env!("CARGO_PKG_VERSION") })
}
