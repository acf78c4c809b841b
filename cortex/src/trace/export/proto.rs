//! The OTLP/protobuf encoding of spans (`http/protobuf`, the protocol the
//! OpenTelemetry spec makes the default), written by hand: the messages are
//! few and small, and this keeps prost and a build step out of the runtime.
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto`.

use crate::otlp::wire::{attributes, Writer};
use crate::trace::data::{Event, KeyValue, SpanData, Status};

fn event(w: &mut Writer, e: &Event) {
    w.fixed64(1, e.time_unix_nanos);
    w.bytes(2, e.name.as_bytes());
    attributes(w, 3, &e.attributes);
    w.uint(4, u64::from(e.dropped_attributes_count));
}

fn span(w: &mut Writer, s: &SpanData) {
    w.bytes(1, &s.trace_id.to_bytes());
    w.bytes(2, &s.span_id.to_bytes());
    if let Some(state) = &s.trace_state {
        w.bytes(3, state.as_bytes());
    }
    if let Some(parent) = s.parent_span_id {
        w.bytes(4, &parent.to_bytes());
    }
    w.bytes(5, s.name.as_bytes());
    w.uint(6, u64::from(s.kind.otlp()));
    w.fixed64(7, s.start_unix_nanos);
    w.fixed64(8, s.end_unix_nanos);
    attributes(w, 9, &s.attributes);
    w.uint(10, u64::from(s.dropped_attributes_count));
    for e in &s.events {
        w.message(11, |m| event(m, e));
    }
    w.uint(12, u64::from(s.dropped_events_count));
    w.message(15, |st| {
        if let Status::Error(message) = &s.status {
            st.bytes(2, message.as_bytes());
        }
        st.uint(3, u64::from(s.status.otlp()));
    });
    // Trace flags (sampled) plus "we know whether the parent is remote".
    w.fixed32(
        16,
        0x01 | 0x100 | if s.parent_is_remote { 0x200 } else { 0 },
    );
}

/// The `ExportTraceServiceRequest` for `spans` under these resource
/// attributes, as protobuf bytes.
pub(super) fn encode(resource: &[KeyValue], spans: &[SpanData]) -> Vec<u8> {
    let mut w = Writer::default();
    // resource_spans = 1
    w.message(1, |rs| {
        // resource = 1 { attributes = 1 }
        rs.message(1, |r| attributes(r, 1, resource));
        // scope_spans = 2
        rs.message(2, |ss| {
            // scope = 1 { name = 1, version = 2 }
            ss.message(1, crate::otlp::wire::scope);
            for s in spans {
                ss.message(2, |m| span(m, s));
            }
        });
    });
    w.0
}

/// [`encode_otlp_json`](super::encode_otlp_json)'s protobuf twin: the
/// `ExportTraceServiceRequest` body an `http/protobuf` exporter sends.
///
/// ```
/// use cortex::trace::{encode_otlp_protobuf, InMemoryExporter, Tracer};
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder().exporter(exporter.clone()).build();
/// tracer.start("work").end();
/// tracer.force_flush();
/// let body = encode_otlp_protobuf("billing", &exporter.spans());
/// assert_eq!(body[0], 0x0a, "field 1 (resource_spans), length-delimited");
/// assert!(body.windows(7).any(|w| w == b"billing"));
/// ```
pub fn encode_otlp_protobuf(service_name: &str, spans: &[SpanData]) -> Vec<u8> {
    encode(&crate::otlp::resource(service_name, &[]), spans)
}
