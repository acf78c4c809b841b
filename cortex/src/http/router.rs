//! Routes: method + path template, with `{param}` segments.
//!
//! How a request path is matched:
//! - empty segments are ignored: `/metrics/`, `//metrics` and `/metrics`
//!   are the same path;
//! - dot segments are not resolved: a path with a `.` or `..` segment (as
//!   sent, or percent-encoded) is refused with 400;
//! - literal segments match as sent (no decoding); a parameter is
//!   percent-decoded, and an invalid escape (`%+A`, `%4`) or bytes that are
//!   not UTF-8 (`%FF`) get 400, never a silent replacement;
//! - a parameter that decodes to something containing `/` (`%2F`) or to
//!   `.`/`..` is refused with 400, unless its route opts in with
//!   [`RouteOptions::decoded_separators`].

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use http::Method;

use super::handler::SharedHandler;
use super::Error;

/// Options of one route (one method and template), for
/// [`Server::route_with`](super::Server::route_with).
///
/// ```
/// use cortex::http::RouteOptions;
/// use std::time::Duration;
///
/// let options = RouteOptions::default()
///     .request_timeout(Duration::from_secs(2))
///     .compress(false);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteOptions {
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) compress: bool,
    pub(crate) decoded_separators: bool,
}

impl Default for RouteOptions {
    /// The server's request timeout, compression as the server does it,
    /// no `/` or dot segment in decoded parameters.
    fn default() -> Self {
        RouteOptions {
            request_timeout: None,
            compress: true,
            decoded_separators: false,
        }
    }
}

impl RouteOptions {
    /// Drops the handler and answers 503 when it runs longer than this
    /// (instead of the server's [`Limits::request_timeout`](super::Limits::request_timeout)).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Whether this route's responses may be compressed (default true).
    /// Turn it off for responses that carry a secret next to text an
    /// attacker can choose (the BREACH attack reads the secret from the
    /// compressed size).
    #[must_use]
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// Lets this route's parameters decode to values containing `/` or to
    /// `.`/`..` (for a parameter that is a key, not a path). Default false.
    #[must_use]
    pub fn decoded_separators(mut self, allow: bool) -> Self {
        self.decoded_separators = allow;
        self
    }
}

/// One method of a route.
pub(crate) struct Endpoint {
    pub(crate) method: Method,
    pub(crate) handler: SharedHandler,
    pub(crate) options: RouteOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

pub(crate) struct Route {
    pub(crate) template: String,
    segments: Vec<Segment>,
    methods: Vec<Endpoint>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("template", &self.template)
            .field(
                "methods",
                &self.methods.iter().map(|e| &e.method).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The outcome of matching a request.
pub(crate) enum Match<'a> {
    Found {
        route: &'a Route,
        endpoint: &'a Endpoint,
        params: HashMap<String, String>,
    },
    /// The path is malformed or unsafe (see the module docs): 400.
    BadPath(&'static str),
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
        options: RouteOptions,
    ) -> Result<(), Error> {
        let endpoint = Endpoint {
            method,
            handler,
            options,
        };
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
            if route.methods.iter().any(|e| e.method == endpoint.method) {
                return Err(Error::DuplicateRoute {
                    method: endpoint.method.to_string(),
                    template: template.to_owned(),
                });
            }
            route.methods.push(endpoint);
            return Ok(());
        }
        self.routes.push(Route {
            template: template.to_owned(),
            segments,
            methods: vec![endpoint],
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
        if parts().any(is_dot_segment) {
            return Match::BadPath("dot segments (`.`, `..`) are not allowed in a path");
        }
        let count = parts().count();
        for route in &self.routes {
            if route.segments.len() != count {
                continue;
            }
            if !matches(&route.segments, parts()) {
                continue;
            }
            let found = route.methods.iter().find(|e| {
                e.method == *method || (*method == Method::HEAD && e.method == Method::GET)
            });
            return match found {
                Some(endpoint) => match params(&route.segments, parts(), &endpoint.options) {
                    Ok(params) => Match::Found {
                        route,
                        endpoint,
                        params,
                    },
                    Err(why) => Match::BadPath(why),
                },
                None => {
                    let mut allow: Vec<&str> =
                        route.methods.iter().map(|e| e.method.as_str()).collect();
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

fn is_dot_segment(part: &str) -> bool {
    let lower = part.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
    )
}

fn matches<'p>(segments: &[Segment], parts: impl Iterator<Item = &'p str>) -> bool {
    segments.iter().zip(parts).all(|(seg, part)| match seg {
        Segment::Literal(l) => l == part,
        Segment::Param(_) => true,
    })
}

fn params<'p>(
    segments: &[Segment],
    parts: impl Iterator<Item = &'p str>,
    options: &RouteOptions,
) -> Result<HashMap<String, String>, &'static str> {
    let mut params = HashMap::new();
    for (seg, part) in segments.iter().zip(parts) {
        if let Segment::Param(name) = seg {
            let value = percent_decode(part)?;
            if !options.decoded_separators && (value.contains('/') || value == "." || value == "..")
            {
                return Err("a path parameter may not decode to `/`, `.` or `..`");
            }
            params.insert(name.clone(), value);
        }
    }
    Ok(params)
}

/// Decodes `%XX` escapes: an invalid escape or a result that is not UTF-8
/// is an error.
pub(crate) fn percent_decode(s: &str) -> Result<String, &'static str> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or("an incomplete percent-escape in the path")?;
            let digit = |b: u8| (b as char).to_digit(16);
            match (digit(hex[0]), digit(hex[1])) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err("an invalid percent-escape in the path"),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a percent-encoded path parameter that is not UTF-8")
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
        let o = RouteOptions::default;
        r.add(Method::GET, "/orders/{id}", h(), o()).unwrap();
        r.add(Method::GET, "/orders/new", h(), o()).unwrap();
        r.add(Method::DELETE, "/orders/{id}", h(), o()).unwrap();
        assert!(matches!(
            r.add(Method::GET, "/orders/{id}", h(), o()),
            Err(Error::DuplicateRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "/orders/{other}", h(), o()),
            Err(Error::BadRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "orders", h(), o()),
            Err(Error::BadRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "/a/{x}{y}", h(), o()),
            Err(Error::BadRoute { .. })
        ));
        assert!(matches!(
            r.add(Method::GET, "/a/{1x}", h(), o()),
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
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%+A").is_err());
        assert!(percent_decode("%FF").is_err());
        assert_eq!(percent_decode("caf%C3%A9").unwrap(), "café");
        assert!(matches!(
            r.find(&Method::GET, "/orders/a%2Fb"),
            Match::BadPath(_)
        ));
        assert!(matches!(
            r.find(&Method::GET, "/orders/%2e%2E"),
            Match::BadPath(_)
        ));
        assert!(matches!(
            r.find(&Method::GET, "/x/../orders/1"),
            Match::BadPath(_)
        ));
        assert!(matches!(
            r.find(&Method::GET, "//orders//new/"),
            Match::Found { .. }
        ));
        let mut keys = Router::default();
        keys.add(Method::GET, "/keys/{k}", h(), o().decoded_separators(true))
            .unwrap();
        match keys.find(&Method::GET, "/keys/a%2Fb") {
            Match::Found { params, .. } => assert_eq!(params["k"], "a/b"),
            _ => panic!("opted in"),
        }
    }
}
