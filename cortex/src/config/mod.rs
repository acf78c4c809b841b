//! Tuning without a rebuild: overrides from a TOML file and `CORTEX_*`
//! environment variables over the compiled-in values of each named
//! instance, checked by the same rules as the attributes, and reloadable.
//!
//! [`load`] reads the file named by `CORTEX_CONFIG` (none if unset), then
//! the environment, and applies both. **Precedence**: the value compiled
//! in (the attribute, or the configuration the code built the instance
//! with) < the file < the environment. Everything is checked before
//! anything changes; a bad value is refused with the place it was written:
//!
//! ```text
//! cortex.toml:2:16: circuit_breaker.payments.failure_rate: 150 is outside 1..=100 (a percentage, like `failure_rate = 50`)
//! CORTEX_RETRY__PAYMNETS__MAX: retry.paymnets: no retry is named `paymnets`; did you mean `payments`?
//! ```
//!
//! The file, with every section it may hold (durations in the attribute
//! syntax):
//!
//! ```toml
//! [circuit_breaker.payments]      # the keys of #[circuit_breaker]
//! failure_rate = 60
//! open_for = "30s"
//! window = 100                    # calls, or a duration: "60s"
//!
//! [retry.payments]                # max, delay, multiplier, max_delay, jitter, budget, max_elapsed
//! max = 5
//!
//! [bulkhead.reports]              # max_concurrent, max_wait, fair
//! [rate_limiter.search]           # permits, period, max_wait
//! [timeout.payments]              # after
//! after = "2s"
//!
//! [health]                        # cache, probe_deadline
//! cache = "5s"
//! [health.database]               # a check by name: timeout, group, critical
//! timeout = "2s"
//! group = "readiness"             # liveness, readiness or both
//! critical = false
//!
//! [server]                        # the fields of cortex::http::Limits
//! max_connections = 2000
//! header_read_timeout = "5s"
//!
//! [traces]
//! sampler_ratio = 0.1             # root spans kept (parents decide for children)
//! ```
//!
//! The same settings as variables: `CORTEX_<SECTION>__<NAME>__<KEY>`
//! (`CORTEX_CIRCUIT_BREAKER__PAYMENTS__FAILURE_RATE=60`; a name matches
//! ignoring case, with `_` for any other character), `CORTEX_<SECTION>__<KEY>`
//! or, for the sections of one word, `CORTEX_<SECTION>_<KEY>`
//! (`CORTEX_TRACES_SAMPLER_RATIO=0.1`, `CORTEX_SERVER_MAX_CONNECTIONS=500`).
//! A name that folds to something with `__` in it (an unnamed instance,
//! named after its function: `shop::find_order`) is set from the file,
//! with a quoted key: `[retry."shop::find_order"]`.
//! The `CORTEX_` prefix is Cortex's: any other such variable is an unknown
//! setting, except `CORTEX_CONFIG`, `CORTEX_CONFIG_MODE` (`strict`, the
//! default, or `lenient`), `CORTEX_ADMIN_TOKEN`, and the demo's
//! `CORTEX_ADDR` and `CORTEX_DRAIN_DELAY`.
//!
//! An unknown section, instance or key is an error that names the nearest
//! known one: a typo must not pass silently. In [`Mode::Strict`] a refused
//! configuration is an error (a [`Server`](crate::http::Server) with the
//! admin endpoints then refuses to start); in [`Mode::Lenient`] it is logged
//! and the compiled values stay.
//!
//! [`reload`] (also on `SIGHUP`, see [`reload_on_sighup`], and at
//! `POST /cortex/config/reload`) reads both again and applies the whole new
//! configuration or none of it: each instance takes its new values as its
//! `reconfigure` does (an open breaker stays open), and an instance whose
//! overrides were removed goes back to its compiled values. Server limits
//! are read when a server binds; a reload reports a change to them as
//! waiting for a restart.
//!
//! Instances must exist when the configuration is read: those of the
//! attributes always do; one the code builds by hand must be built before
//! [`load`].
//!
//! ```
//! use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig};
//!
//! let breaker = CircuitBreaker::new("doc-config-payments", CircuitBreakerConfig::default())?;
//! let report = cortex::config::Options::new()
//!     .text("cortex.toml", "[circuit_breaker.doc-config-payments]\nfailure_rate = 60\n")
//!     .load()?;
//! assert_eq!(breaker.config().failure_rate, 60);
//! assert_eq!(report.changes[0].to_string(),
//!     "circuit_breaker.doc-config-payments.failure_rate = 60 (cortex.toml:2:16)");
//!
//! let refused = cortex::config::Options::new()
//!     .text("cortex.toml", "[circuit_breaker.doc-config-payments]\nfailure_rate = 150\n")
//!     .load()
//!     .unwrap_err();
//! assert_eq!(refused.to_string(),
//!     "cortex.toml:2:16: circuit_breaker.doc-config-payments.failure_rate: \
//!      150 is outside 1..=100 (a percentage, like `failure_rate = 50`)");
//! assert_eq!(breaker.config().failure_rate, 60); // nothing changed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod kinds;
mod plan;
mod server;
mod source;
mod view;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

pub use source::Place;
pub use view::to_json;

pub(crate) use kinds::{Breakers, Bulkheads, RateLimiters, Retries, Timeouts};
pub(crate) use view::settings;

/// What a refused configuration does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A refused configuration is an error: the service must not start on
    /// it. The default.
    #[default]
    Strict,
    /// A refused configuration is logged and the compiled values stay.
    Lenient,
}

/// One thing wrong with a configuration: where, which setting, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value was written.
    pub place: Place,
    /// The setting (`circuit_breaker.payments.failure_rate`), empty when
    /// the problem is not one setting's.
    pub setting: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(place: Place, setting: &str, message: impl Into<String>) -> Self {
        Problem {
            place,
            setting: setting.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.setting.is_empty() {
            write!(f, "{}: {}", self.place, self.message)
        } else {
            write!(f, "{}: {}: {}", self.place, self.setting, self.message)
        }
    }
}

/// A refused configuration: every problem found, one per line. Nothing
/// was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The problems, in the order of the file, then of the variables.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// One value that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The setting (`retry.payments.max`).
    pub setting: String,
    /// The new value, as a configuration writes it.
    pub value: String,
    /// Where it came from: a place, or `compiled` for a value that went
    /// back to the compiled one.
    pub source: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} ({})", self.setting, self.value, self.source)
    }
}

/// What a load or reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The values that changed now.
    pub changes: Vec<Change>,
    /// Server limits that changed, applied when a server next binds.
    pub restart_needed: Vec<Change>,
    /// In [`Mode::Lenient`], the refused configuration that was not
    /// applied.
    pub refused: Option<Error>,
}

/// Where to read a configuration from.
///
/// [`Options::from_env`] is what [`load`] uses; tests and programs that
/// keep their configuration elsewhere give the text and variables here.
#[derive(Debug, Clone, Default)]
pub struct Options {
    file: Option<(PathBuf, Option<String>)>,
    vars: Option<Vec<(String, String)>>,
    mode: Option<Mode>,
}

impl Options {
    /// No file and no variables (add them with the methods below).
    pub fn new() -> Self {
        Options {
            file: None,
            vars: Some(Vec::new()),
            mode: None,
        }
    }

    /// The process's: the file named by `CORTEX_CONFIG`, every `CORTEX_*`
    /// variable, the mode of `CORTEX_CONFIG_MODE`.
    pub fn from_env() -> Self {
        Options {
            file: std::env::var_os("CORTEX_CONFIG")
                .filter(|p| !p.is_empty())
                .map(|p| (PathBuf::from(p), None)),
            vars: None,
            mode: None,
        }
    }

    /// Reads this file (it must exist).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some((path.into(), None));
        self
    }

    /// This text, as a file named `name` (for its errors).
    pub fn text(mut self, name: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.file = Some((name.into(), Some(text.into())));
        self
    }

    /// These variables instead of the process's.
    pub fn vars<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.vars = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// The mode, instead of `CORTEX_CONFIG_MODE`'s.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Reads, checks and applies the configuration (see the
    /// [module docs](self)), and remembers these options for [`reload`].
    ///
    /// # Errors
    /// In [`Mode::Strict`], a refused configuration; nothing was applied.
    pub fn load(self) -> Result<Report, Error> {
        *LAST.lock() = Some(self.clone());
        let result = self.apply(true);
        // A refused configuration is read again by the next server that
        // binds: strict refuses every time.
        if result.is_ok() {
            LOADED.store(true, Ordering::Release);
        }
        result
    }

    /// Reads, checks and applies. Only a `load` in lenient mode keeps the
    /// compiled values on a refusal; a reload refuses in either mode (it
    /// never applies a refused configuration, nor hides it).
    fn apply(&self, load: bool) -> Result<Report, Error> {
        let _one_at_a_time = APPLYING.lock();
        let vars = self
            .vars
            .clone()
            .unwrap_or_else(|| std::env::vars().collect());
        let mut problems = Vec::new();
        let mode = match self.mode {
            Some(m) => m,
            None => mode_from(&vars, &mut problems),
        };
        let mut settings = Vec::new();
        if let Some((path, text)) = &self.file {
            let text = match text {
                Some(t) => Some(t.clone()),
                None => match std::fs::read_to_string(path) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problems.push(Problem::new(
                            Place::Whole(path.display().to_string()),
                            "",
                            format!("cannot read the configuration file: {e}"),
                        ));
                        None
                    }
                },
            };
            if let Some(text) = text {
                settings.extend(source::file(path, &text, &mut problems));
            }
        }
        settings.extend(source::env(vars, &mut problems));
        let result = plan::Plan::make(&settings, &mut problems);
        if !problems.is_empty() {
            let error = Error { problems };
            for p in &error.problems {
                tracing::warn!(target: "cortex::config", problem = %p, "configuration refused");
            }
            if load && mode == Mode::Lenient {
                tracing::warn!(target: "cortex::config", "lenient: keeping the compiled values");
                return Ok(Report {
                    refused: Some(error),
                    ..Report::default()
                });
            }
            return Err(error);
        }
        let report = result.apply();
        for c in &report.changes {
            tracing::info!(target: "cortex::config", change = %c, "configuration applied");
        }
        for c in &report.restart_needed {
            tracing::info!(target: "cortex::config", change = %c, "applies when a server next binds");
        }
        Ok(report)
    }
}

fn mode_from(vars: &[(String, String)], problems: &mut Vec<Problem>) -> Mode {
    match vars.iter().find(|(k, _)| k == "CORTEX_CONFIG_MODE") {
        None => Mode::Strict,
        Some((_, v)) => match v.trim() {
            "strict" | "" => Mode::Strict,
            "lenient" => Mode::Lenient,
            other => {
                problems.push(Problem::new(
                    Place::Env("CORTEX_CONFIG_MODE".into()),
                    "",
                    format!("unknown mode `{other}`; the modes are strict and lenient"),
                ));
                Mode::Strict
            }
        },
    }
}

static LAST: Mutex<Option<Options>> = Mutex::new(None);
static LOADED: AtomicBool = AtomicBool::new(false);
static APPLYING: Mutex<()> = Mutex::new(());

/// Loads the process's configuration ([`Options::from_env`]): the file
/// named by `CORTEX_CONFIG`, then the `CORTEX_*` variables.
///
/// # Errors
/// In [`Mode::Strict`] (the default), a refused configuration, naming the
/// place of each bad value; nothing was applied.
pub fn load() -> Result<Report, Error> {
    Options::from_env().load()
}

/// Loads the process's configuration unless a load already happened:
/// what a server with the admin endpoints does when it binds.
pub(crate) fn load_once() -> Result<(), Error> {
    if LOADED.load(Ordering::Acquire) {
        return Ok(());
    }
    load().map(drop)
}

/// Reads the configuration again from where the last [`load`] read it
/// (the process's, if none) and applies all of it, or none of it.
///
/// # Errors
/// The refused configuration, in either mode; nothing was applied.
pub fn reload() -> Result<Report, Error> {
    let options = LAST.lock().clone().unwrap_or_else(Options::from_env);
    options.apply(false)
}

/// Reloads on every `SIGHUP` (Unix), logging what was applied or refused.
/// The first call starts one thread (`cortex-sighup`) that waits for the
/// signal for the rest of the process; later calls do nothing. A server
/// with the admin endpoints calls it when it binds. Returns whether the
/// process now reloads on `SIGHUP`.
pub fn reload_on_sighup() -> bool {
    static LISTENING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTENING.get_or_init(listen_for_hangups)
}

#[cfg(unix)]
fn listen_for_hangups() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let (registered, wait) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("cortex-sighup".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = registered.send(false);
                return;
            };
            runtime.block_on(async move {
                let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                    let _ = registered.send(false);
                    return;
                };
                let _ = registered.send(true);
                while hangups.recv().await.is_some() {
                    tracing::info!(target: "cortex::config", "SIGHUP: reloading the configuration");
                    if let Err(e) = reload() {
                        tracing::warn!(target: "cortex::config", problems = e.problems.len(), "reload refused, nothing changed");
                    }
                }
            });
        });
    // Registered before this returns, so a SIGHUP sent after it never
    // takes the default action (which ends the process).
    spawned.is_ok() && wait.recv().unwrap_or(false)
}

#[cfg(not(unix))]
fn listen_for_hangups() -> bool {
    false
}

#[cfg(feature = "http")]
pub(crate) use server::server_limits;
