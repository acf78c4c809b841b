//! Reading settings: a TOML file (with the line and column of every value)
//! and `CORTEX_*` environment variables, into one flat list.

use std::fmt;
use std::path::Path;

use cortex_rules::config::Value;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::Problem;

/// The parts of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Section {
    CircuitBreaker,
    Retry,
    Bulkhead,
    RateLimiter,
    Timeout,
    Health,
    Server,
    Traces,
}

impl Section {
    pub(crate) const ALL: [Section; 8] = [
        Section::CircuitBreaker,
        Section::Retry,
        Section::Bulkhead,
        Section::RateLimiter,
        Section::Timeout,
        Section::Health,
        Section::Server,
        Section::Traces,
    ];

    /// As written in a file (`[circuit_breaker.payments]`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Section::CircuitBreaker => "circuit_breaker",
            Section::Retry => "retry",
            Section::Bulkhead => "bulkhead",
            Section::RateLimiter => "rate_limiter",
            Section::Timeout => "timeout",
            Section::Health => "health",
            Section::Server => "server",
            Section::Traces => "traces",
        }
    }

    /// Whether its tables are named instances (`[retry.payments]`); the
    /// others hold keys directly (`[server]`). `health` has both: a table
    /// per check and keys of its own.
    pub(crate) fn has_instances(self) -> bool {
        !matches!(self, Section::Server | Section::Traces)
    }

    fn parse(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == name)
    }

    fn names() -> impl Iterator<Item = &'static str> {
        Section::ALL.into_iter().map(Section::name)
    }
}

/// Where a value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A line and column (from 1) of a configuration file.
    File {
        /// The file, as named by `CORTEX_CONFIG`.
        path: String,
        /// Its line.
        line: usize,
        /// Its column, in characters.
        column: usize,
    },
    /// An environment variable.
    Env(String),
    /// The configuration file as a whole (it could not be read).
    Whole(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File { path, line, column } => write!(f, "{path}:{line}:{column}"),
            Place::Env(var) => f.write_str(var),
            Place::Whole(path) => f.write_str(path),
        }
    }
}

/// An owned [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Owned {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Text(String),
    Other(&'static str),
}

impl Owned {
    pub(crate) fn value(&self) -> Value<'_> {
        match self {
            Owned::Int(n) => Value::Int(*n),
            Owned::Float(f) => Value::Float(*f),
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Str(s) => Value::Str(s),
            Owned::Text(t) => Value::Text(t),
            Owned::Other(kind) => Value::Other(kind),
        }
    }
}

/// Who names an instance: a file names it as the code does; a variable
/// only in capitals with `_` for anything else, matched against the names
/// in the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Instance {
    Exact(String),
    Folded(String),
}

impl Instance {
    /// Whether `name` is this instance.
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Instance::Exact(n) => n == name,
            Instance::Folded(f) => fold(name) == *f,
        }
    }

    pub(crate) fn written(&self) -> &str {
        match self {
            Instance::Exact(n) | Instance::Folded(n) => n,
        }
    }
}

/// A name as an environment variable can spell it.
pub(crate) fn fold(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// One value, and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub(crate) section: Section,
    /// `None` for a section's own keys.
    pub(crate) instance: Option<Instance>,
    pub(crate) key: String,
    pub(crate) value: Owned,
    pub(crate) place: Place,
}

/// Reads the file at `path` (its text), reporting syntax and shape
/// mistakes into `problems`.
pub(crate) fn file(path: &Path, text: &str, problems: &mut Vec<Problem>) -> Vec<Setting> {
    let shown = path.display().to_string();
    let at = |span: std::ops::Range<usize>| {
        let (line, column) = line_column(text, span.start);
        Place::File {
            path: shown.clone(),
            line,
            column,
        }
    };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let place = match e.span() {
                Some(span) => at(span),
                None => Place::Whole(shown.clone()),
            };
            problems.push(Problem::new(
                place,
                "",
                format!("not valid TOML: {}", e.message().trim()),
            ));
            return Vec::new();
        }
    };
    let mut settings = Vec::new();
    for (name, item) in sorted(root.get_ref()) {
        let Some(section) = Section::parse(name.get_ref()) else {
            problems.push(Problem::new(
                at(name.span()),
                name.get_ref(),
                unknown_section(name.get_ref()),
            ));
            continue;
        };
        let Some(table) = item.get_ref().as_table() else {
            problems.push(Problem::new(
                at(item.span()),
                section.name(),
                format!("must be a table: `[{}]`", section.name()),
            ));
            continue;
        };
        for (key, value) in sorted(table) {
            match value.get_ref() {
                DeValue::Table(keys) if section.has_instances() => {
                    let instance = Instance::Exact(key.get_ref().to_string());
                    for (k, v) in sorted(keys) {
                        settings.push(Setting {
                            section,
                            instance: Some(instance.clone()),
                            key: k.get_ref().to_string(),
                            value: owned(v.get_ref()),
                            place: at(v.span()),
                        });
                    }
                }
                _ if section.has_instances() && section != Section::Health => {
                    problems.push(Problem::new(
                        at(key.span()),
                        &format!("{}.{}", section.name(), key.get_ref()),
                        format!(
                            "settings go in a table per instance: `[{}.<name>]` then `{} = ..`",
                            section.name(),
                            key.get_ref()
                        ),
                    ));
                }
                v => settings.push(Setting {
                    section,
                    instance: None,
                    key: key.get_ref().to_string(),
                    value: owned(v),
                    place: at(value.span()),
                }),
            }
        }
    }
    settings
}

/// The entries of a table in the order they were written.
fn sorted<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

fn owned(v: &DeValue<'_>) -> Owned {
    match v {
        DeValue::String(s) => Owned::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => Owned::Int(n),
            Err(_) => Owned::Other("an integer too large"),
        },
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(x) => Owned::Float(x),
            Err(_) => Owned::Other("a float"),
        },
        DeValue::Boolean(b) => Owned::Bool(*b),
        DeValue::Datetime(_) => Owned::Other("a date"),
        DeValue::Array(_) => Owned::Other("an array"),
        DeValue::Table(_) => Owned::Other("a table"),
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

fn unknown_section(name: &str) -> String {
    match cortex_rules::config::nearest(name, Section::names()) {
        Some(near) => format!("unknown section `{name}`; did you mean `{near}`?"),
        None => format!(
            "unknown section `{name}`; the sections are {}",
            Section::names().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Cortex's variables that are not settings.
pub(crate) const OTHER_VARIABLES: &[&str] = &[
    "CORTEX_CONFIG",
    "CORTEX_CONFIG_MODE",
    "CORTEX_ADMIN_TOKEN",
    "CORTEX_ADDR",
    "CORTEX_DRAIN_DELAY",
    "CORTEX_BUILD_COMMIT",
];

/// Reads the `CORTEX_*` variables among `vars`:
/// `CORTEX_<SECTION>__<INSTANCE>__<KEY>`, `CORTEX_<SECTION>__<KEY>`, or
/// for the sections of one word `CORTEX_<SECTION>_<KEY>`
/// (`CORTEX_TRACES_SAMPLER_RATIO`).
pub(crate) fn env(
    vars: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<Problem>,
) -> Vec<Setting> {
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("CORTEX_") && !OTHER_VARIABLES.contains(&k.as_str()))
        .collect();
    vars.sort();
    let mut settings = Vec::new();
    for (var, value) in vars {
        let rest = &var["CORTEX_".len()..];
        let parts: Vec<&str> = rest.split("__").collect();
        let (section, instance, key) = match parts.as_slice() {
            [section, instance, key] => (*section, Some(*instance), *key),
            [section, key] => (*section, None, *key),
            [one] => match one.split_once('_') {
                Some((section, key)) => (section, None, key),
                None => (*one, None, ""),
            },
            _ => ("", None, ""),
        };
        let lower = section.to_ascii_lowercase();
        let Some(section) = Section::parse(&lower) else {
            let message = match cortex_rules::config::nearest(&lower, Section::names()) {
                Some(near) => format!(
                    "unknown variable: `{lower}` is not a section; did you mean `{near}` (CORTEX_{}__..)?",
                    near.to_ascii_uppercase()
                ),
                None => format!(
                    "unknown variable: settings are CORTEX_<SECTION>__<NAME>__<KEY>, with the sections {}",
                    Section::names().collect::<Vec<_>>().join(", ")
                ),
            };
            problems.push(Problem::new(Place::Env(var.clone()), "", message));
            continue;
        };
        if key.is_empty()
            || (instance.is_none() && section.has_instances() && section != Section::Health)
        {
            problems.push(Problem::new(
                Place::Env(var.clone()),
                section.name(),
                format!(
                    "a {} setting names its instance: CORTEX_{}__<NAME>__<KEY>",
                    section.name(),
                    section.name().to_ascii_uppercase()
                ),
            ));
            continue;
        }
        settings.push(Setting {
            section,
            instance: instance.map(|i| Instance::Folded(i.to_ascii_lowercase())),
            key: key.to_ascii_lowercase(),
            value: Owned::Text(value),
            place: Place::Env(var),
        });
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_settings_carry_their_line_and_column() {
        let text =
            "[circuit_breaker.payments]\nfailure_rate = 60\n\n[server]\nidle_timeout = \"5s\"\n";
        let mut problems = Vec::new();
        let s = file(Path::new("cortex.toml"), text, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].key, "failure_rate");
        assert_eq!(s[0].value, Owned::Int(60));
        assert_eq!(s[0].place.to_string(), "cortex.toml:2:16");
        assert_eq!(s[1].section, Section::Server);
        assert_eq!(s[1].place.to_string(), "cortex.toml:5:16");
    }

    #[test]
    fn env_names_split_into_section_instance_and_key() {
        let mut problems = Vec::new();
        let s = env(
            [
                (
                    "CORTEX_CIRCUIT_BREAKER__PAYMENTS__FAILURE_RATE".into(),
                    "60".into(),
                ),
                ("CORTEX_TRACES_SAMPLER_RATIO".into(), "0.1".into()),
                ("CORTEX_ADMIN_TOKEN".into(), "x".into()),
                ("PATH".into(), "/bin".into()),
            ],
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].instance, Some(Instance::Folded("payments".into())));
        assert_eq!(
            (s[1].section, s[1].key.as_str()),
            (Section::Traces, "sampler_ratio")
        );
        assert!(Instance::Folded("orders_db".into()).matches("orders-db"));
    }
}
