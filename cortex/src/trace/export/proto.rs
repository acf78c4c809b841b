//! The OTLP/protobuf encoding of spans (`http/protobuf`, the protocol the
//! OpenTelemetry spec makes the default), written by hand: the messages are
//! few and small, and this keeps prost and a build step out of the runtime.
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto`.

use crate::trace::data::{Event, KeyValue, SpanData, Status, Value};

/// A protobuf writer: wire types 0 (varint), 1 (64-bit), 2 (length
/// delimited), 5 (32-bit).
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, 0);
            self.varint(v);
        }
    }

    fn fixed64(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn fixed32(&mut self, field: u32, v: u32) {
        if v != 0 {
            self.tag(field, 5);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        if !b.is_empty() {
            self.tag(field, 2);
            self.varint(b.len() as u64);
            self.0.extend_from_slice(b);
        }
    }

    /// A nested message, written by `f` (kept even when empty: an empty
    /// message is still a present field).
    fn message(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        f(&mut inner);
        self.tag(field, 2);
        self.varint(inner.0.len() as u64);
        self.0.extend_from_slice(&inner.0);
    }
}

/// `AnyValue`.
fn any_value(w: &mut Writer, value: &Value) {
    match value {
        // string_value = 1
        Value::Str(s) => {
            w.tag(1, 2);
            w.varint(s.len() as u64);
            w.0.extend_from_slice(s.as_bytes());
        }
        // bool_value = 2
        Value::Bool(b) => {
            w.tag(2, 0);
            w.varint(u64::from(*b));
        }
        // int_value = 3 (int64, two's complement as a varint)
        Value::I64(i) => {
            w.tag(3, 0);
            w.varint(*i as u64);
        }
        // double_value = 4
        Value::F64(x) => {
            w.tag(4, 1);
            w.0.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }
}

/// `repeated KeyValue attributes = field`, the last value of a key kept,
/// as the JSON encoding does.
fn attributes(w: &mut Writer, field: u32, kvs: &[KeyValue]) {
    let mut seen: Vec<&str> = Vec::with_capacity(kvs.len());
    let mut kept: Vec<&KeyValue> = Vec::with_capacity(kvs.len());
    for kv in kvs.iter().rev() {
        if !seen.contains(&kv.key.as_ref()) {
            seen.push(&kv.key);
            kept.push(kv);
        }
    }
    for kv in kept.into_iter().rev() {
        w.message(field, |m| {
            m.bytes(1, kv.key.as_bytes());
            m.message(2, |v| any_value(v, &kv.value));
        });
    }
}

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
            ss.message(1, |scope| {
                scope.bytes(1, b"cortex");
                scope.bytes(2, env!("CARGO_PKG_VERSION").as_bytes());
            });
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
    encode(&super::encode::resource(service_name, &[]), spans)
}
