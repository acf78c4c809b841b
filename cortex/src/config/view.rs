//! The effective configuration, with where each value came from, as JSON.

use cortex_rules::config::{show_duration, Shown};
use serde_json::{json, Map, Value as Json};

use super::kinds::{Breakers, Bulkheads, Checks, Kind, RateLimiters, Retries, Timeouts};
use super::plan::{source_of, ACTIVE};
use super::source::Section;

/// A shown value as JSON: durations in the attribute syntax (`"30s"`),
/// `null` for an unset option.
pub(crate) fn value(shown: Shown) -> Json {
    match shown {
        Shown::Int(n) => json!(n),
        Shown::Float(f) => json!(f),
        Shown::Bool(b) => json!(b),
        Shown::Duration(d) => json!(show_duration(d)),
        Shown::Word(w) => json!(w),
        Shown::Unset => Json::Null,
    }
}

/// One instance's settings: `{"key": {"value": .., "source": ..}}`, the
/// source being where an override was written or `compiled`.
pub(crate) fn settings<K: Kind>(name: &str, config: &K::Config) -> Json {
    let active = ACTIVE.lock();
    let places = active.sources.get(&(K::SECTION, name.to_owned()));
    let mut out = Map::new();
    for key in K::KEYS {
        let Some(shown) = K::show(config, key) else {
            continue;
        };
        let source = source_of(places, key);
        out.insert(
            (*key).to_owned(),
            json!({"value": value(shown), "source": source}),
        );
    }
    Json::Object(out)
}

fn section<K: Kind>() -> Json {
    let mut out = Map::new();
    for (name, instance) in K::instances() {
        let config = K::current(&instance);
        out.insert(name.clone(), settings::<K>(&name, &config));
    }
    Json::Object(out)
}

fn own(section: Section, entries: &[(&str, Shown)]) -> Map<String, Json> {
    let active = ACTIVE.lock();
    let places = active.sources.get(&(section, String::new()));
    entries
        .iter()
        .map(|(key, shown)| {
            let source = source_of(places, key);
            (
                (*key).to_owned(),
                json!({"value": value(*shown), "source": source}),
            )
        })
        .collect()
}

/// The effective configuration as JSON, what `GET /cortex/config`
/// answers: every instance of every policy kind, every health check, the
/// health registry's own settings, the `[server]` overrides (applied over
/// each server's limits when it binds) and the trace sampling ratio, each
/// value with its `source`: the place of the override that set it
/// (`cortex.toml:3:16`, `CORTEX_RETRY__PAYMENTS__MAX`) or `compiled`.
///
/// ```
/// let json: serde_json::Value = serde_json::from_str(&cortex::config::to_json()).unwrap();
/// assert!(json["circuit_breaker"].is_object());
/// assert_eq!(json["traces"]["sampler_ratio"]["source"], "compiled");
/// ```
pub fn to_json() -> String {
    let registry = crate::health::global();
    let mut health = own(
        Section::Health,
        &[
            ("cache", Shown::Duration(registry.cached_for())),
            ("probe_deadline", Shown::Duration(registry.deadline())),
        ],
    );
    health.insert("checks".into(), section::<Checks>());
    let traces = own(
        Section::Traces,
        &[(
            "sampler_ratio",
            crate::trace::sampler_ratio_override().map_or(Shown::Unset, Shown::Float),
        )],
    );
    let server: Map<String, Json> = ACTIVE
        .lock()
        .server
        .iter()
        .map(|s| {
            let v = super::server::show_limit(&s.key, &s.value.value()).map_or(Json::Null, value);
            (
                s.key.clone(),
                json!({"value": v, "source": s.place.to_string()}),
            )
        })
        .collect();
    let all = json!({
        "circuit_breaker": section::<Breakers>(),
        "retry": section::<Retries>(),
        "bulkhead": section::<Bulkheads>(),
        "rate_limiter": section::<RateLimiters>(),
        "timeout": section::<Timeouts>(),
        "health": health,
        "server": server,
        "traces": traces,
    });
    all.to_string()
}
