//! Wall-clock time for spans, read from the fast monotonic clock.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The Unix time and the raw clock reading at one moment; later times are
/// that moment plus the monotonic clock's progress, so a span's end is
/// never before its start, even if the system clock steps.
struct Anchor {
    clock: &'static quanta::Clock,
    raw: u64,
    unix_nanos: u64,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| {
    let clock = crate::__private::clock();
    Anchor {
        clock,
        raw: clock.raw(),
        unix_nanos: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
});

/// The raw clock now (cheap; see [`raw_to_unix_nanos`]).
#[inline(always)]
pub(crate) fn raw_now() -> u64 {
    ANCHOR.clock.raw()
}

/// A raw reading as nanoseconds since the Unix epoch.
pub(crate) fn raw_to_unix_nanos(raw: u64) -> u64 {
    let a = &*ANCHOR;
    if raw >= a.raw {
        a.unix_nanos + a.clock.delta_as_nanos(a.raw, raw)
    } else {
        a.unix_nanos
            .saturating_sub(a.clock.delta_as_nanos(raw, a.raw))
    }
}

/// Nanoseconds since the Unix epoch, now.
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
    raw_to_unix_nanos(raw_now())
}
