//! The OTLP/JSON encoding of spans and their resource.

use serde_json::{json, Map, Value as Json};

use crate::otlp::json::attributes;
use crate::otlp::resource;
use crate::trace::data::{KeyValue, SpanData};

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
                "scope": crate::otlp::json::scope(),
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
