//! Trace and span ids: random, never all zero, written as lowercase hex.

use std::cell::Cell;
use std::fmt;

/// A 128-bit trace id, shared by every span of one trace. Never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(u128);

/// A 64-bit span id. Never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(u64);

impl TraceId {
    /// A new random id.
    #[inline]
    pub fn random() -> Self {
        loop {
            let id = (u128::from(next_u64()) << 64) | u128::from(next_u64());
            if id != 0 {
                return TraceId(id);
            }
        }
    }

    /// The id with this value; `None` for zero, which is invalid.
    pub const fn from_u128(value: u128) -> Option<Self> {
        if value == 0 {
            None
        } else {
            Some(TraceId(value))
        }
    }

    /// The id as a number.
    pub const fn to_u128(self) -> u128 {
        self.0
    }

    /// The 16 bytes, most significant first (the order of its hex form and
    /// of OTLP's protobuf `trace_id`).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// Parses 32 lowercase hex digits; `None` for anything else or zero.
    pub fn from_hex(hex: &str) -> Option<Self> {
        Self::from_u128(parse_hex::<32>(hex)?)
    }
}

impl SpanId {
    /// A new random id.
    #[inline]
    pub fn random() -> Self {
        loop {
            let id = next_u64();
            if id != 0 {
                return SpanId(id);
            }
        }
    }

    /// The id with this value; `None` for zero, which is invalid.
    pub const fn from_u64(value: u64) -> Option<Self> {
        if value == 0 {
            None
        } else {
            Some(SpanId(value))
        }
    }

    /// The id as a number.
    pub const fn to_u64(self) -> u64 {
        self.0
    }

    /// The 8 bytes, most significant first.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// 16 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Parses 16 lowercase hex digits; `None` for anything else or zero.
    pub fn from_hex(hex: &str) -> Option<Self> {
        Self::from_u64(parse_hex::<16>(hex)? as u64)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({:032x})", self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({:016x})", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Exactly `N` lowercase hex digits (W3C Trace Context forbids upper case).
pub(crate) fn parse_hex<const N: usize>(hex: &str) -> Option<u128> {
    let bytes = hex.as_bytes();
    if bytes.len() != N {
        return None;
    }
    let mut value = 0u128;
    for &b in bytes {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // Each thread starts from its own random state (the std hasher's keys
    // are random per process; the thread id and a counter spread threads).
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() | 1
}

/// wyrand: a fast generator with good statistical quality; ids need to be
/// unique and uniformly spread (ratio sampling reads their bits), not secret.
#[inline]
fn next_u64() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    })
}
