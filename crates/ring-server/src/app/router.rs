//! Method + path routing in the manner of Go 1.22's `ServeMux`.
//!
//! Patterns are `[METHOD ]/path`, where a segment is a literal, `{name}` (one non-empty
//! segment), or `{name...}` (the rest of the path, last only). A pattern ending in `/` matches
//! every path below it; `{$}` at the end matches only the path itself (`/{$}` is just `/`).
//! `GET` also matches `HEAD`. When several patterns match, the most specific wins: literal
//! segments beat `{name}`, which beats `{name...}`, compared left to right; a method beats none.
//! A path that matches only with other methods gets 405 with `Allow`; no match at all, 404.

use std::cmp::Ordering;

use ringd_core::{KnownTargets, Method, Words};

use crate::app::handler::{Handler, Params};

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// The pattern is not `[METHOD ]/path` with well-formed wildcards.
    #[error("invalid route pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same method and path were registered twice.
    #[error("route pattern {pattern:?} is registered twice")]
    Duplicate {
        /// The pattern as given.
        pattern: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param(Box<str>),
    Rest(Box<str>),
}

impl Segment {
    /// Specificity rank of one segment: higher is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 3,
            Segment::Param(_) => 2,
            Segment::Rest(_) => 1,
        }
    }
}

struct Route {
    pattern: String,
    method: Option<Box<str>>,
    /// The method is `GET` (which also matches `HEAD`): compared as a `Method`, not a string.
    get: bool,
    segments: Vec<Segment>,
    /// Matches every path below the pattern (it ended in `/`).
    prefix: bool,
    /// The one path the pattern matches, when it is all literal segments and not a prefix:
    /// then matching is comparing the strings (most routes are such, and most of them differ
    /// from the path in length).
    exact: Option<Box<str>>,
    /// When the pattern is literal segments followed by `{name...}` or a trailing `/` (as a
    /// mount of static files is): the paths it matches are those that start with this.
    lead: Option<Lead>,
    handler: Box<dyn Handler>,
}

/// The start every path a route of literal segments and then `{name...}` (or a trailing `/`)
/// matches has: `/`, each literal followed by `/`. Such a route matches exactly the paths
/// that start with it (each literal must be followed by `/`, and `{name...}` takes any rest,
/// even an empty one), capturing the rest of the path as `rest`'s wildcard.
struct Lead {
    text: Box<str>,
    /// `text`'s [`Words`]: all of it when it is up to [`Words::WHOLE`] bytes long.
    words: Words,
    /// The `{name...}` wildcard's name (`None` for a trailing `/`).
    rest: Option<Box<str>>,
}

impl Lead {
    /// `Some` for a pattern of literal segments then `{name...}`, or literal segments and a
    /// trailing `/`.
    fn of(segments: &[Segment], prefix: bool) -> Option<Lead> {
        let (literals, rest) = match segments.split_last() {
            Some((Segment::Rest(name), literals)) if !prefix => (literals, Some(name.clone())),
            _ if prefix => (segments, None),
            _ => return None,
        };
        let mut text = String::from("/");
        for segment in literals {
            let Segment::Literal(lit) = segment else {
                return None;
            };
            text.push_str(lit);
            text.push('/');
        }
        Some(Lead {
            words: Words::of(text.as_bytes()),
            text: text.into(),
            rest,
        })
    }

    /// [`Route::path_matches`] for the route this is the lead of.
    #[inline]
    fn matches<'p>(&'p self, path: &'p str, params: &mut Params<'p>) -> bool {
        let Some(start) = path.as_bytes().get(..self.text.len()) else {
            return false;
        };
        if Words::of(start) != self.words || (!self.words.are_whole() && start != self.text.as_bytes()) {
            return false;
        }
        params.clear();
        if let (Some(name), Some(rest)) = (&self.rest, path.get(self.text.len()..)) {
            params.push(name, rest);
        }
        true
    }
}

impl Route {
    fn specificity(&self, other: &Route) -> Ordering {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            match a.rank().cmp(&b.rank()) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        self.segments
            .len()
            .cmp(&other.segments.len())
            .then((!self.prefix).cmp(&!other.prefix))
            .then(self.method.is_some().cmp(&other.method.is_some()))
    }

    #[inline]
    fn method_matches(&self, method: Method<'_>) -> bool {
        if self.get {
            return matches!(method, Method::Get | Method::Head);
        }
        let method = method.as_str();
        match self.method.as_deref() {
            None => true,
            Some("GET") => method == "GET" || method == "HEAD",
            Some(m) => m == method,
        }
    }

    /// Whether the route matches `path`, capturing wildcards into `params` ([`Route::path_matches`],
    /// or a string comparison for an exact route, or [`Lead::matches`]).
    #[inline]
    fn matches<'p>(&'p self, path: &'p str, params: &mut Params<'p>) -> bool {
        match (&self.exact, &self.lead) {
            (Some(exact), _) if **exact == *path => {
                params.clear();
                true
            }
            (Some(_), _) => false,
            (None, Some(lead)) => lead.matches(path, params),
            (None, None) => self.path_matches(path, params),
        }
    }

    /// Matches `path` (normalised, starting with `/`), capturing wildcards into `params`.
    fn path_matches<'p>(&'p self, path: &'p str, params: &mut Params<'p>) -> bool {
        params.clear();
        let mut rest = path.strip_prefix('/').unwrap_or(path);
        // `None` once the path's last segment has been consumed.
        let mut remaining = Some(rest);
        for seg in &self.segments {
            let Some(r) = remaining else { return false };
            rest = r;
            remaining = match seg {
                Segment::Rest(name) => {
                    params.push(name, rest);
                    return true;
                }
                // A literal is compared in place: no search for the segment's end (routing runs
                // for every request, and most segments are literals).
                Segment::Literal(lit) => match rest.strip_prefix(&**lit) {
                    Some("") => None,
                    Some(tail) => match tail.strip_prefix('/') {
                        Some(after) => Some(after),
                        None => return false,
                    },
                    None => return false,
                },
                Segment::Param(name) => {
                    let (current, tail) = match rest.find('/') {
                        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                        None => (rest, None),
                    };
                    if current.is_empty() {
                        return false;
                    }
                    params.push(name, current);
                    tail
                }
            };
        }
        // An exact pattern needs the path to end here; a prefix pattern needs more (even "").
        remaining.is_some() == self.prefix
    }
}

/// The outcome of routing one request.
// `Found` carries its parameters inline (no allocation per request); the size is the point.
#[allow(clippy::large_enum_variant)]
pub enum RouteMatch<'r, 'p> {
    /// A handler, with the wildcards it captured.
    Found(&'r dyn Handler, Params<'p>),
    /// The path matches only with other methods: these (for `Allow`).
    MethodNotAllowed(String),
    /// No pattern matches the path.
    NotFound,
}

/// [`RouteMatch`] without the parameters (see [`Router::find_with`]).
pub(crate) enum Routed<'r> {
    Found(&'r dyn Handler),
    MethodNotAllowed(String),
    NotFound,
}

/// A set of routes. Built once per worker, before it accepts; read-only afterwards.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    /// The exact routes' paths and indices, most specific first; each path is copied beside its
    /// index, so that the search reads no route until one matches. An exact route that matches
    /// a path is more specific than every other route that matches it (its segments are all
    /// literal, and no pattern of another length can match the same path), so only exact
    /// routes of the same path can come before it: the first exact route that matches the path
    /// and the method is what the walk over every route would find.
    exact: Vec<ExactRoute>,
    /// The exact routes' paths, for the parser ([`Router::known_targets`]).
    known: KnownTargets,
}

/// An exact route's path as [`Router::find_with`] compares it: its [`Words`] first, which say
/// whether a path of up to [`Words::WHOLE`] bytes is the same, then (longer paths only) the
/// whole string.
struct ExactRoute {
    words: Words,
    path: Box<str>,
    /// The route's index in `Router::routes`.
    index: usize,
}

impl Router {
    /// An empty router: every request gets 404.
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds `handler` under `pattern` (see the module docs).
    pub fn route(&mut self, pattern: &str, handler: impl Handler) -> Result<&mut Router, RouterError> {
        let invalid = |reason| RouterError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let (method, path) = match pattern.split_once(' ') {
            Some((m, p)) => (Some(m.trim()), p.trim()),
            None => (None, pattern.trim()),
        };
        if let Some(m) = method {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return Err(invalid("the method must be a token such as GET"));
            }
        }
        let Some(body) = path.strip_prefix('/') else {
            return Err(invalid("the path must start with '/'"));
        };
        let mut raw: Vec<&str> = body.split('/').collect();
        let prefix = raw.last() == Some(&"");
        if prefix {
            raw.pop();
        }
        let mut segments = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let last = i + 1 == raw.len();
            let seg = if *s == "{$}" {
                if !last {
                    return Err(invalid("{$} must end the pattern"));
                }
                Segment::Literal("".into())
            } else if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let (name, rest) = match inner.strip_suffix("...") {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(invalid("a wildcard name must be letters, digits and '_'"));
                }
                if rest && (!last || prefix) {
                    return Err(invalid("{name...} must end the pattern"));
                }
                if rest {
                    Segment::Rest(name.into())
                } else {
                    Segment::Param(name.into())
                }
            } else if s.contains('{') || s.contains('}') {
                return Err(invalid("a wildcard must be a whole segment"));
            } else {
                Segment::Literal((*s).into())
            };
            segments.push(seg);
        }
        if segments.iter().filter(|s| !matches!(s, Segment::Literal(_))).count() > Params::MAX {
            return Err(invalid("too many wildcards (at most 8)"));
        }
        let literals: Option<Vec<&str>> = segments
            .iter()
            .map(|s| match s {
                Segment::Literal(lit) => Some(&**lit),
                _ => None,
            })
            .collect();
        let exact = literals
            .filter(|_| !prefix)
            .map(|l| format!("/{}", l.join("/")).into_boxed_str());
        let route = Route {
            pattern: pattern.to_owned(),
            method: method.map(Into::into),
            get: method == Some("GET"),
            lead: Lead::of(&segments, prefix),
            segments,
            prefix,
            exact,
            handler: Box::new(handler),
        };
        if self
            .routes
            .iter()
            .any(|r| r.method == route.method && r.segments == route.segments && r.prefix == route.prefix)
        {
            return Err(RouterError::Duplicate {
                pattern: pattern.to_owned(),
            });
        }
        // Most specific first, so that the first match wins.
        let at = self
            .routes
            .iter()
            .position(|r| route.specificity(r) == Ordering::Greater)
            .unwrap_or(self.routes.len());
        self.routes.insert(at, route);
        self.exact = (self.routes.iter().enumerate())
            .filter_map(|(index, r)| {
                let path = r.exact.clone()?;
                Some(ExactRoute {
                    words: Words::of(path.as_bytes()),
                    path,
                    index,
                })
            })
            .collect();
        if let Some(exact) = &self.routes[at].exact {
            self.known.insert(exact);
        }
        Ok(self)
    }

    /// The exact routes' paths: a request-target that is one of them is the path of a request
    /// the router answers without a wildcard, which the parser can take as this string
    /// (`ringd_core::parse_request_known`).
    pub(crate) fn known_targets(&self) -> &KnownTargets {
        &self.known
    }

    /// Finds the handler for `method` and `path` (a normalised path starting with `/`).
    pub fn find<'r, 'p>(&'r self, method: Method<'_>, path: &'p str) -> RouteMatch<'r, 'p>
    where
        'r: 'p,
    {
        let mut params = Params::default();
        match self.find_with(method, path, &mut params) {
            Routed::Found(handler) => RouteMatch::Found(handler, params),
            Routed::MethodNotAllowed(allow) => RouteMatch::MethodNotAllowed(allow),
            Routed::NotFound => RouteMatch::NotFound,
        }
    }

    /// [`find`](Self::find) with the wildcards captured into `params`, which the caller keeps:
    /// on the request path, returning them inside the match would copy them twice.
    /// Inlined: the exact routes are searched in the caller (the common case), the other
    /// routes walked out of line ([`Router::walk`]).
    #[inline(always)]
    pub(crate) fn find_with<'r, 'p>(&'r self, method: Method<'_>, path: &'p str, params: &mut Params<'p>) -> Routed<'r>
    where
        'r: 'p,
    {
        // Exact routes first (most differ from the path in length alone); a path they match
        // only with other methods is walked as any other, for a wildcard route or the 405.
        let words = Words::of(path.as_bytes());
        for exact in &self.exact {
            if exact.words == words && (words.are_whole() || *exact.path == *path) {
                let route = &self.routes[exact.index];
                if route.method_matches(method) {
                    params.clear();
                    return Routed::Found(route.handler.as_ref());
                }
            }
        }
        self.walk(method, path, params)
    }

    /// [`Router::find_with`] over every route, in order.
    #[inline(never)]
    fn walk<'r, 'p>(&'r self, method: Method<'_>, path: &'p str, params: &mut Params<'p>) -> Routed<'r>
    where
        'r: 'p,
    {
        let mut any_path_match = false;
        for route in &self.routes {
            if route.matches(path, params) {
                if route.method_matches(method) {
                    return Routed::Found(route.handler.as_ref());
                }
                any_path_match = true;
            }
        }
        if any_path_match {
            Routed::MethodNotAllowed(self.allowed(path).join(", "))
        } else {
            Routed::NotFound
        }
    }

    /// The methods `path` can be requested with (GET implies HEAD), in a stable order.
    pub fn allowed(&self, path: &str) -> Vec<&str> {
        let mut params = Params::default();
        methods_of(self.routes.iter().filter(|r| r.path_matches(path, &mut params)))
    }

    /// Every method some route accepts (for `OPTIONS *`).
    pub fn all_methods(&self) -> Vec<&str> {
        methods_of(self.routes.iter())
    }

    /// The patterns, most specific first (for logs and `ringd check`).
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.pattern.as_str())
    }
}

/// The methods these routes accept, GET implying HEAD, in the usual order; a route without a
/// method accepts the common ones.
fn methods_of<'r>(routes: impl Iterator<Item = &'r Route>) -> Vec<&'r str> {
    const ANY: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
    let mut methods: Vec<&str> = Vec::new();
    for route in routes {
        match route.method.as_deref() {
            None => methods.extend(ANY),
            Some(m) => {
                methods.push(m);
                if m == "GET" {
                    methods.push("HEAD");
                }
            }
        }
    }
    sort_methods(&mut methods);
    methods
}

fn sort_methods(methods: &mut Vec<&str>) {
    const ORDER: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    methods.sort_by_key(|m| (ORDER.iter().position(|o| o == m).unwrap_or(ORDER.len()), *m));
    methods.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::handler::Response;

    fn tagged(tag: &'static str) -> impl Handler {
        move |_: &crate::app::handler::Request<'_>| Response::text(tag)
    }

    /// Routes a request and names the handler's tag by comparing handler addresses.
    fn which(router: &Router, method: &str, path: &str) -> String {
        match router.find(Method::parse(method), path) {
            RouteMatch::Found(h, params) => {
                let idx = router
                    .routes
                    .iter()
                    .position(|r| std::ptr::addr_eq(r.handler.as_ref(), h))
                    .unwrap();
                let mut s = router.routes[idx].pattern.clone();
                for name in ["id", "path", "rest", "name"] {
                    if let Some(v) = params.get(name) {
                        s.push_str(&format!(" {name}={v}"));
                    }
                }
                s
            }
            RouteMatch::MethodNotAllowed(allow) => format!("405 {allow}"),
            RouteMatch::NotFound => "404".to_owned(),
        }
    }

    /// Paths of the same length up to 16 bytes are equal iff their words are; longer ones
    /// that differ only in the middle have the same words (and are compared whole).
    #[test]
    fn path_words_tell_paths_apart() {
        let paths = [
            "",
            "/",
            "/a",
            "/b",
            "/json",
            "/jsoN",
            "/plaintext",
            "/plaintexu",
            "/xplaintext",
            "/1234567",
            "/1234568",
            "/123456789abcdef",
            "/123456789abcdeg",
            "/023456789abcdef",
            "/12345678x9abcdef",
        ];
        for a in paths {
            for b in paths {
                let same = Words::of(a.as_bytes()) == Words::of(b.as_bytes());
                if a.len() <= Words::WHOLE && b.len() <= Words::WHOLE {
                    assert_eq!(same, a == b, "{a:?} {b:?}");
                } else if a == b {
                    assert!(same, "{a:?}");
                }
            }
        }
        assert!(Words::of(b"/abcdefgh_1_ijklmnop") == Words::of(b"/abcdefgh_2_ijklmnop"));
        let r = router(&["/abcdefgh_1_ijklmnop", "/abcdefgh_2_ijklmnop"]);
        assert_eq!(which(&r, "GET", "/abcdefgh_2_ijklmnop"), "/abcdefgh_2_ijklmnop");
        assert_eq!(which(&r, "GET", "/abcdefgh_1_ijklmnop"), "/abcdefgh_1_ijklmnop");
    }

    fn router(patterns: &[&'static str]) -> Router {
        let mut r = Router::new();
        for p in patterns {
            r.route(p, tagged(p)).unwrap();
        }
        r
    }

    /// An exact route's string comparison says what the segment walk says, and leaves no
    /// stale capture behind (a wildcard route tried before it may have captured some).
    #[test]
    fn exact_routes_match_as_their_segments_do() {
        let r = router(&[
            "/{$}",
            "/a",
            "/a/b",
            "/a/{$}",
            "GET /a/b/c",
            "/a//b",
            "/x/{id}/y",
            "/x/{id}/z",
            "/static/",
            "/files/{path...}",
        ]);
        let paths = [
            "/",
            "/a",
            "/a/",
            "/a/b",
            "/a/b/",
            "/a/b/c",
            "/a//b",
            "/ab",
            "/a/bc",
            "/x/1/y",
            "/x/1/z",
            "/x/1",
            "/static/",
            "/static/s",
            "/files/f/g",
            "/b",
        ];
        matches_as_segments(&r, &paths, &["id"]);
        let exact = r.routes.iter().filter(|route| route.exact.is_some()).count();
        assert_eq!(exact, 6, "every all-literal, non-prefix pattern is exact");
        assert_eq!(which(&r, "GET", "/x/7/z"), "/x/{id}/z id=7");
        assert_eq!(which(&r, "GET", "/a/b"), "/a/b");
        assert_eq!(which(&r, "POST", "/a/b/c"), "405 GET, HEAD");
    }

    /// Every route of `r` matches each of `paths` as its segment walk does, and captures the
    /// same `names` (a stale capture is never left behind).
    fn matches_as_segments(r: &Router, paths: &[&str], names: &[&str]) {
        for route in &r.routes {
            for path in paths {
                let mut walked = Params::default();
                let mut compared = Params::default();
                compared.push("id", "stale");
                let by_segments = route.path_matches(path, &mut walked);
                assert_eq!(
                    route.matches(path, &mut compared),
                    by_segments,
                    "{} on {path:?}",
                    route.pattern
                );
                if by_segments {
                    for name in names {
                        assert_eq!(compared.get(name), walked.get(name), "{} on {path:?}", route.pattern);
                    }
                }
            }
        }
    }

    /// A lead's comparison says what the segment walk says (short and long leads, `{$}`, an
    /// empty literal), captures the same rest, and leaves no stale capture behind.
    #[test]
    fn leads_match_as_their_segments_do() {
        let r = router(&[
            "/",
            "/{all...}",
            "/static/",
            "/files/{path...}",
            "/a/b/c/d/e/f/g/{p...}",
            "/a/b/c/d/e/f/h/",
            "/a//{p...}",
            "/s/{$}/",
            "/x/{id}/{p...}",
            "/x/{id}/",
        ]);
        let paths = [
            "/",
            "/a",
            "/static",
            "/static/",
            "/static/s",
            "/static/s/t.txt",
            "/staticx/s",
            "/Static/s",
            "/files",
            "/files/",
            "/files/f/g",
            "/a/b/c/d/e/f/g",
            "/a/b/c/d/e/f/g/",
            "/a/b/c/d/e/f/g/x/y",
            "/a/b/c/d/e/f/h/x",
            "/a/b/c/d/e/f/x/x",
            "/b/b/c/d/e/f/g/x",
            "/a//b",
            "/a/b",
            "/s/",
            "/s//x",
            "/x/1/y",
            "/x/1/",
            "/é/x",
        ];
        matches_as_segments(&r, &paths, &["id", "all", "path", "p"]);
        let leads = r.routes.iter().filter(|route| route.lead.is_some()).count();
        assert_eq!(
            leads, 8,
            "every pattern of literals and then a rest or a trailing slash"
        );
        assert_eq!(which(&r, "GET", "/static/s/t.txt"), "/static/");
        assert_eq!(which(&r, "GET", "/files/f/g"), "/files/{path...} path=f/g");
        assert_eq!(which(&r, "GET", "/files/"), "/files/{path...} path=");
    }

    /// The search over exact routes finds what the walk over every route in order finds, for
    /// each method, including paths that several exact routes share by method.
    #[test]
    fn the_exact_search_finds_what_the_walk_finds() {
        let r = router(&[
            "/{$}",
            "GET /{$}",
            "/a",
            "GET /a",
            "POST /a",
            "/{id}",
            "GET /{id}/b",
            "/a/b",
            "PUT /a/b",
            "/a/",
            "/bb",
            "GET /c",
            "/c/{rest...}",
            "DELETE /c",
        ]);
        let walk = |method: &str, path: &str| -> String {
            let mut params = Params::default();
            let mut allowed = false;
            for route in &r.routes {
                if route.path_matches(path, &mut params) {
                    if route.method_matches(Method::parse(method)) {
                        return route.pattern.clone();
                    }
                    allowed = true;
                }
            }
            if allowed {
                format!("405 {}", r.allowed(path).join(", "))
            } else {
                "404".to_owned()
            }
        };
        let paths = [
            "/", "/a", "/a/", "/a/b", "/b", "/bb", "/c", "/c/", "/c/d", "/x/b", "/zz",
        ];
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] {
            for path in paths {
                let found = which(&r, method, path);
                let found = found
                    .split(' ')
                    .take_while(|w| !w.contains('='))
                    .collect::<Vec<_>>()
                    .join(" ");
                assert_eq!(found, walk(method, path), "{method} {path}");
            }
        }
    }

    #[test]
    fn most_specific_wins() {
        let r = router(&[
            "/",
            "GET /users/{id}",
            "GET /users/new",
            "/static/{path...}",
            "GET /static/img/{name}",
        ]);
        assert_eq!(which(&r, "GET", "/users/new"), "GET /users/new");
        assert_eq!(which(&r, "GET", "/users/42"), "GET /users/{id} id=42");
        assert_eq!(which(&r, "GET", "/static/a/b.css"), "/static/{path...} path=a/b.css");
        assert_eq!(
            which(&r, "GET", "/static/img/x.png"),
            "GET /static/img/{name} name=x.png"
        );
        assert_eq!(which(&r, "GET", "/anything/else"), "/");
        assert_eq!(which(&r, "GET", "/"), "/");
    }

    #[test]
    fn method_mismatch_is_405_with_allow() {
        let r = router(&["GET /plaintext", "POST /echo", "PUT /echo"]);
        assert_eq!(which(&r, "POST", "/plaintext"), "405 GET, HEAD");
        assert_eq!(which(&r, "GET", "/echo"), "405 POST, PUT");
        assert_eq!(which(&r, "HEAD", "/plaintext"), "GET /plaintext");
        assert_eq!(which(&r, "GET", "/nope"), "404");
    }

    #[test]
    fn exact_and_prefix_and_dollar() {
        let r = router(&["GET /{$}", "GET /docs/", "GET /about"]);
        assert_eq!(which(&r, "GET", "/"), "GET /{$}");
        assert_eq!(which(&r, "GET", "/x"), "404");
        assert_eq!(which(&r, "GET", "/docs/"), "GET /docs/");
        assert_eq!(which(&r, "GET", "/docs/a/b"), "GET /docs/");
        assert_eq!(which(&r, "GET", "/docs"), "404");
        assert_eq!(which(&r, "GET", "/about/"), "404");
    }

    #[test]
    fn params_need_a_non_empty_segment() {
        let r = router(&["GET /users/{id}"]);
        assert_eq!(which(&r, "GET", "/users/"), "404");
        assert_eq!(which(&r, "GET", "/users/7/extra"), "404");
    }

    #[test]
    fn rest_wildcard_may_be_empty_but_needs_the_slash() {
        let r = router(&["GET /files/{path...}"]);
        assert_eq!(which(&r, "GET", "/files/"), "GET /files/{path...} path=");
        assert_eq!(which(&r, "GET", "/files"), "404");
    }

    #[test]
    fn method_specific_beats_any_method() {
        let r = router(&["/thing", "POST /thing"]);
        assert_eq!(which(&r, "POST", "/thing"), "POST /thing");
        assert_eq!(which(&r, "DELETE", "/thing"), "/thing");
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in [
            "nope",
            "GET nope",
            "/a/{b",
            "/{x...}/y",
            "/a{b}",
            "/{}",
            "G@T /x",
            "/{a...}/",
        ] {
            assert!(
                matches!(
                    Router::new().route(p, tagged("x")),
                    Err(RouterError::InvalidPattern { .. })
                ),
                "{p}"
            );
        }
        let mut r = Router::new();
        r.route("GET /a", tagged("1")).unwrap();
        assert!(matches!(
            r.route("GET /a", tagged("2")),
            Err(RouterError::Duplicate { .. })
        ));
    }

    #[test]
    fn allowed_and_all_methods() {
        let r = router(&["GET /a", "DELETE /a", "POST /b"]);
        assert_eq!(r.allowed("/a"), vec!["GET", "HEAD", "DELETE"]);
        assert_eq!(r.all_methods(), vec!["GET", "HEAD", "POST", "DELETE"]);
    }
}
