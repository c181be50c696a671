//! The built-in site `ringd serve` shows with no `--root`: a page that says what ringd is, and the
//! two endpoints people benchmark.

use ring_server::IgnoresBody;
use ring_server::{Body, Bytes, Request, Response, Router, RouterError, StaticFiles};

/// The page at `/`.
const INDEX_HTML: &str = include_str!("default_page.html");
/// `/plaintext`'s body.
pub const PLAINTEXT: &str = "Hello, World!";
/// `/json`'s body.
pub const JSON: &str = r#"{"message":"Hello, World!"}"#;

/// What `ringd serve` serves.
#[derive(Debug, Clone)]
pub enum Site {
    /// The built-in page, `/plaintext`, `/json` and `/echo`.
    Builtin,
    /// The files below a directory.
    Files(StaticFiles),
}

impl Site {
    /// The files below `root`, or the built-in site.
    pub fn new(root: Option<&std::path::Path>) -> anyhow::Result<Site> {
        let site = match root {
            Some(root) => Site::Files(StaticFiles::new(root)?),
            None => Site::Builtin,
        };
        // Build the routes once here, so that a bad route is an error now, not a worker's.
        site.router()?;
        Ok(site)
    }

    /// What is served, for the log.
    pub fn describe(&self) -> String {
        match self {
            Site::Builtin => "the built-in site".to_owned(),
            Site::Files(files) => format!("files from {}", files.root().display()),
        }
    }

    /// Builds each worker's router (on the worker's thread).
    pub fn router_factory(&self) -> impl Fn(usize) -> Router + Send + Sync + 'static {
        let site = self.clone();
        move |_| site.router().expect("routes were checked when the site was made")
    }

    /// One worker's router for this site.
    pub fn router(&self) -> Result<Router, RouterError> {
        let mut r = Router::new();
        match self {
            Site::Builtin => {
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
                    .route("POST /echo", echo)?
                    .route("PUT /echo", echo)?;
            }
            Site::Files(files) => {
                r.route("GET /{path...}", files.clone())?;
            }
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
