//! What the policy attributes (`#[circuit_breaker]`, `#[retry]`,
//! `#[bulkhead]`, `#[timeout]`, `#[rate_limit]`) expand to.

mod call;
mod mode;
mod rejection;
mod site;

pub use call::{
    breaker, breaker_sync, bulkhead, bulkhead_sync, rate_limit, retry, retry_sync, timeout,
};
pub use mode::{
    assert_plain_value, clone_for_retry, rejection, returns_result, wrapped_rejection,
    IsPlainValue, IsResultValue, NotAResult, PlainValue, PolicyError, PolicyReturn, ResultValue,
};
pub use rejection::{decide_error, NoRejection, Probe, RejectionBySelf, RejectionBySource};
pub(crate) use site::settle_sites;
pub use site::{AnySite, PolicySite, SiteInfo, SitePolicy, POLICY_SITES};
