//! What the attribute macros expand to. Not a public API: names and
//! signatures here change without notice.

mod call;
mod health;
mod outcome;
pub mod policy;
pub(crate) mod registration;
mod site;
mod trace;

pub use crate::trace::{SpanKind, Value as AttributeValue};
pub use call::{clock, CountedCall, FusedCall, TimedCall};
pub use outcome::{call_once, typed_future, IsResult, NotResult, Outcome};
pub(crate) use site::{objective_uses, register_sites};
pub use site::{CountedSite, FnInfo, FusedSite, Site, TimedSite, SITES};
pub use trace::{
    ErrorIsDebug, ErrorIsDisplay, ErrorIsError, ErrorIsOpaque, ErrorOf, NotAnError, ToAttribute,
    TracedCall, TracedSite,
};

pub(crate) use health::register_health_checks;
pub use health::{
    health_async, health_blocking, to_health, BoxedHealth, HealthEntry, HEALTH_CHECKS,
};

pub use crate::health::Group;
pub use crate::metrics::{CounterCell, GaugeCell, HistogramCell, NativeCell};
pub use cortex_macros::__cortex_stack;
pub use linkme;
pub use std::sync::atomic::AtomicU64;
