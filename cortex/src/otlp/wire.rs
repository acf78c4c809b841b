//! The protobuf wire format, as much as OTLP needs, and the messages of
//! `common/v1/common.proto` (`AnyValue`, `KeyValue`) shared by the trace
//! and metrics encodings.

use crate::trace::{KeyValue, Value};

/// A protobuf writer: wire types 0 (varint), 1 (64-bit), 2 (length
/// delimited), 5 (32-bit).
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub(crate) fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, 0);
            self.varint(v);
        }
    }

    pub(crate) fn fixed64(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    pub(crate) fn fixed32(&mut self, field: u32, v: u32) {
        if v != 0 {
            self.tag(field, 5);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    pub(crate) fn bytes(&mut self, field: u32, b: &[u8]) {
        if !b.is_empty() {
            self.tag(field, 2);
            self.varint(b.len() as u64);
            self.0.extend_from_slice(b);
        }
    }

    /// A nested message, written by `f` (kept even when empty: an empty
    /// message is still a present field).
    pub(crate) fn message(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        self.tag(field, 2);
        self.length_prefixed(f);
    }

    /// Writes `f`'s bytes in place, then puts their length in front of
    /// them: no buffer per message (the body moves by the few bytes of its
    /// length, once).
    fn length_prefixed(&mut self, f: impl FnOnce(&mut Writer)) {
        let start = self.0.len();
        f(self);
        let mut len = (self.0.len() - start) as u64;
        let mut prefix = [0u8; 10];
        let mut n = 0;
        while len >= 0x80 {
            prefix[n] = (len as u8) | 0x80;
            len >>= 7;
            n += 1;
        }
        prefix[n] = len as u8;
        self.0.splice(start..start, prefix[..=n].iter().copied());
    }
}

/// `AnyValue`.
pub(crate) fn any_value(w: &mut Writer, value: &Value) {
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
pub(crate) fn attributes(w: &mut Writer, field: u32, kvs: &[KeyValue]) {
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

impl Writer {
    /// A `double` field, written even when zero (a present field).
    pub(crate) fn double(&mut self, field: u32, v: f64) {
        self.tag(field, 1);
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    /// A `repeated fixed64` field, packed.
    pub(crate) fn packed_fixed64(&mut self, field: u32, values: &[u64]) {
        if values.is_empty() {
            return;
        }
        self.tag(field, 2);
        self.varint(values.len() as u64 * 8);
        for v in values {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A `repeated double` field, packed.
    pub(crate) fn packed_double(&mut self, field: u32, values: &[f64]) {
        if values.is_empty() {
            return;
        }
        self.tag(field, 2);
        self.varint(values.len() as u64 * 8);
        for v in values {
            self.0.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
}

impl Writer {
    /// A `sint32`/`sint64` field (zigzag), written even when zero.
    pub(crate) fn sint(&mut self, field: u32, v: i64) {
        self.tag(field, 0);
        self.varint(zigzag(v));
    }

    /// A `repeated sint64` field, packed.
    pub(crate) fn packed_sint(&mut self, field: u32, values: &[i64]) {
        if values.is_empty() {
            return;
        }
        let mut inner = Writer::default();
        for &v in values {
            inner.varint(zigzag(v));
        }
        self.bytes(field, &inner.0);
    }

    /// A `repeated uint64` field, packed.
    pub(crate) fn packed_uint(&mut self, field: u32, values: &[u64]) {
        if values.is_empty() {
            return;
        }
        let mut inner = Writer::default();
        for &v in values {
            inner.varint(v);
        }
        self.bytes(field, &inner.0);
    }

    /// A length-delimited message with its length first (the framing of
    /// Prometheus's `encoding=delimited`).
    pub(crate) fn delimited(&mut self, f: impl FnOnce(&mut Writer)) {
        self.length_prefixed(f);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// `InstrumentationScope { name = 1, version = 2 }`: Cortex, for every
/// signal.
pub(crate) fn scope(w: &mut Writer) {
    w.bytes(1, b"cortex");
    w.bytes(2, env!("CARGO_PKG_VERSION").as_bytes());
}
