//! `cortex_build_info` and OpenMetrics `target_info`: what is running.

use std::sync::Arc;

use super::{Error, Gauge, MetricType, Registry};

/// The Rust compiler that built Cortex, and so the program it is in
/// (`rustc --version`'s number, recorded by Cortex's build script).
pub const RUST_VERSION: &str = env!("CORTEX_RUSTC_VERSION");

/// What the running program is: made by [`cortex::build_info!()`](crate::build_info)
/// from the program's own crate, at compile time.
///
/// [`register`](BuildInfo::register) exports it as
/// `cortex_build_info{version, commit, rust_version, service} 1` and as
/// OpenMetrics `target_info{service_name, service_version} 1` (a gauge in
/// the Prometheus text format), so a dashboard can join any series with
/// the version that produced it.
///
/// ```
/// use cortex::metrics::{BuildInfo, Format, Registry};
///
/// let info = BuildInfo { service: "shop", version: "1.4.2", commit: "3f2a9c1" };
/// let registry = Registry::new();
/// info.register_in(&registry)?;
/// let text = registry.encode(Format::OpenMetrics);
/// assert!(text.contains(&format!(
///     "cortex_build_info{{commit=\"3f2a9c1\",rust_version=\"{}\",service=\"shop\",version=\"1.4.2\"}} 1\n",
///     cortex::metrics::RUST_VERSION,
/// )));
/// assert!(text.contains("# TYPE target info\ntarget_info{service_name=\"shop\",service_version=\"1.4.2\"} 1\n"));
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// The crate's name (`CARGO_PKG_NAME`).
    pub service: &'static str,
    /// The crate's version (`CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// The commit built, from the `CORTEX_BUILD_COMMIT` or `GIT_COMMIT`
    /// variable at compile time, else `"unknown"`.
    pub commit: &'static str,
}

static REGISTERED: parking_lot::Mutex<Option<BuildInfo>> = parking_lot::Mutex::new(None);

const BUILD_NAME: &str = "cortex_build_info";
const BUILD_HELP: &str = "The running program: its version, commit and compiler.";
const TARGET_NAME: &str = "target_info";
const TARGET_HELP: &str = "Target metadata.";

impl BuildInfo {
    /// Exports this in the [global registry](super::global), once (a second
    /// call with the same values changes nothing), and returns it.
    ///
    /// # Panics
    /// Never for values `build_info!()` makes; a family of the same name
    /// registered otherwise is logged and left as it is.
    pub fn register(self) -> Self {
        *REGISTERED.lock() = Some(self);
        if let Err(error) = self.register_in(super::global()) {
            tracing::error!(target: "cortex::metrics", %error, "cortex_build_info is not exported");
        }
        self
    }

    /// What [`register`](Self::register) exported last (what `GET
    /// /cortex/info` shows), if anything did.
    pub fn registered() -> Option<BuildInfo> {
        *REGISTERED.lock()
    }

    /// Exports this in `registry`.
    ///
    /// # Errors
    /// A [conflict](Error::Conflict) with a family of the same name
    /// registered otherwise.
    pub fn register_in(&self, registry: &Registry) -> Result<(), Error> {
        let build = registry.family_as::<Gauge>(
            MetricType::Gauge,
            BUILD_NAME,
            BUILD_HELP,
            &["commit", "rust_version", "service", "version"],
            (),
        )?;
        build.core().replace_derived(
            &[self.commit, RUST_VERSION, self.service, self.version],
            Arc::new(|| 1.0),
        );
        let target = registry.family_as::<Gauge>(
            MetricType::Info,
            TARGET_NAME,
            TARGET_HELP,
            &["service_name", "service_version"],
            (),
        )?;
        target
            .core()
            .replace_derived(&[self.service, self.version], Arc::new(|| 1.0));
        Ok(())
    }
}

/// The running program's [`BuildInfo`], exported in the global registry:
/// `cortex_build_info{version, commit, rust_version, service} 1` and
/// `target_info`. Call it once in `main`; it reads the calling crate's
/// `CARGO_PKG_NAME` and `CARGO_PKG_VERSION`, and the commit from the
/// `CORTEX_BUILD_COMMIT` (or `GIT_COMMIT`) variable when the crate is
/// compiled (`CORTEX_BUILD_COMMIT=$(git rev-parse --short HEAD) cargo build`).
///
/// ```
/// let info = cortex::build_info!();
/// assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
/// let text = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
/// assert!(text.contains("# TYPE cortex_build_info gauge\n"));
/// assert!(text.contains(&format!("service=\"{}\"", info.service)));
/// ```
#[macro_export]
macro_rules! build_info {
    () => {
        $crate::metrics::BuildInfo {
            service: ::core::env!("CARGO_PKG_NAME"),
            version: ::core::env!("CARGO_PKG_VERSION"),
            commit: match ::core::option_env!("CORTEX_BUILD_COMMIT") {
                ::core::option::Option::Some(commit) => commit,
                ::core::option::Option::None => match ::core::option_env!("GIT_COMMIT") {
                    ::core::option::Option::Some(commit) => commit,
                    ::core::option::Option::None => "unknown",
                },
            },
        }
        .register()
    };
}
