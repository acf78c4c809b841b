//! `#[circuit_breaker]` keeps a failure's message for the breaker's recent
//! events by what the error type offers (`Error`, `Display`, `Debug`, or
//! nothing): every kind compiles, async and sync, generic too.

use std::fmt;

pub struct Opaque;

impl From<cortex::resilience::Error> for Opaque {
    fn from(_: cortex::resilience::Error) -> Self {
        Opaque
    }
}

#[derive(Debug)]
pub struct DebugOnly;

impl From<cortex::resilience::Error> for DebugOnly {
    fn from(_: cortex::resilience::Error) -> Self {
        DebugOnly
    }
}

pub struct Shown;

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shown")
    }
}

impl From<cortex::resilience::Error> for Shown {
    fn from(_: cortex::resilience::Error) -> Self {
        Shown
    }
}

#[cortex::circuit_breaker]
async fn opaque() -> Result<(), Opaque> {
    Err(Opaque)
}

#[cortex::circuit_breaker]
fn debug_only() -> Result<u8, DebugOnly> {
    Err(DebugOnly)
}

#[cortex::circuit_breaker]
async fn shown() -> Result<(), Shown> {
    Err(Shown)
}

#[cortex::circuit_breaker]
async fn full_error() -> Result<(), cortex::resilience::Error> {
    Ok(())
}

#[cortex::circuit_breaker]
async fn generic<E: From<cortex::resilience::Error>>(e: fn() -> E) -> Result<(), E> {
    Err(e())
}

fn main() {
    let _ = (opaque, debug_only, shown, full_error);
    let _ = generic::<Opaque>;
}
