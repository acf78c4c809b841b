//! From settings to a checked plan, and from a plan to the instances: every
//! instance's new configuration is computed and checked first; only a plan
//! without problems is applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

use cortex_rules::config::{self as rules, Shown};
use parking_lot::Mutex;

use super::kinds::{Breakers, Bulkheads, Checks, Kind, RateLimiters, Retries, Timeouts};
use super::kinds::{HEALTH_KEYS, TRACES_KEYS};
use super::server::check_limit;
use super::source::{Place, Section, Setting};
use super::{Change, Problem, Report};
use crate::health::CheckOptions;
use crate::resilience::{BulkheadConfig, CircuitBreakerConfig, RateLimiterConfig, RetryConfig};

/// Where each overridden value came from, by section and instance (`""`
/// for a section's own keys).
pub(crate) type Sources = BTreeMap<(Section, String), BTreeMap<String, Place>>;

/// The configuration each touched instance had before any override.
#[derive(Default)]
pub(crate) struct Bases {
    pub(super) breakers: HashMap<String, CircuitBreakerConfig>,
    pub(super) retries: HashMap<String, RetryConfig>,
    pub(super) bulkheads: HashMap<String, BulkheadConfig>,
    pub(super) rate_limiters: HashMap<String, RateLimiterConfig>,
    pub(super) timeouts: HashMap<String, Duration>,
    pub(super) checks: HashMap<String, CheckOptions>,
    health: Option<(Duration, Duration)>,
}

static BASES: LazyLock<Mutex<Bases>> = LazyLock::new(Default::default);

/// What the applied configuration set.
#[derive(Default)]
pub(crate) struct Active {
    pub(crate) sources: Sources,
    /// `[server]` settings, checked, applied when a server binds.
    pub(crate) server: Vec<Setting>,
}

pub(crate) static ACTIVE: LazyLock<Mutex<Active>> = LazyLock::new(Default::default);

/// An instance and the configuration it is to have.
struct Target<K: Kind> {
    name: String,
    instance: K::Instance,
    config: K::Config,
}

/// A checked configuration, ready to apply.
pub(crate) struct Plan {
    breakers: Vec<Target<Breakers>>,
    retries: Vec<Target<Retries>>,
    bulkheads: Vec<Target<Bulkheads>>,
    rate_limiters: Vec<Target<RateLimiters>>,
    timeouts: Vec<Target<Timeouts>>,
    checks: Vec<Target<Checks>>,
    health: (Duration, Duration),
    sampler_ratio: Option<f64>,
    server: Vec<Setting>,
    sources: Sources,
}

impl Plan {
    /// Every instance's new configuration, every problem into `problems`.
    pub(crate) fn make(settings: &[Setting], problems: &mut Vec<Problem>) -> Plan {
        let previous = ACTIVE.lock().sources.clone();
        let mut sources = Sources::new();
        let mut bases = BASES.lock();
        let mut ctx = Ctx {
            settings,
            previous: &previous,
            sources: &mut sources,
            bases: &mut bases,
            problems,
        };
        let breakers = ctx.resolve::<Breakers>();
        let retries = ctx.resolve::<Retries>();
        let bulkheads = ctx.resolve::<Bulkheads>();
        let rate_limiters = ctx.resolve::<RateLimiters>();
        let timeouts = ctx.resolve::<Timeouts>();
        let checks = ctx.resolve::<Checks>();
        let health = ctx.health();
        let sampler_ratio = ctx.traces();
        let server = ctx.server();
        Plan {
            breakers,
            retries,
            bulkheads,
            rate_limiters,
            timeouts,
            checks,
            health,
            sampler_ratio,
            server,
            sources,
        }
    }

    /// Applies every instance's configuration; says what changed.
    pub(crate) fn apply(self) -> Report {
        let mut report = Report::default();
        let sources = &self.sources;
        apply_all(self.breakers, sources, &mut report.changes);
        apply_all(self.retries, sources, &mut report.changes);
        apply_all(self.bulkheads, sources, &mut report.changes);
        apply_all(self.rate_limiters, sources, &mut report.changes);
        apply_all(self.timeouts, sources, &mut report.changes);
        apply_all(self.checks, sources, &mut report.changes);
        let registry = crate::health::global();
        let (cache, deadline) = self.health;
        let own = sources.get(&(Section::Health, String::new()));
        let source = |key: &str| source_of(own, key);
        if registry.cached_for() != cache {
            registry.cache_results_for(cache);
            report.changes.push(change(
                "health.cache",
                Shown::Duration(cache),
                source("cache"),
            ));
        }
        if registry.deadline() != deadline {
            registry.probe_deadline(deadline);
            report.changes.push(change(
                "health.probe_deadline",
                Shown::Duration(deadline),
                source("probe_deadline"),
            ));
        }
        if crate::trace::sampler_ratio_override() != self.sampler_ratio {
            crate::trace::set_sampler_ratio_override(self.sampler_ratio);
            let traces = sources.get(&(Section::Traces, String::new()));
            report.changes.push(change(
                "traces.sampler_ratio",
                self.sampler_ratio.map_or(Shown::Unset, Shown::Float),
                source_of(traces, "sampler_ratio"),
            ));
        }
        let mut active = ACTIVE.lock();
        let old: Vec<_> = active.server.iter().map(|s| (&s.key, &s.value)).collect();
        let new: Vec<_> = self.server.iter().map(|s| (&s.key, &s.value)).collect();
        if old != new {
            for s in &self.server {
                report.restart_needed.push(Change {
                    setting: format!("server.{}", s.key),
                    value: super::server::show_limit(&s.key, &s.value.value())
                        .map_or_else(String::new, shown),
                    source: s.place.to_string(),
                });
            }
        }
        active.server = self.server;
        active.sources = self.sources;
        report
    }
}

fn apply_all<K: Kind>(targets: Vec<Target<K>>, sources: &Sources, changes: &mut Vec<Change>) {
    for t in targets {
        let before = K::current(&t.instance);
        if before == t.config {
            continue;
        }
        K::reconfigure(&t.instance, t.config);
        let places = sources.get(&(K::SECTION, t.name.clone()));
        for key in K::KEYS {
            let (old, new) = (K::show(&before, key), K::show(&t.config, key));
            if old != new {
                let source = source_of(places, key);
                if let Some(new) = new {
                    changes.push(change(
                        &format!("{}.{}.{key}", K::SECTION.name(), t.name),
                        new,
                        source,
                    ));
                }
            }
        }
    }
}

/// Where `key` of one instance's overrides came from: its place, or
/// `compiled` when nothing overrode it.
pub(crate) fn source_of(places: Option<&BTreeMap<String, Place>>, key: &str) -> String {
    places
        .and_then(|p| p.get(key))
        .map_or_else(|| "compiled".to_owned(), ToString::to_string)
}

fn change(setting: &str, value: Shown, source: String) -> Change {
    Change {
        setting: setting.to_owned(),
        value: shown(value),
        source,
    }
}

/// A value as a configuration file writes it.
pub(crate) fn shown(value: Shown) -> String {
    match value {
        Shown::Int(n) => n.to_string(),
        Shown::Float(f) => f.to_string(),
        Shown::Bool(b) => b.to_string(),
        Shown::Duration(d) => format!("\"{}\"", rules::show_duration(d)),
        Shown::Word(w) => format!("\"{w}\""),
        Shown::Unset => "none".to_owned(),
    }
}

struct Ctx<'a> {
    settings: &'a [Setting],
    previous: &'a Sources,
    sources: &'a mut Sources,
    bases: &'a mut Bases,
    problems: &'a mut Vec<Problem>,
}

impl Ctx<'_> {
    /// The instances of `K` the settings name (or named before): each one's
    /// compiled configuration with the settings over it, checked.
    fn resolve<K: Kind>(&mut self) -> Vec<Target<K>> {
        let instances = K::instances();
        let mut by_name: BTreeMap<String, Vec<&Setting>> = BTreeMap::new();
        for s in self.settings.iter().filter(|s| s.section == K::SECTION) {
            let Some(instance) = &s.instance else {
                continue;
            };
            let found: Vec<&str> = instances
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| instance.matches(n))
                .collect();
            let written = instance.written();
            let setting = format!("{}.{written}", K::SECTION.name());
            match found.as_slice() {
                [name] => by_name.entry((*name).to_owned()).or_default().push(s),
                [] => {
                    let names = instances.iter().map(|(n, _)| n.as_str());
                    let message = match rules::nearest(written, names) {
                        Some(near) => format!(
                            "no {} is named `{written}`; did you mean `{near}`?",
                            K::WHAT
                        ),
                        None if instances.is_empty() => {
                            format!("no {} is named `{written}`; there are none", K::WHAT)
                        }
                        None => format!(
                            "no {} is named `{written}`; the names are {}",
                            K::WHAT,
                            instances
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.problems
                        .push(Problem::new(s.place.clone(), &setting, message));
                }
                many => self.problems.push(Problem::new(
                    s.place.clone(),
                    &setting,
                    format!(
                        "`{written}` could be any of {}; name it in the file instead",
                        many.join(", ")
                    ),
                )),
            }
        }
        let bases = K::bases(self.bases);
        let mut targets = Vec::new();
        for (name, instance) in instances {
            let key = (K::SECTION, name.clone());
            let named = by_name.remove(&name).unwrap_or_default();
            if named.is_empty() && !self.previous.contains_key(&key) {
                continue;
            }
            let base = *bases
                .entry(name.clone())
                .or_insert_with(|| K::current(&instance));
            let mut config = base;
            let mut places = BTreeMap::new();
            let mut set_all = true;
            for s in named {
                let setting = format!("{}.{name}.{}", K::SECTION.name(), s.key);
                match K::set(&mut config, &s.key, &s.value.value()) {
                    Ok(()) => {
                        places.insert(s.key.clone(), s.place.clone());
                    }
                    Err(message) => {
                        set_all = false;
                        self.problems
                            .push(Problem::new(s.place.clone(), &setting, message));
                    }
                }
            }
            if set_all {
                for e in K::problems(&config) {
                    let place = places
                        .get(e.key)
                        .or_else(|| {
                            K::RELATED
                                .iter()
                                .find(|(k, _)| *k == e.key)
                                .and_then(|(_, other)| places.get(*other))
                        })
                        .or_else(|| places.values().next());
                    // A compiled configuration is valid: a broken rule
                    // always involves a setting.
                    if let Some(place) = place {
                        self.problems.push(Problem::new(
                            place.clone(),
                            &format!("{}.{name}.{}", K::SECTION.name(), e.key),
                            e.message,
                        ));
                    }
                }
            }
            if !places.is_empty() {
                self.sources.insert(key, places);
            }
            targets.push(Target {
                name,
                instance,
                config,
            });
        }
        targets
    }

    /// The section's own keys (`[health]`, `[server]`, `[traces]`).
    fn own(&self, section: Section) -> impl Iterator<Item = &Setting> {
        self.settings
            .iter()
            .filter(move |s| s.section == section)
            .filter(|s| s.instance.is_none())
    }

    fn note(&mut self, section: Section, s: &Setting) {
        self.sources
            .entry((section, String::new()))
            .or_default()
            .insert(s.key.clone(), s.place.clone());
    }

    fn health(&mut self) -> (Duration, Duration) {
        let registry = crate::health::global();
        let (mut cache, mut deadline) = *self
            .bases
            .health
            .get_or_insert_with(|| (registry.cached_for(), registry.deadline()));
        let own: Vec<Setting> = self.own(Section::Health).cloned().collect();
        for s in &own {
            let v = s.value.value();
            let result = match s.key.as_str() {
                "cache" => rules::duration(&s.key, &v, true).map(|d| cache = d),
                "probe_deadline" => rules::duration(&s.key, &v, false).map(|d| deadline = d),
                other => Err(rules::unknown(other, HEALTH_KEYS)),
            };
            match result {
                Ok(()) => self.note(Section::Health, s),
                Err(m) => self.problems.push(Problem::new(
                    s.place.clone(),
                    &format!("health.{}", s.key),
                    m,
                )),
            }
        }
        (cache, deadline)
    }

    fn traces(&mut self) -> Option<f64> {
        let mut ratio = None;
        let own: Vec<Setting> = self.own(Section::Traces).cloned().collect();
        for s in &own {
            let setting = format!("traces.{}", s.key);
            let result = match s.key.as_str() {
                "sampler_ratio" => rules::number(&s.key, &s.value.value()).and_then(|r| {
                    if (0.0..=1.0).contains(&r) {
                        ratio = Some(r);
                        Ok(())
                    } else {
                        Err(format!("{r} is outside 0..=1 (the share of traces kept, like `sampler_ratio = 0.1`)"))
                    }
                }),
                other => Err(rules::unknown(other, TRACES_KEYS)),
            };
            match result {
                Ok(()) => self.note(Section::Traces, s),
                Err(m) => self
                    .problems
                    .push(Problem::new(s.place.clone(), &setting, m)),
            }
        }
        ratio
    }

    fn server(&mut self) -> Vec<Setting> {
        let mut checked = Vec::new();
        for s in self
            .settings
            .iter()
            .filter(|s| s.section == Section::Server)
        {
            let setting = format!("server.{}", s.key);
            if s.instance.is_some() {
                self.problems.push(Problem::new(
                    s.place.clone(),
                    &setting,
                    "server settings name no instance: CORTEX_SERVER_<KEY>",
                ));
                continue;
            }
            match check_limit(&s.key, &s.value.value()) {
                Ok(()) => checked.push(s.clone()),
                Err(m) => self
                    .problems
                    .push(Problem::new(s.place.clone(), &setting, m)),
            }
        }
        for s in &checked {
            self.note(Section::Server, s);
        }
        checked
    }
}
