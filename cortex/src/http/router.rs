//! Routes: method + path template, with `{param}` segments.

use std::collections::HashMap;
use std::fmt;

use http::Method;

use super::handler::SharedHandler;
use super::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

pub(crate) struct Route {
    pub(crate) template: String,
    segments: Vec<Segment>,
    methods: Vec<(Method, SharedHandler)>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("template", &self.template)
            .field(
                "methods",
                &self.methods.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The outcome of matching a request.
pub(crate) enum Match<'a> {
    Found {
        route: &'a Route,
        handler: &'a SharedHandler,
        params: HashMap<String, String>,
    },
    /// The path matches a route that does not take this method.
    MethodNotAllowed {
        route: &'a Route,
        allow: String,
    },
    NotFound,
}

#[derive(Default, Debug)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

fn parse_template(template: &str) -> Result<Vec<Segment>, Error> {
    let bad = |why: &str| Error::BadRoute {
        template: template.to_owned(),
        reason: why.to_owned(),
    };
    let Some(rest) = template.strip_prefix('/') else {
        return Err(bad("a route must start with `/`"));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    for part in rest.split('/') {
        if part.is_empty() {
            return Err(bad("empty segment (`//` or a trailing `/`)"));
        }
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(bad(&format!("`{{{name}}}` is not a valid parameter name")));
            }
            if segments.contains(&Segment::Param(name.to_owned())) {
                return Err(bad(&format!("parameter `{name}` appears twice")));
            }
            segments.push(Segment::Param(name.to_owned()));
        } else if part.contains('{') || part.contains('}') {
            return Err(bad("a parameter must fill a whole segment, like `/{id}`"));
        } else {
            segments.push(Segment::Literal(part.to_owned()));
        }
    }
    Ok(segments)
}

impl Router {
    pub(crate) fn add(
        &mut self,
        method: Method,
        template: &str,
        handler: SharedHandler,
    ) -> Result<(), Error> {
        let segments = parse_template(template)?;
        // Two templates that differ only in parameter names would be ambiguous.
        let shape = |segs: &[Segment]| -> Vec<Option<String>> {
            segs.iter()
                .map(|s| match s {
                    Segment::Literal(l) => Some(l.clone()),
                    Segment::Param(_) => None,
                })
                .collect()
        };
        if let Some(route) = self
            .routes
            .iter_mut()
            .find(|r| shape(&r.segments) == shape(&segments))
        {
            if route.template != template {
                return Err(Error::BadRoute {
                    template: template.to_owned(),
                    reason: format!("it matches the same paths as `{}`", route.template),
                });
            }
            if route.methods.iter().any(|(m, _)| *m == method) {
                return Err(Error::DuplicateRoute {
                    method: method.to_string(),
                    template: template.to_owned(),
                });
            }
            route.methods.push((method, handler));
            return Ok(());
        }
        self.routes.push(Route {
            template: template.to_owned(),
            segments,
            methods: vec![(method, handler)],
        });
        // Literal segments win over parameters: `/orders/new` before `/orders/{id}`.
        self.routes.sort_by(|a, b| {
            let key = |r: &Route| {
                r.segments
                    .iter()
                    .map(|s| matches!(s, Segment::Param(_)))
                    .collect::<Vec<_>>()
            };
            key(a).cmp(&key(b))
        });
        Ok(())
    }

    pub(crate) fn find(&self, method: &Method, path: &str) -> Match<'_> {
        let parts = || path.split('/').filter(|p| !p.is_empty());
        let count = parts().count();
        for route in &self.routes {
            if route.segments.len() != count {
                continue;
            }
            let Some(params) = matches(&route.segments, parts()) else {
                continue;
            };
            let found = route
                .methods
                .iter()
                .find(|(m, _)| m == method || (*method == Method::HEAD && *m == Method::GET));
            return match found {
                Some((_, handler)) => Match::Found {
                    route,
                    handler,
                    params,
                },
                None => {
                    let mut allow: Vec<&str> =
                        route.methods.iter().map(|(m, _)| m.as_str()).collect();
                    if allow.contains(&"GET") && !allow.contains(&"HEAD") {
                        allow.push("HEAD");
                    }
                    Match::MethodNotAllowed {
                        route,
                        allow: allow.join(", "),
                    }
                }
            };
        }
        Match::NotFound
    }
}

fn matches<'p>(
    segments: &[Segment],
    parts: impl Iterator<Item = &'p str>,
) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    for (seg, part) in segments.iter().zip(parts) {
        match seg {
            Segment::Literal(l) if l == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                params.insert(name.clone(), percent_decode(part));
            }
        }
    }
    Some(params)
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn h() -> SharedHandler {
        Arc::new(|_req: crate::http::Request| async { "ok" })
    }

    #[test]
    fn templates() {
        let mut r = Router::default();
        r.add(Method::GET, "/orders/{id}", h()).unwrap();
        r.add(Method::GET, "/orders/new", h()).unwrap();
        r.add(Method::DELETE, "/orders/{id}", h()).unwrap();
        assert!(matches!(
            r.add(Method::GET, "/orders/{id}", h()),
            Err(Error::DuplicateRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "/orders/{other}", h()),
            Err(Error::BadRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "orders", h()),
            Err(Error::BadRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "/a/{x}{y}", h()),
            Err(Error::BadRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "/a/{1x}", h()),
            Err(Error::BadRoute { .. })
        ));
        match r.find(&Method::GET, "/orders/new") {
            Match::Found { route, .. } => assert_eq!(route.template, "/orders/new"),
            _ => panic!("literal route"),
        }
        match r.find(&Method::GET, "/orders/a%20b") {
            Match::Found { route, params, .. } => {
                assert_eq!(route.template, "/orders/{id}");
                assert_eq!(params["id"], "a b");
            }
            _ => panic!("param route"),
        }
        match r.find(&Method::POST, "/orders/7") {
            Match::MethodNotAllowed { allow, .. } => assert_eq!(allow, "GET, DELETE, HEAD"),
            _ => panic!("405"),
        }
        assert!(matches!(r.find(&Method::GET, "/nope"), Match::NotFound));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
