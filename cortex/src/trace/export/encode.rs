//! The OTLP/JSON encoding of spans and their resource.

use serde_json::{json, Map, Value as Json};

use crate::trace::data::{KeyValue, SpanData, Value};

/// The resource attributes: `service.name`, the `telemetry.sdk.*` ones,
/// then `extra` (a `service.name` among them is ignored: the tracer's
/// service name is the one).
pub(super) fn resource(service_name: &str, extra: &[KeyValue]) -> Vec<KeyValue> {
    let mut out = vec![
        KeyValue::new("service.name", service_name.to_owned()),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.name", "cortex"),
        KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    for kv in extra {
        if !out.iter().any(|o| o.key == kv.key) {
            out.push(kv.clone());
        }
    }
    out
}

/// The OTLP/JSON body (`ExportTraceServiceRequest`) for `spans` of one
/// service: hex ids, nanosecond times as strings, integer enums; the
/// resource carries `service.name` and `telemetry.sdk.*`.
///
/// ```
/// use cortex::trace::{encode_otlp_json, InMemoryExporter, Tracer};
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder().exporter(exporter.clone()).build();
/// tracer.start("work").end();
/// tracer.force_flush();
/// let body = encode_otlp_json("billing", &exporter.spans());
/// assert!(body.starts_with(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}},"#));
/// assert!(body.contains(r#"{"key":"telemetry.sdk.name","value":{"stringValue":"cortex"}}"#));
/// assert!(body.contains(r#""kind":1"#));
/// ```
pub fn encode_otlp_json(service_name: &str, spans: &[SpanData]) -> String {
    encode(&resource(service_name, &[]), spans)
}

/// The body for `spans` under these resource attributes.
pub(super) fn encode(resource: &[KeyValue], spans: &[SpanData]) -> String {
    let spans: Vec<Json> = spans.iter().map(span_json).collect();
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": attributes(resource)
            },
            "scopeSpans": [{
                "scope": { "name": "cortex", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans
            }]
        }]
    })
    .to_string()
}

fn span_json(s: &SpanData) -> Json {
    let mut m = Map::new();
    m.insert("traceId".into(), s.trace_id.to_hex().into());
    m.insert("spanId".into(), s.span_id.to_hex().into());
    if let Some(state) = &s.trace_state {
        m.insert("traceState".into(), state.to_string().into());
    }
    if let Some(parent) = s.parent_span_id {
        m.insert("parentSpanId".into(), parent.to_hex().into());
    }
    // Trace flags (sampled) plus "we know whether the parent is remote".
    let flags = 0x01 | 0x100 | if s.parent_is_remote { 0x200 } else { 0 };
    m.insert("flags".into(), flags.into());
    m.insert("name".into(), s.name.to_string().into());
    m.insert("kind".into(), s.kind.otlp().into());
    m.insert(
        "startTimeUnixNano".into(),
        s.start_unix_nanos.to_string().into(),
    );
    m.insert(
        "endTimeUnixNano".into(),
        s.end_unix_nanos.to_string().into(),
    );
    if !s.attributes.is_empty() {
        m.insert("attributes".into(), attributes(&s.attributes));
    }
    if !s.events.is_empty() {
        let events: Vec<Json> = s
            .events
            .iter()
            .map(|e| {
                let mut event = json!({
                    "timeUnixNano": e.time_unix_nanos.to_string(),
                    "name": e.name,
                    "attributes": attributes(&e.attributes),
                });
                if e.dropped_attributes_count > 0 {
                    event["droppedAttributesCount"] = e.dropped_attributes_count.into();
                }
                event
            })
            .collect();
        m.insert("events".into(), events.into());
    }
    if s.dropped_attributes_count > 0 {
        m.insert(
            "droppedAttributesCount".into(),
            s.dropped_attributes_count.into(),
        );
    }
    if s.dropped_events_count > 0 {
        m.insert("droppedEventsCount".into(), s.dropped_events_count.into());
    }
    let mut status = Map::new();
    status.insert("code".into(), s.status.otlp().into());
    if let crate::trace::Status::Error(message) = &s.status {
        status.insert("message".into(), message.to_string().into());
    }
    m.insert("status".into(), status.into());
    Json::Object(m)
}

fn attributes(kvs: &[KeyValue]) -> Json {
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
