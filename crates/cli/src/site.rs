//! The built-in site `ringd serve` shows with no `--root`: a page that says what ringd is, and the
//! endpoints people benchmark (`/json/20k` for compressing a handler's answer).

use ring_server::IgnoresBody;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ring_server::{Body, Bytes, Request, Response, Router, RouterError, StaticFiles, StaticOptions};

/// The page at `/`.
const INDEX_HTML: &str = include_str!("default_page.html");
/// `/plaintext`'s body.
pub const PLAINTEXT: &str = "Hello, World!";
/// `/json`'s body.
pub const JSON: &str = r#"{"message":"Hello, World!"}"#;
/// The length of `/json/20k`'s body.
pub const RECORDS_LEN: usize = 20 * 1024;

/// `/json/20k`'s body: 20 KiB of JSON records (an array of users with varied names, numbers
/// and tags), made once: a handler's answer as large as an API's page of results, to measure
/// compressing what a handler answers (which, unlike a static file, is compressed every time).
fn records() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(|| {
        const NAMES: [&str; 8] = ["ada", "grace", "linus", "ken", "barbara", "edsger", "donald", "frances"];
        const TAGS: [&str; 6] = ["admin", "beta", "ops", "billing", "eu", "us"];
        let mut x: u64 = 0x2545_f491;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut body = String::from("[");
        for id in 0.. {
            let (r, s) = (next(), next());
            let name = NAMES[(r % 8) as usize];
            let record = format!(
                r#"{{"id":{id},"name":"{name}{n}","email":"{name}.{n}@example.com","active":{active},"score":{score}.{frac:02},"visits":{visits},"tags":["{t1}","{t2}"]}}"#,
                n = r % 10_000,
                active = s % 2 == 0,
                score = s % 100,
                frac = (s >> 8) % 100,
                visits = (r >> 16) % 100_000,
                t1 = TAGS[(s >> 16) as usize % 6],
                t2 = TAGS[(s >> 24) as usize % 6],
            );
            if body.len() + record.len() + 2 > RECORDS_LEN {
                break;
            }
            if id > 0 {
                body.push(',');
            }
            body.push_str(&record);
        }
        // Whitespace up to the exact length (JSON allows it before the closing bracket).
        while body.len() < RECORDS_LEN - 1 {
            body.push(' ');
        }
        body.push(']');
        Bytes::from(body)
    })
    .clone()
}

/// What `ringd serve` serves: the built-in site (without a root for `/`), and directories
/// mounted at path prefixes.
#[derive(Debug, Clone)]
pub struct Site {
    builtin: bool,
    /// (prefix ending in `/`, files), in configuration order.
    mounts: Vec<(String, StaticFiles)>,
}

impl Site {
    /// `root` serves `/` (and replaces the built-in site); each `(prefix, dir)` serves the files
    /// of `dir` below `prefix`.
    pub fn new(root: Option<&Path>, statics: &[(String, PathBuf)], options: &StaticOptions) -> anyhow::Result<Site> {
        let mut mounts = Vec::new();
        if let Some(root) = root {
            mounts.push(("/".to_owned(), StaticFiles::new(root)?.with_options(options.clone())));
        }
        for (prefix, dir) in statics {
            if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.contains('{') || prefix.contains('}') {
                anyhow::bail!("static prefix {prefix:?}: must start and end with '/' (e.g. \"/assets/\")");
            }
            mounts.push((prefix.clone(), StaticFiles::new(dir)?.with_options(options.clone())));
        }
        let site = Site {
            builtin: root.is_none(),
            mounts,
        };
        // Build the routes once here, so that a bad route is an error now, not a worker's.
        site.router()?;
        Ok(site)
    }

    /// What is served, for the log.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.builtin {
            parts.push("the built-in site".to_owned());
        }
        for (prefix, files) in &self.mounts {
            parts.push(format!("{prefix} from {}", files.root().display()));
        }
        parts.join(", ")
    }

    /// Builds each worker's router (on the worker's thread).
    pub fn router_factory(&self) -> impl Fn(usize) -> Router + Send + Sync + 'static {
        let site = self.clone();
        move |_| site.router().expect("routes were checked when the site was made")
    }

    /// One worker's router for this site.
    pub fn router(&self) -> Result<Router, RouterError> {
        let mut r = Router::new();
        if self.builtin {
            r.route("GET /{$}", IgnoresBody(|_: &Request<'_>| Response::html(INDEX_HTML)))?
                .route(
                    "GET /plaintext",
                    IgnoresBody(|_: &Request<'_>| Response::text(PLAINTEXT)),
                )?
                .route(
                    "GET /json",
                    IgnoresBody(|_: &Request<'_>| {
                        Response::new(200)
                            .content_type_static("application/json")
                            .body(Body::Full(Bytes::from_static(JSON.as_bytes())))
                    }),
                )?
                .route(
                    "GET /json/20k",
                    IgnoresBody(|_: &Request<'_>| {
                        Response::new(200)
                            .content_type_static("application/json")
                            .body(Body::Full(records()))
                    }),
                )?
                .route("POST /echo", echo)?
                .route("PUT /echo", echo)?;
        }
        for (prefix, files) in &self.mounts {
            r.route(&format!("GET {prefix}{{path...}}"), files.clone())?;
        }
        Ok(r)
    }
}

/// Sends the request body back, with the request's `Content-Type`.
fn echo(req: &Request<'_>) -> Response {
    let content_type = req.header("content-type").unwrap_or(b"application/octet-stream");
    Response::new(200)
        .content_type(Bytes::copy_from_slice(content_type))
        .body(Body::Full(Bytes::copy_from_slice(req.body())))
}
