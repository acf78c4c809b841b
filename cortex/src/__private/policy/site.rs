//! A policy attribute's site: its configuration, compiled in, and the
//! instance it runs under, settled once for every site of the program.
//!
//! Settling happens in two steps while the global metrics registry is
//! built: every site is collected (sorted by file and line, so "first" is
//! the same on every build), then each name gets one instance, made from
//! its first site's configuration. A later site that asks for the same name
//! with another configuration uses that instance too, and the conflict is
//! reported, naming both functions, once the registry is built. Nothing in
//! here calls back into a global registry while it is being built.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use linkme::distributed_slice;

use crate::metrics::Registry;
use crate::resilience::registry::{self, Found};
use crate::resilience::{Bulkhead, RateLimiter};
use crate::resilience::{
    BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, ConfigError, RateLimiterConfig, Retry,
    RetryConfig, Timeout,
};

/// Where a policy attribute is, and what it is called.
#[derive(Debug)]
pub struct SiteInfo {
    /// `name = "..."`, if given: sites with one name share an instance.
    pub name: Option<&'static str>,
    /// The annotated function's own name.
    pub function: &'static str,
    /// `module_path!()`.
    pub module: &'static str,
    /// The type name of a fn nested in the annotated one: its full path.
    pub scope: fn() -> &'static str,
    /// `file!()` and `line!()` of the attribute.
    pub file: &'static str,
    /// See `file`.
    pub line: u32,
}

impl SiteInfo {
    /// `module::Type::function`, with the trait for a trait impl.
    fn qualified(&self) -> String {
        let label =
            super::super::registration::function_label((self.scope)(), self.module, self.function);
        format!("{}::{label}", self.module)
    }
}

/// A policy type an attribute can make.
pub trait SitePolicy: Clone + Send + Sync + fmt::Debug + 'static {
    /// Its configuration.
    type Config: Copy + PartialEq + fmt::Debug + Send + Sync + 'static;
    /// How log messages call it.
    const KIND: &'static str;
    /// The instance named `name`, made with `config` if there is none;
    /// with the configuration it has when that is another one.
    #[doc(hidden)]
    fn lookup_or_create(
        name: &str,
        config: Self::Config,
        metrics: &Registry,
    ) -> Result<(Self, Option<String>), ConfigError>;
    /// An instance outside every registry, when the registered one cannot be
    /// made.
    #[doc(hidden)]
    fn standalone(name: &str, config: Self::Config) -> Result<Self, ConfigError>;
}

fn private_registry() -> &'static Registry {
    static PRIVATE: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::new);
    &PRIVATE
}

impl SitePolicy for CircuitBreaker {
    type Config = CircuitBreakerConfig;
    const KIND: &'static str = "circuit breaker";
    fn lookup_or_create(
        name: &str,
        config: Self::Config,
        metrics: &Registry,
    ) -> Result<(Self, Option<String>), ConfigError> {
        registry::breaker_lookup_or_create(name, config, metrics, Some(crate::health::global()))
            .map(Found::split)
    }
    fn standalone(name: &str, config: Self::Config) -> Result<Self, ConfigError> {
        CircuitBreaker::build(name, config, private_registry(), None)
    }
}

/// The policies without a health component: looked up in their registry,
/// built with their metrics only.
macro_rules! site_policy {
    ($($ty:ty: $config:ty, $kind:literal, $lookup:ident;)*) => {$(
        impl SitePolicy for $ty {
            type Config = $config;
            const KIND: &'static str = $kind;
            fn lookup_or_create(
                name: &str,
                config: Self::Config,
                metrics: &Registry,
            ) -> Result<(Self, Option<String>), ConfigError> {
                registry::$lookup(name, config, metrics).map(Found::split)
            }
            fn standalone(name: &str, config: Self::Config) -> Result<Self, ConfigError> {
                <$ty>::build(name, config, private_registry())
            }
        }
    )*};
}

site_policy! {
    Retry: RetryConfig, "retry", retry_lookup_or_create;
    Bulkhead: BulkheadConfig, "bulkhead", bulkhead_lookup_or_create;
    Timeout: std::time::Duration, "timeout", timeout_lookup_or_create;
    RateLimiter: RateLimiterConfig, "rate limiter", rate_limiter_lookup_or_create;
}

/// The static of one policy attribute.
pub struct PolicySite<P: SitePolicy> {
    info: SiteInfo,
    config: P::Config,
    instance: OnceLock<P>,
}

impl<P: SitePolicy> fmt::Debug for PolicySite<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySite")
            .field("info", &self.info)
            .field("config", &self.config)
            .finish()
    }
}

impl<P: SitePolicy> PolicySite<P> {
    /// A site, settled when the global metrics registry is first used.
    pub const fn new(info: SiteInfo, config: P::Config) -> Self {
        PolicySite {
            info,
            config,
            instance: OnceLock::new(),
        }
    }

    /// The instance the function runs under.
    #[inline(always)]
    pub fn get(&'static self) -> &'static P {
        match self.instance.get() {
            Some(p) => p,
            None => self.first_use(),
        }
    }

    #[cold]
    fn first_use(&'static self) -> &'static P {
        // Building the global registry settles every linked site.
        let _ = crate::metrics::global();
        self.instance.get_or_init(|| {
            // Not in the linker's list (a platform where it does not
            // gather): an instance of its own, registered now.
            let name = self.name();
            match P::lookup_or_create(&name, self.config, crate::metrics::global()) {
                Ok((p, _)) => p,
                Err(_) => self.standalone(&name),
            }
        })
    }

    fn name(&self) -> String {
        match self.info.name {
            Some(n) => n.to_owned(),
            None => self.info.qualified(),
        }
    }

    fn standalone(&self, name: &str) -> P {
        match P::standalone(name, self.config) {
            Ok(p) => p,
            // The configuration was checked at compile time by the same
            // rules; failing here is a bug in Cortex.
            Err(e) => panic!("cortex: {} `{name}` cannot be created: {e}", P::KIND),
        }
    }

    /// Gives this site its instance; `first` remembers which site made each
    /// name.
    fn settle(&'static self, registry: &Registry, first: &mut HashMap<(&str, String), &SiteInfo>) {
        let name = self.name();
        let made_by = first.get(&(P::KIND, name.clone())).copied();
        let instance = match P::lookup_or_create(&name, self.config, registry) {
            Ok((p, None)) => p,
            Ok((p, Some(have))) => {
                let by = match made_by {
                    Some(info) => format!("`{}` ({}:{})", info.qualified(), info.file, info.line),
                    None => "code that made it by hand".to_owned(),
                };
                super::super::registration::problem(
                    "cortex::resilience",
                    format!(
                        "{kind} `{name}` is configured twice: `{this}` ({file}:{line}) asks for {want:?}, but {by} made it with {have}; both use the first configuration. Give one of them another `name`, or the same configuration",
                        kind = P::KIND,
                        this = self.info.qualified(),
                        file = self.info.file,
                        line = self.info.line,
                        want = self.config,
                    ),
                );
                p
            }
            Err(error) => {
                super::super::registration::problem(
                    "cortex::resilience",
                    format!(
                        "{kind} `{name}` of `{this}` ({file}:{line}) cannot be registered, so its metrics are not exported: {error}",
                        kind = P::KIND,
                        this = self.info.qualified(),
                        file = self.info.file,
                        line = self.info.line,
                    ),
                );
                self.standalone(&name)
            }
        };
        first.entry((P::KIND, name)).or_insert(&self.info);
        let _ = self.instance.set(instance);
    }
}

/// One entry of `POLICY_SITES`.
#[derive(Debug, Clone, Copy)]
pub enum AnySite {
    /// `#[circuit_breaker]`.
    Breaker(&'static PolicySite<CircuitBreaker>),
    /// `#[retry]`.
    Retry(&'static PolicySite<Retry>),
    /// `#[bulkhead]`.
    Bulkhead(&'static PolicySite<Bulkhead>),
    /// `#[timeout]`.
    Timeout(&'static PolicySite<Timeout>),
    /// `#[rate_limit]`.
    RateLimit(&'static PolicySite<RateLimiter>),
}

impl AnySite {
    fn info(self) -> &'static SiteInfo {
        match self {
            AnySite::Breaker(s) => &s.info,
            AnySite::Retry(s) => &s.info,
            AnySite::Bulkhead(s) => &s.info,
            AnySite::Timeout(s) => &s.info,
            AnySite::RateLimit(s) => &s.info,
        }
    }
}

/// Every policy attribute's site, gathered by the linker.
#[distributed_slice]
pub static POLICY_SITES: [AnySite];

/// Settles every site, with its instance's metrics in `registry` (the
/// global one, being built).
pub(crate) fn settle_sites(registry: &Registry) {
    let mut sites: Vec<AnySite> = POLICY_SITES.iter().copied().collect();
    sites.sort_by_key(|s| (s.info().file, s.info().line));
    let mut first = HashMap::new();
    for site in sites {
        match site {
            AnySite::Breaker(s) => s.settle(registry, &mut first),
            AnySite::Retry(s) => s.settle(registry, &mut first),
            AnySite::Bulkhead(s) => s.settle(registry, &mut first),
            AnySite::Timeout(s) => s.settle(registry, &mut first),
            AnySite::RateLimit(s) => s.settle(registry, &mut first),
        }
    }
}
