//! What link-time registration shares: the identity of a site (its
//! function's full path, impl and trait included) and the problems found
//! while the global registries are built, reported once they are.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// The `function` label of a site: the function's name, with the impl's
/// self type (and trait) where there is one: `charge`, `Pg::load`,
/// `<Pg as Store>::load`, `Repo<_>::get`.
///
/// `scope` is the type name of a fn nested in the annotated function
/// (`crate::db::Pg::load::__cortex_scope`), which names every enclosing
/// item; the language gives no other way to see the impl from inside one
/// of its methods. Enclosing functions (a fn declared inside another, a
/// doctest's `main`) are left out: only a type, written CamelCase or with
/// generics, or a `<T as Trait>` qualifies the name.
pub(crate) fn function_label(scope: &str, module: &str, function: &str) -> String {
    let path = scope
        .rsplit_once("::")
        .map_or(scope, |(path, _nested_fn)| path);
    let path = path.replace("::{{closure}}", "");
    let rest = path
        .strip_prefix(module)
        .and_then(|r| r.strip_prefix("::"))
        .unwrap_or(&path);
    let segments = top_level_segments(rest);
    match segments.as_slice() {
        [.., owner, name] if is_type(owner) => format!("{}::{name}", shorten(owner)),
        [.., name] if !name.is_empty() => (*name).to_owned(),
        _ => function.to_owned(),
    }
}

/// `a::B<c::D>::f` -> `["a", "B<c::D>", "f"]`: splits at `::` outside `<..>`.
fn top_level_segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                out.push(&path[start..i]);
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&path[start..]);
    out
}

fn is_type(segment: &str) -> bool {
    segment.starts_with('<')
        || segment.contains('<')
        || segment.chars().next().is_some_and(char::is_uppercase)
}

/// Every path inside `<..>` (the self type and trait of a trait impl, and
/// generic arguments) is cut to its last segment: `<db::Pg as app::Store>`
/// reads `<Pg as Store>`.
fn shorten(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0usize;
    let mut segment = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                if depth == 0 {
                    out.push_str(&segment);
                    out.push_str("::");
                }
                segment.clear();
            }
            c if c.is_alphanumeric() || c == '_' => segment.push(c),
            c => {
                out.push_str(&segment);
                segment.clear();
                match c {
                    '<' => depth += 1,
                    '>' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                out.push(c);
            }
        }
    }
    out.push_str(&segment);
    out
}

/// A problem found while a global registry was being built.
struct Problem {
    target: &'static str,
    message: String,
}

static PROBLEMS: Mutex<Vec<Problem>> = Mutex::new(Vec::new());
static PENDING: AtomicBool = AtomicBool::new(false);

/// Notes a problem, to be logged once the registry being built is done.
pub(crate) fn problem(target: &'static str, message: String) {
    PROBLEMS.lock().push(Problem { target, message });
    PENDING.store(true, Ordering::Release);
}

/// Logs the problems noted so far, as `error` events. Called after a
/// global registry is built, never while: a subscriber may itself use
/// Cortex's registries.
#[inline]
pub(crate) fn report_problems() {
    if PENDING.load(Ordering::Acquire) && PENDING.swap(false, Ordering::AcqRel) {
        let problems = std::mem::take(&mut *PROBLEMS.lock());
        for p in problems {
            match p.target {
                "cortex::health" => tracing::error!(target: "cortex::health", "{}", p.message),
                "cortex::metrics" => tracing::error!(target: "cortex::metrics", "{}", p.message),
                _ => tracing::error!(target: "cortex::resilience", "{}", p.message),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::function_label;

    #[test]
    fn labels_name_the_impl() {
        let cases = [
            ("app::charge::__cortex_scope", "app", "charge", "charge"),
            (
                "app::db::Pg::load::__cortex_scope",
                "app::db",
                "load",
                "Pg::load",
            ),
            (
                "<app::db::Pg as app::Store>::load::__cortex_scope",
                "app::db",
                "load",
                "<Pg as Store>::load",
            ),
            (
                "app::db::Repo<_>::get::__cortex_scope",
                "app::db",
                "get",
                "Repo<_>::get",
            ),
            (
                "<alloc::vec::Vec<app::Item> as app::Store>::load::__cortex_scope",
                "app",
                "load",
                "<Vec<Item> as Store>::load",
            ),
            // Enclosing functions are not part of it (a doctest's `main`).
            (
                "app::outer::{{closure}}::inner::__cortex_scope",
                "app",
                "inner",
                "inner",
            ),
            (
                "rust_out::main::_doctest_main_x_7_0::charge::__cortex_scope",
                "rust_out",
                "charge",
                "charge",
            ),
            (
                "app::handler::Local::run::__cortex_scope",
                "app",
                "run",
                "Local::run",
            ),
            // Not found under the module (a type defined elsewhere).
            ("other::Pg::load::__cortex_scope", "app", "load", "Pg::load"),
        ];
        for (scope, module, function, want) in cases {
            assert_eq!(function_label(scope, module, function), want, "{scope}");
        }
    }
}
