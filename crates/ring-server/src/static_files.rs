//! A safe static file handler: `GET`/`HEAD` of the files below a root directory.
//!
//! The request path arrives already percent-decoded and normalised by `ringd-core` (no `..`
//! can climb above `/`). Files are opened and read through io_uring. After opening, the path the
//! kernel actually opened (`/proc/self/fd/N`) must still lie inside the root, so a symlink that
//! leads outside it answers 404 instead of the file. Conditional requests, ranges, caching and
//! precompressed files are the static-files issue's work.

use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use tokio_uring::fs::File;

use ringd_core::conditional::{
    accepts_encoding, evaluate, http_date, range, Conditions, Precondition, RangeAnswer, Validators,
};

use crate::handler::{Body, BodyStream, ChunkFuture, Handler, Reply, Request, Response};

/// Files up to this size are read whole and sent with their head in one write.
const WHOLE_FILE_MAX: u64 = 64 * 1024;
/// Larger files are sent in pieces of this size.
const PIECE: usize = 256 * 1024;

/// Serves the files below a root directory.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
    index: String,
    options: std::sync::Arc<StaticOptions>,
}

/// How files are served; shared by every worker's copy of the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticOptions {
    /// Serve `file.br` / `file.gz` instead of `file` to clients that accept them (nginx
    /// `gzip_static`), with `Vary: Accept-Encoding`.
    pub precompressed: bool,
    /// List a directory that has no index page (escaped names), instead of 403.
    pub listing: bool,
    /// The type of files whose extension says nothing.
    pub default_type: String,
    /// `Cache-Control` values: the first rule whose pattern matches wins. A pattern `*.ext`
    /// matches the extension, one starting with `/` a path prefix.
    pub cache_control: Vec<(String, String)>,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            precompressed: false,
            listing: false,
            default_type: "application/octet-stream".to_owned(),
            cache_control: Vec::new(),
        }
    }
}

/// Why a root directory cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve files from {path}: {reason}; point --root (or root = in the config file) at an existing, readable directory")]
pub struct RootError {
    /// The root as given.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl StaticFiles {
    /// Serves `root`, which must be an existing, readable directory.
    pub fn new(root: impl AsRef<Path>) -> Result<StaticFiles, RootError> {
        let path = root.as_ref().to_path_buf();
        let err = |reason: String| RootError {
            path: path.clone(),
            reason,
        };
        let root = std::fs::canonicalize(&path).map_err(|e| err(e.to_string()))?;
        let meta = std::fs::metadata(&root).map_err(|e| err(e.to_string()))?;
        if !meta.is_dir() {
            return Err(err("not a directory".to_owned()));
        }
        std::fs::read_dir(&root).map_err(|e| err(format!("not readable: {e}")))?;
        Ok(StaticFiles {
            root,
            index: "index.html".to_owned(),
            options: Default::default(),
        })
    }

    /// Serves with these options.
    pub fn with_options(mut self, options: StaticOptions) -> StaticFiles {
        self.options = std::sync::Arc::new(options);
        self
    }

    /// The `Cache-Control` value for a request path, if a rule matches.
    fn cache_control(&self, path: &str) -> Option<&str> {
        self.options.cache_control.iter().find_map(|(pattern, value)| {
            let hit = match pattern.strip_prefix("*.") {
                Some(ext) => path.rsplit_once('.').is_some_and(|(_, e)| e.eq_ignore_ascii_case(ext)),
                None => path.starts_with(pattern.as_str()),
            };
            hit.then_some(value.as_str())
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn serve(&self, req: &Request<'_>) -> Response {
        // Mounted as `/{path...}` (or below a prefix): the rest of the path is the file.
        let rel = req.param("path").unwrap_or_else(|| req.path().trim_start_matches('/'));
        let Some(mut path) = self.join(rel) else {
            return Response::error(404);
        };
        let is_head = req.method() == ringd_core::Method::Head;
        let mut file = match self.open_inside(&path).await {
            Ok(f) => f,
            Err(status) => return Response::error(status),
        };
        let mut stat = match file.statx().await {
            Ok(s) => s,
            Err(_) => return Response::error(500),
        };
        if is_dir(&stat) {
            if !req.path().ends_with('/') {
                let mut location = format!("{}/", percent_encode_path(req.path()));
                if let Some(q) = req.query() {
                    location.push('?');
                    location.push_str(q);
                }
                return Response::error(301).header("Location", location);
            }
            path.push(&self.index);
            file = match self.open_inside(&path).await {
                Ok(f) => f,
                // A directory without an index is not listed (nginx answers 403 the same way).
                Err(404) if self.options.listing => return self.listing(&path, req.path()),
                Err(404) => return Response::error(403),
                Err(status) => return Response::error(status),
            };
            stat = match file.statx().await {
                Ok(s) => s,
                Err(_) => return Response::error(500),
            };
        }
        if !is_regular(&stat) {
            return Response::error(404);
        }
        let mut encoding = None;
        let type_path = path.clone();
        if self.options.precompressed {
            for (coding, ext) in [("br", "br"), ("gzip", "gz")] {
                if !accepts_encoding(req.header("accept-encoding"), coding) {
                    continue;
                }
                let mut sibling = path.clone().into_os_string();
                sibling.push(".");
                sibling.push(ext);
                if let Ok(f) = self.open_inside(Path::new(&sibling)).await {
                    if let Ok(st) = f.statx().await {
                        if is_regular(&st) {
                            (file, stat, encoding) = (f, st, Some(coding));
                            break;
                        }
                    }
                }
            }
        }
        let size = stat.stx_size;
        let mtime_secs = u64::try_from(stat.stx_mtime.tv_sec).unwrap_or(0);
        // Strong: a new inode, size or nanosecond mtime is a new tag.
        let etag = format!(
            "\"{:x}-{:x}-{:x}.{:x}\"",
            stat.stx_ino, size, mtime_secs, stat.stx_mtime.tv_nsec
        );
        let validators = Validators {
            etag: &etag,
            last_modified: mtime_secs,
        };
        let cache_control = self.cache_control(req.path());
        let with_validators = |status: u16| {
            let mut r = Response::new(status)
                .header("ETag", etag.clone())
                .header("Last-Modified", http_date(mtime_secs))
                .header("Accept-Ranges", "bytes");
            if self.options.precompressed {
                r = r.header("Vary", "Accept-Encoding");
            }
            if let Some(coding) = encoding {
                r = r.header("Content-Encoding", coding);
            }
            if let Some(value) = cache_control {
                r = r.header("Cache-Control", value.to_owned());
            }
            r
        };
        let conditions = Conditions {
            if_match: req.header("if-match"),
            if_none_match: req.header("if-none-match"),
            if_modified_since: req.header("if-modified-since"),
            if_unmodified_since: req.header("if-unmodified-since"),
        };
        // Only GET and HEAD are routed here.
        match evaluate(&conditions, &validators, true) {
            Precondition::NotModified => return with_validators(304),
            Precondition::Failed => return Response::error(412).header("ETag", etag.clone()),
            Precondition::Proceed => {}
        }
        // Ranges are defined for GET only (RFC 9110 §14.2): HEAD describes the whole file.
        let asked = if is_head { None } else { req.header("range") };
        let (response, start, len) = match range(asked, req.header("if-range"), &validators, size) {
            RangeAnswer::Full => (with_validators(200), 0, size),
            RangeAnswer::Partial { start, end } => (
                with_validators(206).header("Content-Range", format!("bytes {start}-{end}/{size}")),
                start,
                end - start + 1,
            ),
            RangeAnswer::Unsatisfiable => {
                return Response::error(416).header("Content-Range", format!("bytes */{size}"));
            }
        };
        let response = response.content_type(self.content_type(&type_path));
        if !is_head && len <= WHOLE_FILE_MAX {
            return match read_range(&file, start, len).await {
                Ok(bytes) => response.body(Body::Full(bytes)),
                Err(_) => Response::error(500),
            };
        }
        // For HEAD the stream is never polled: only its length is used.
        response.body(Body::Stream(Box::new(FileStream {
            file,
            pos: start,
            end: start + len,
        })))
    }

    /// The path below the root for a decoded, normalised relative path.
    fn join(&self, rel: &str) -> Option<PathBuf> {
        let rel = Path::new(rel);
        // Defence in depth: the parser already removed these.
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        Some(self.root.join(rel))
    }

    /// Opens `path` and checks that what was opened lies inside the root.
    async fn open_inside(&self, path: &Path) -> Result<File, u16> {
        let file = File::open(path).await.map_err(|e| open_status(&e))?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(|_| 500u16)?;
        if !real.starts_with(&self.root) {
            tracing::debug!(path = %path.display(), target = %real.display(), "refused a file outside the root");
            return Err(404);
        }
        Ok(file)
    }
}

impl Handler for StaticFiles {
    fn call<'a>(&'a self, req: &'a Request<'a>) -> Reply<'a> {
        Reply::Pending(Box::pin(self.serve(req)))
    }

    fn reads_body(&self) -> bool {
        false
    }
}

/// Re-encodes a decoded path for a `Location` header: every byte outside RFC 3986 `pchar` and `/`
/// becomes `%XX`, so a directory named `a b` or `x?y` redirects correctly.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn open_status(e: &io::Error) -> u16 {
    match e.kind() {
        io::ErrorKind::NotFound => 404,
        io::ErrorKind::PermissionDenied => 403,
        _ if e.raw_os_error() == Some(libc::ENOTDIR) || e.raw_os_error() == Some(libc::ENAMETOOLONG) => 404,
        _ => 500,
    }
}

fn is_dir(stat: &libc::statx) -> bool {
    u32::from(stat.stx_mode) & libc::S_IFMT == libc::S_IFDIR
}

fn is_regular(stat: &libc::statx) -> bool {
    u32::from(stat.stx_mode) & libc::S_IFMT == libc::S_IFREG
}

impl StaticFiles {
    fn content_type(&self, path: &Path) -> String {
        match mime_guess::from_path(path).first_raw() {
            Some(_) => content_type(path),
            None => self.options.default_type.clone(),
        }
    }

    /// An HTML list of a directory's entries (names escaped), for a directory without an index.
    fn listing(&self, index_path: &Path, url_path: &str) -> Response {
        let dir = index_path.parent().unwrap_or(index_path);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Response::error(403);
        };
        let mut names: Vec<(String, bool)> = entries
            .flatten()
            .filter_map(|e| {
                let is_dir = e.file_type().ok()?.is_dir();
                Some((e.file_name().to_str()?.to_owned(), is_dir))
            })
            .collect();
        names.sort();
        let title = html_escape(url_path);
        let mut page = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n"
        );
        for (name, is_dir) in names {
            let slash = if is_dir { "/" } else { "" };
            page.push_str(&format!(
                "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
                html_escape(&percent_encode_path(&name).replace('/', "%2F")),
                html_escape(&name)
            ));
        }
        page.push_str("</ul></body></html>\n");
        Response::new(200)
            .content_type_static("text/html; charset=utf-8")
            .body(Body::Full(Bytes::from(page)))
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The `Content-Type` for a file name; text types say `charset=utf-8`.
pub fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    if mime.starts_with("text/") || mime == "application/javascript" || mime == "image/svg+xml" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

/// Reads `len` bytes from `start`.
async fn read_range(file: &File, start: u64, len: u64) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len as usize);
    while (buf.len() as u64) < len {
        let filled = buf.len();
        let (res, slice) = file
            .read_at(
                tokio_uring::buf::BoundedBuf::slice(buf, filled..),
                start + filled as u64,
            )
            .await;
        buf = slice.into_inner();
        if res? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
    }
    Ok(Bytes::from(buf))
}

/// Bytes `pos..end` of a file, sent in pieces, with their length known up front.
struct FileStream {
    file: File,
    pos: u64,
    end: u64,
}

impl BodyStream for FileStream {
    fn length(&self) -> Option<u64> {
        Some(self.end - self.pos)
    }

    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        Box::pin(async move {
            if self.pos >= self.end {
                return Ok(None);
            }
            let want = (self.end - self.pos).min(PIECE as u64) as usize;
            let (res, buf) = self.file.read_at(Vec::with_capacity(want), self.pos).await;
            let n = res?;
            if n == 0 {
                // The file shrank: the connection closes, since the length is already sent.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being sent",
                ));
            }
            self.pos += n as u64;
            Ok(Some(Bytes::from(buf)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(Path::new("a.html")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("a.css")), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(content_type(Path::new("a.json")), "application/json");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }

    #[test]
    fn join_refuses_anything_but_plain_components() {
        let s = StaticFiles {
            root: PathBuf::from("/srv"),
            index: "index.html".into(),
            options: Default::default(),
        };
        assert_eq!(s.join("a/b.txt"), Some(PathBuf::from("/srv/a/b.txt")));
        assert_eq!(s.join("../etc/passwd"), None);
        assert_eq!(s.join("/etc/passwd"), None);
    }

    #[test]
    fn cache_control_rules_first_match_wins() {
        let s = StaticFiles {
            root: PathBuf::from("/srv"),
            index: "index.html".into(),
            options: std::sync::Arc::new(StaticOptions {
                cache_control: vec![
                    ("/assets/".into(), "max-age=31536000, immutable".into()),
                    ("*.html".into(), "no-cache".into()),
                ],
                ..Default::default()
            }),
        };
        assert_eq!(s.cache_control("/assets/app.css"), Some("max-age=31536000, immutable"));
        assert_eq!(s.cache_control("/assets/x.html"), Some("max-age=31536000, immutable"));
        assert_eq!(s.cache_control("/index.HTML"), Some("no-cache"));
        assert_eq!(s.cache_control("/data.json"), None);
    }

    #[test]
    fn html_escaping() {
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn location_paths_are_re_encoded() {
        assert_eq!(percent_encode_path("/a b/x?y#z/%"), "/a%20b/x%3Fy%23z/%25");
        assert_eq!(percent_encode_path("/docs/é"), "/docs/%C3%A9");
        assert_eq!(percent_encode_path("/plain/path-1_2.~"), "/plain/path-1_2.~");
    }

    #[test]
    fn root_must_be_a_directory() {
        assert!(StaticFiles::new("/nonexistent-ringd-root").is_err());
        assert!(StaticFiles::new("/proc/self/status").is_err());
        assert!(StaticFiles::new(std::env::temp_dir()).is_ok());
    }
}
