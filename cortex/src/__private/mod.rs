//! What the attribute macros expand to. Not a public API: names and
//! signatures here change without notice.

mod call;
mod health;
mod outcome;
pub mod policy;
mod site;
mod trace;

pub use crate::trace::{SpanKind, Value as AttributeValue};
pub use call::{clock, CountedCall, FusedCall, TimedCall};
pub use outcome::{call_once, typed_future, IsResult, NotResult, Outcome};
pub use site::{register_sites, CountedSite, FnInfo, FusedSite, Site, TimedSite, SITES};
pub use trace::{
    ErrorIsDebug, ErrorIsDisplay, ErrorIsError, ErrorIsOpaque, ErrorOf, NotAnError, ToAttribute,
    TracedCall, TracedSite,
};

pub use health::{
    health_async, health_blocking, register_health_checks, to_health, BoxedHealth, HealthEntry,
    HEALTH_CHECKS,
};

pub use crate::health::Group;
pub use crate::metrics::{CounterCell, GaugeCell, HistogramCell};
pub use linkme;
pub use std::sync::atomic::AtomicU64;
