//! A safe static file handler: `GET`/`HEAD` of the files below a root directory.
//!
//! The request path arrives already percent-decoded and normalised by `ringd-core` (no `..`
//! can climb above `/`). Files are opened, checked and read through io_uring. After opening, the
//! path the kernel actually opened (`/proc/self/fd/N`) must still lie inside the root, so a
//! symlink that leads outside it answers 404 instead of the file (unless
//! [`StaticOptions::allow_outside_symlinks`] says otherwise). Small files are answered from a
//! per-worker [hot-file cache](cache); larger ones are spliced from the page cache to the
//! socket (`crate::io::file`).
//!
//! With [`StaticOptions::compression`] on, a compressible file a client gets compressed is
//! compressed once per file version and coding and kept in the cache beside the file (its bytes
//! count against the cache's budget); its tag is the file's, weak (`W/"…"`), and a request
//! with a `Range` gets ranges of the uncompressed file. Files larger than [`COMPRESS_KEEP`] are
//! compressed as they are sent, each time.

mod cache;
mod listing;

use std::borrow::Cow;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio_uring::fs::File;

use ringd_core::conditional::{
    accepts_encoding, evaluate, http_date, range, Conditions, Precondition, RangeAnswer, Validators,
};

use crate::app::handler::{Body, FileBody, Handler, Reply, Request, Response, SharedHeaders};
use crate::traffic::compress::{compress_whole, encode_body, negotiate, weak, Encoders};
use crate::traffic::config::{Coding, Compression};
pub use cache::CacheOptions;
use cache::{CachedFile, Checks, Content, Identity, Lookup, Meta, WholeFileBlock};
use listing::{listing, percent_encode_path};

/// Ranges of files that are not cached, up to this size, are read whole and sent with their
/// head in one write; larger ones stream.
const WHOLE_FILE_MAX: u64 = 64 * 1024;

/// Files up to this size are compressed whole and kept; larger ones are compressed as they are
/// sent (precompress those: `precompressed`).
pub const COMPRESS_KEEP: u64 = 8 << 20;

thread_local! {
    /// The buffer cache keys are built in.
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Serves the files below a root directory.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
    index: String,
    options: Arc<StaticOptions>,
    /// `Cache-Control` rules with their values ready to send.
    cache_rules: Arc<[(String, Bytes)]>,
    /// Tells this handler's cache entries from another's (clones share it: same files): the
    /// start of its cache keys, a number and `:`.
    id: Arc<str>,
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
    /// Serve files that symlinks inside the root lead to outside it. Off: such a file is a 404.
    pub allow_outside_symlinks: bool,
    /// The hot-file cache.
    pub cache: CacheOptions,
    /// On-the-fly compression of compressible files (off by default); see the module's doc.
    pub compression: Compression,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            precompressed: false,
            listing: false,
            default_type: "application/octet-stream".to_owned(),
            cache_control: Vec::new(),
            allow_outside_symlinks: false,
            cache: CacheOptions::default(),
            compression: Compression::default(),
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

/// A file found for a request, opened and checked.
struct Found {
    file: File,
    stat: libc::statx,
    /// The path whose extension gives the type (the uncompressed file's).
    type_path: PathBuf,
    encoding: Option<&'static str>,
    /// What the answer depends on, for the cache.
    checks: Checks,
}

/// Where a response's body comes from.
enum Source {
    Memory(Bytes),
    File(Rc<File>),
}

/// An answer, or what is left to read for it.
enum Answer {
    Done(Response),
    /// A small range of an open file: read it into the body.
    Read {
        response: Response,
        file: Rc<File>,
        start: u64,
        len: u64,
    },
}

impl Answer {
    /// The response, after reading what is left to read.
    async fn finish(self) -> Response {
        match self {
            Answer::Done(response) => response,
            Answer::Read {
                response,
                file,
                start,
                len,
            } => match read_range(&file, start, len).await {
                Ok(bytes) => response.body(Body::Full(bytes)),
                Err(_) => Response::error(500),
            },
        }
    }
}

impl CachedFile {
    fn source(&self) -> Source {
        match &self.content {
            Content::Bytes(bytes) => Source::Memory(bytes.clone()),
            Content::Open(file) => Source::File(file.clone()),
        }
    }
}

impl StaticFiles {
    /// Serves `root`, which must be an existing, readable directory.
    pub fn new(root: impl AsRef<Path>) -> Result<StaticFiles, RootError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
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
            cache_rules: Arc::new([]),
            id: format!("{}:", NEXT_ID.fetch_add(1, Ordering::Relaxed)).into(),
        })
    }

    /// Serves with these options.
    pub fn with_options(mut self, options: StaticOptions) -> StaticFiles {
        self.cache_rules = options
            .cache_control
            .iter()
            .map(|(pattern, value)| (pattern.clone(), Bytes::from(value.clone())))
            .collect();
        self.options = Arc::new(options);
        self
    }

    /// The `Cache-Control` value for a request path, if a rule matches.
    fn cache_control(&self, path: &str) -> Option<&Bytes> {
        self.cache_rules.iter().find_map(|(pattern, value)| {
            let hit = match pattern.strip_prefix("*.") {
                Some(ext) => path.rsplit_once('.').is_some_and(|(_, e)| e.eq_ignore_ascii_case(ext)),
                None => path.starts_with(pattern.as_str()),
            };
            hit.then_some(value)
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The coding a request's file would be compressed with, if its type and size call for it:
    /// none for a range request (ranges are of the uncompressed file).
    fn coding_for(&self, req: &Request<'_>) -> Option<Coding> {
        let c = &self.options.compression;
        if !c.enabled || req.header("range").is_some() {
            return None;
        }
        negotiate(req.headers(), &c.encodings).coding
    }

    /// Whether a file described by `meta` is compressed for a client that accepts it.
    fn compresses(&self, meta: &Meta) -> bool {
        let c = &self.options.compression;
        c.enabled && meta.encoding.is_none() && meta.size >= c.min_length && c.compresses_type(&meta.content_type)
    }

    /// The description of `meta`'s file compressed with `coding` into `len` bytes.
    fn variant(meta: &Meta, coding: Coding, len: u64) -> Meta {
        let etag = weak(&meta.etag);
        Meta {
            block: std::cell::OnceCell::new(),
            size: len,
            mtime_secs: meta.mtime_secs,
            etag: etag.clone(),
            etag_text: meta.etag_text.clone(),
            weak: true,
            last_modified: meta.last_modified.clone(),
            content_type: meta.content_type.clone(),
            encoding: Some(coding.token()),
        }
    }

    /// Answers a request the cache did not answer fresh: `key` is its cache key (when the cache
    /// is on), `stale` what the cache holds for it, to be checked first, and `coding` the
    /// coding a compressible file would be sent in.
    async fn serve(
        &self,
        req: &Request<'_>,
        key: Option<String>,
        stale: Option<(Rc<CachedFile>, Checks)>,
        coding: Option<Coding>,
    ) -> Response {
        let cache = self.options.cache;
        if let (Some(key), Some((hit, checks))) = (&key, stale) {
            if cache::still_valid(&checks).await {
                cache::confirm(key, cache.revalidate);
                return self.answer(req, &hit.meta, hit.source()).await;
            }
            cache::remove(key);
        }
        // Mounted as `/{path...}` (or below a prefix): the rest of the path is the file.
        let rel = req.param("path").unwrap_or_else(|| req.path().trim_start_matches('/'));
        let Some(path) = self.join(rel) else {
            return Response::error(404);
        };
        let found = match self.find(req, path).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        let meta = self.meta(&found);
        let coding = coding.filter(|_| self.compresses(&meta));
        let key = match (key, coding) {
            (Some(key), Some(coding)) if meta.size <= COMPRESS_KEEP => {
                return self.serve_compressed(req, key, found, meta, coding).await;
            }
            (_, Some(coding)) => {
                // Too large to keep compressed, or no cache: compressed as it is sent.
                let response = self.answer(req, &meta, Source::File(Rc::new(found.file))).await;
                if response.status != 200 || req.method() == ringd_core::Method::Head {
                    return response;
                }
                let mut response = response;
                response.unblock();
                let level = self.options.compression.level(coding);
                return encode_body(response, coding, level, &mut Encoders::default());
            }
            (Some(key), None) => key,
            (None, None) => return self.answer(req, &meta, Source::File(Rc::new(found.file))).await,
        };
        let content = if meta.size <= cache.max_file {
            match read_range(&found.file, 0, meta.size).await {
                Ok(bytes) => Content::Bytes(bytes),
                Err(_) => return Response::error(500),
            }
        } else {
            Content::Open(Rc::new(found.file))
        };
        let hit = Rc::new(CachedFile { meta, content });
        cache::insert(key, hit.clone(), found.checks, &cache);
        self.answer(req, &hit.meta, hit.source()).await
    }

    /// Reads, compresses and caches the whole file `found` for `coding`, and answers from it.
    async fn serve_compressed(
        &self,
        req: &Request<'_>,
        key: String,
        found: Found,
        meta: Meta,
        coding: Coding,
    ) -> Response {
        let Ok(bytes) = read_range(&found.file, 0, meta.size).await else {
            return Response::error(500);
        };
        let level = self.options.compression.level(coding);
        let Ok(compressed) = compress_whole(&bytes, coding, level).await else {
            // No place to compress it now (or no memory): this once, as it is.
            return self.answer(req, &meta, Source::Memory(bytes)).await;
        };
        let hit = Rc::new(CachedFile {
            meta: Self::variant(&meta, coding, compressed.len() as u64),
            content: Content::Bytes(compressed),
        });
        cache::insert(key, hit.clone(), found.checks, &self.options.cache);
        self.answer(req, &hit.meta, hit.source()).await
    }

    /// The cache key of a request: this handler, the encodings the client accepts (when they
    /// matter), the coding it would get a compressible file in, the path.
    /// Written into `key` (cleared first), so that a hit can use a buffer that is kept.
    fn write_cache_key(&self, req: &Request<'_>, coding: Option<Coding>, key: &mut String) {
        let mut accepts = 0u8;
        if self.options.precompressed {
            let header = req.header("accept-encoding");
            accepts = u8::from(accepts_encoding(header, "br")) | u8::from(accepts_encoding(header, "gzip")) << 1;
        }
        let coding = coding.map_or(0, |c| 1 + Coding::ALL.iter().position(|x| *x == c).unwrap_or(0) as u8);
        // One ASCII character for both: `accepts` < 4, `coding` <= Coding::ALL.len() < 8.
        const _: () = assert!(Coding::ALL.len() < 8);
        let variant = b'0' + (accepts << 3 | coding);
        key.clear();
        key.push_str(&self.id);
        key.push(char::from(variant));
        key.push_str(req.path());
    }

    /// Opens the file a request names: a directory's index (or a redirect to the slashed path,
    /// a listing, 403), the precompressed sibling the client accepts, or the file itself.
    async fn find(&self, req: &Request<'_>, mut path: PathBuf) -> Result<Found, Response> {
        let mut file = self.open_inside(&path).await.map_err(Response::error)?;
        let mut stat = file.statx().await.map_err(|_| Response::error(500))?;
        if is_dir(&stat) {
            if !req.path().ends_with('/') {
                let mut location = format!("{}/", percent_encode_path(req.path()));
                if let Some(q) = req.query() {
                    location.push('?');
                    location.push_str(q);
                }
                return Err(Response::error(301).header("Location", location));
            }
            path.push(&self.index);
            file = match self.open_inside(&path).await {
                Ok(f) => f,
                // A directory without an index is not listed (nginx answers 403 the same way).
                Err(404) if self.options.listing => {
                    return Err(listing(path.parent().unwrap_or(&path), req.path()));
                }
                Err(404) => return Err(Response::error(403)),
                Err(status) => return Err(Response::error(status)),
            };
            stat = file.statx().await.map_err(|_| Response::error(500))?;
        }
        if !is_regular(&stat) {
            return Err(Response::error(404));
        }
        let mut found = Found {
            checks: vec![(path.clone(), Some(Identity::of(&stat)))],
            file,
            stat,
            type_path: path.clone(),
            encoding: None,
        };
        if self.options.precompressed {
            for (coding, ext) in [("br", "br"), ("gzip", "gz")] {
                if !accepts_encoding(req.header("accept-encoding"), coding) {
                    continue;
                }
                let mut sibling = path.clone().into_os_string();
                sibling.push(".");
                sibling.push(ext);
                let sibling = PathBuf::from(sibling);
                if let Ok(f) = self.open_inside(&sibling).await {
                    if let Ok(st) = f.statx().await {
                        if is_regular(&st) {
                            found.checks.push((sibling, Some(Identity::of(&st))));
                            (found.file, found.stat, found.encoding) = (f, st, Some(coding));
                            break;
                        }
                    }
                }
                // Absent (or not servable) now; the cached answer holds while that stays so.
                found.checks.push((sibling, None));
            }
        }
        Ok(found)
    }

    /// How a found file is described in responses.
    fn meta(&self, found: &Found) -> Meta {
        let stat = &found.stat;
        let mtime_secs = u64::try_from(stat.stx_mtime.tv_sec).unwrap_or(0);
        // Strong: a new inode, size or nanosecond mtime is a new tag.
        let etag = format!(
            "\"{:x}-{:x}-{:x}.{:x}\"",
            stat.stx_ino, stat.stx_size, mtime_secs, stat.stx_mtime.tv_nsec
        );
        Meta {
            block: std::cell::OnceCell::new(),
            size: stat.stx_size,
            mtime_secs,
            etag: Bytes::from(etag.clone()),
            etag_text: etag.into(),
            last_modified: Bytes::from(http_date(mtime_secs)),
            content_type: self.content_type(&found.type_path),
            encoding: found.encoding,
            weak: false,
        }
    }

    /// The response for a file described by `meta`: 304 or 412 by the preconditions, the whole
    /// file, one range of it, or 416.
    async fn answer(&self, req: &Request<'_>, meta: &Meta, source: Source) -> Response {
        self.answer_now(req, meta, source).finish().await
    }

    /// [`answer`](Self::answer) as far as it goes without I/O.
    fn answer_now(&self, req: &Request<'_>, meta: &Meta, source: Source) -> Answer {
        self.answer_fields(req, meta, source, FileFields::of(req.headers()))
    }

    /// The common answer of a cache hit: the whole file from memory, with its rendered header
    /// block, when the request has no condition and no range that applies (what
    /// [`answer_now`](Self::answer_now) would answer then). `None` otherwise.
    #[inline]
    fn answer_whole(&self, req: &Request<'_>, hit: &CachedFile, fields: &FileFields<'_>) -> Option<Response> {
        let Content::Bytes(bytes) = &hit.content else {
            return None;
        };
        if !fields.conditions.is_empty() || (fields.range.is_some() && req.method() != ringd_core::Method::Head) {
            return None;
        }
        let block = self.whole_file_block(req.path(), &hit.meta)?;
        Some(Response {
            status: 200,
            content_type: None,
            headers: Vec::new(),
            body: Body::Full(bytes.clone()),
            block: Some(block),
        })
    }

    /// [`answer_now`](Self::answer_now) with the request's file fields found.
    fn answer_fields(&self, req: &Request<'_>, meta: &Meta, source: Source, fields: FileFields<'_>) -> Answer {
        let is_head = req.method() == ringd_core::Method::Head;
        let size = meta.size;
        let validators = Validators {
            etag: &meta.etag_text,
            weak: meta.weak,
            last_modified: meta.mtime_secs,
        };
        let with_validators = |status: u16| {
            let mut r = Response::new(status);
            r.headers = self.file_headers(meta, self.cache_control(req.path()));
            r
        };
        // Only GET and HEAD are routed here. Without conditions, the answer is to proceed.
        if !fields.conditions.is_empty() {
            match evaluate(&fields.conditions, &validators, true) {
                Precondition::NotModified => return Answer::Done(with_validators(304)),
                Precondition::Failed => return Answer::Done(Response::error(412).header("ETag", meta.etag.clone())),
                Precondition::Proceed => {}
            }
        }
        // Ranges are defined for GET only (RFC 9110 §14.2): HEAD describes the whole file.
        let asked = if is_head { None } else { fields.range };
        let ranged = match asked {
            None => RangeAnswer::Full,
            Some(_) => range(asked, fields.if_range, &validators, size),
        };
        let (response, start, len) = match ranged {
            RangeAnswer::Full => match self.whole_file_block(req.path(), meta) {
                // The common answer: its headers were checked and rendered once.
                Some(block) => (Response::new(200).block(block), 0, size),
                None => (with_validators(200).content_type(meta.content_type.clone()), 0, size),
            },
            RangeAnswer::Partial { start, end } => (
                with_validators(206)
                    .header("Content-Range", format!("bytes {start}-{end}/{size}"))
                    .content_type(meta.content_type.clone()),
                start,
                end - start + 1,
            ),
            RangeAnswer::Unsatisfiable => {
                return Answer::Done(Response::error(416).header("Content-Range", format!("bytes */{size}")));
            }
        };
        Answer::Done(match source {
            // The whole of it, as it is (a slice of all of it would be a clone and a drop).
            Source::Memory(bytes) if start == 0 && len == bytes.len() as u64 => response.body(Body::Full(bytes)),
            Source::Memory(bytes) => response.body(Body::Full(bytes.slice(start as usize..(start + len) as usize))),
            Source::File(file) if !is_head && len <= WHOLE_FILE_MAX => {
                return Answer::Read {
                    response,
                    file,
                    start,
                    len,
                }
            }
            // For HEAD the body is never sent: only its length is used.
            Source::File(file) => response.body(Body::File(FileBody::new(file, start, len))),
        })
    }

    /// The headers every answer about a file carries besides its type: its validators,
    /// `Accept-Ranges`, and `Vary`, `Content-Encoding` and `Cache-Control` as the options and the
    /// file call for. One list for the ordinary answers and for the header block.
    fn file_headers(&self, meta: &Meta, cache_control: Option<&Bytes>) -> Vec<(Cow<'static, str>, Bytes)> {
        let mut headers = Vec::with_capacity(6);
        headers.push((Cow::Borrowed("ETag"), meta.etag.clone()));
        headers.push((Cow::Borrowed("Last-Modified"), meta.last_modified.clone()));
        // A compressed variant's ranges are not served (a range request gets the file's).
        if !meta.weak {
            headers.push((Cow::Borrowed("Accept-Ranges"), Bytes::from_static(b"bytes")));
        }
        if self.varies(meta) {
            headers.push((Cow::Borrowed("Vary"), Bytes::from_static(b"Accept-Encoding")));
        }
        if let Some(coding) = meta.encoding {
            headers.push((Cow::Borrowed("Content-Encoding"), Bytes::from_static(coding.as_bytes())));
        }
        if let Some(value) = cache_control {
            headers.push((Cow::Borrowed("Cache-Control"), value.clone()));
        }
        headers
    }

    /// The header lines of a whole-file 200 for `meta` as requested at `path`: the headers
    /// `answer_now` would add one by one, rendered at the first such answer and kept with the
    /// file's description (so in the cache). `None` when the options changed since (a reload)
    /// or the lines did not pass the writer's checks: the ordinary path then answers.
    #[inline(always)]
    fn whole_file_block(&self, path: &str, meta: &Meta) -> Option<Rc<SharedHeaders>> {
        let cache_control = self.cache_control(path);
        let vary = self.varies(meta);
        let rendered = meta.block.get_or_init(|| {
            let others = self.file_headers(meta, cache_control);
            let headers: Vec<(&str, &[u8])> = std::iter::once(("Content-Type", &meta.content_type[..]))
                .chain(others.iter().map(|(n, v)| (&**n, &v[..])))
                .collect();
            WholeFileBlock {
                block: ringd_core::HeaderBlock::with_length(&headers, meta.size)
                    .ok()
                    .map(|lines| Rc::new(SharedHeaders::new(lines))),
                cache_control: cache_control.cloned(),
                vary,
            }
        });
        (rendered.cache_control.as_ref() == cache_control && rendered.vary == vary)
            .then(|| rendered.block.clone())
            .flatten()
    }

    /// Whether answers about a file depend on `Accept-Encoding`: there may be a precompressed
    /// sibling, or the file is one that is compressed on the fly.
    fn varies(&self, meta: &Meta) -> bool {
        let c = &self.options.compression;
        self.options.precompressed
            || meta.weak
            || (c.enabled && meta.size >= c.min_length && c.compresses_type(&meta.content_type))
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
        if self.options.allow_outside_symlinks {
            return Ok(file);
        }
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(|_| 500u16)?;
        if !real.starts_with(&self.root) {
            tracing::debug!(path = %path.display(), target = %real.display(), "refused a file outside the root");
            return Err(404);
        }
        Ok(file)
    }

    fn content_type(&self, path: &Path) -> Bytes {
        match mime_guess::from_path(path).first_raw() {
            Some(mime) => Bytes::from(with_charset(mime)),
            None => Bytes::from(self.options.default_type.clone()),
        }
    }
}

/// The request fields an answer about a file reads: the first line of each, as
/// [`Request::header`] gives it, found in one pass over the headers (a browser sends a dozen,
/// and six look-ups would compare each name six times).
#[derive(Default)]
struct FileFields<'a> {
    conditions: Conditions<'a>,
    range: Option<&'a [u8]>,
    if_range: Option<&'a [u8]>,
}

impl<'a> FileFields<'a> {
    #[inline(always)]
    fn of(headers: &[ringd_core::Header<'a>]) -> FileFields<'a> {
        let mut f = FileFields::default();
        f.scan(headers);
        f
    }

    /// Takes in the fields of `headers` (the first of each name counts): [`FileFields::of`] for
    /// a value the caller holds, so that it is filled in place.
    #[inline(always)]
    fn scan(&mut self, headers: &[ringd_core::Header<'a>]) {
        let f = self;
        for h in headers {
            let (name, value) = (h.name, Some(h.value));
            let slot = match name.len() {
                5 if name.eq_ignore_ascii_case("range") => &mut f.range,
                8 if name.eq_ignore_ascii_case("if-match") => &mut f.conditions.if_match,
                8 if name.eq_ignore_ascii_case("if-range") => &mut f.if_range,
                13 if name.eq_ignore_ascii_case("if-none-match") => &mut f.conditions.if_none_match,
                17 if name.eq_ignore_ascii_case("if-modified-since") => &mut f.conditions.if_modified_since,
                19 if name.eq_ignore_ascii_case("if-unmodified-since") => &mut f.conditions.if_unmodified_since,
                _ => continue,
            };
            if slot.is_none() {
                *slot = value;
            }
        }
    }
}

impl Handler for StaticFiles {
    fn call<'a>(&'a self, req: &'a Request<'a>) -> Reply<'a> {
        let cache = self.options.cache;
        let coding = self.coding_for(req);
        if cache.max_bytes == 0 {
            return Reply::Pending(Box::pin(self.serve(req, None, None, coding)));
        }
        // The key is built in a buffer kept per thread, and the request's clock reading decides
        // freshness: a hit allocates nothing and reads no clock.
        let looked_up = KEY.with_borrow_mut(|key| {
            self.write_cache_key(req, coding, key);
            match cache::lookup(key, req.now) {
                Lookup::Fresh(hit) => Err(hit),
                Lookup::Stale(hit, checks) => Ok((key.clone(), Some((hit, checks)))),
                Lookup::Miss => Ok((key.clone(), None)),
            }
        });
        match looked_up {
            // The common case: answered at once, without a future, unless a small range of an
            // open file must be read first.
            Err(hit) => {
                let mut fields = FileFields::default();
                fields.scan(req.headers());
                if let Some(response) = self.answer_whole(req, &hit, &fields) {
                    return Reply::Ready(response);
                }
                match self.answer_fields(req, &hit.meta, hit.source(), fields) {
                    Answer::Done(response) => Reply::Ready(response),
                    read => Reply::Pending(Box::pin(read.finish())),
                }
            }
            Ok((key, stale)) => Reply::Pending(Box::pin(self.serve(req, Some(key), stale, coding))),
        }
    }

    fn reads_body(&self) -> bool {
        false
    }
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

/// The `Content-Type` for a file name; text types say `charset=utf-8`.
pub fn content_type(path: &Path) -> String {
    with_charset(
        mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream"),
    )
}

/// A media type as sent: text types say `charset=utf-8`.
fn with_charset(mime: &str) -> String {
    if mime.starts_with("text/") || mime == "application/javascript" || mime == "image/svg+xml" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
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
        let s = StaticFiles::new(std::env::temp_dir()).unwrap();
        let root = s.root().to_path_buf();
        assert_eq!(s.join("a/b.txt"), Some(root.join("a/b.txt")));
        assert_eq!(s.join("../etc/passwd"), None);
        assert_eq!(s.join("/etc/passwd"), None);
    }

    #[test]
    fn cache_control_rules_first_match_wins() {
        let s = StaticFiles::new(std::env::temp_dir())
            .unwrap()
            .with_options(StaticOptions {
                cache_control: vec![
                    ("/assets/".into(), "max-age=31536000, immutable".into()),
                    ("*.html".into(), "no-cache".into()),
                ],
                ..Default::default()
            });
        let rule = |p| s.cache_control(p).map(|v| std::str::from_utf8(v).unwrap().to_owned());
        assert_eq!(rule("/assets/app.css").as_deref(), Some("max-age=31536000, immutable"));
        assert_eq!(rule("/assets/x.html").as_deref(), Some("max-age=31536000, immutable"));
        assert_eq!(rule("/index.HTML").as_deref(), Some("no-cache"));
        assert_eq!(rule("/data.json"), None);
    }

    #[test]
    fn root_must_be_a_directory() {
        assert!(StaticFiles::new("/nonexistent-ringd-root").is_err());
        assert!(StaticFiles::new("/proc/self/status").is_err());
        assert!(StaticFiles::new(std::env::temp_dir()).is_ok());
    }

    #[test]
    fn file_fields_are_the_first_of_each_header() {
        use ringd_core::Header;
        let h = |name, value: &'static str| Header {
            name,
            value: value.as_bytes(),
        };
        let headers = [
            h("Host", "x"),
            h("RANGE", "bytes=0-1"),
            h("if-none-match", "\"a\""),
            h("If-Match", "*"),
            h("Range", "bytes=5-"),
            h("If-Range", "\"b\""),
            h("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
            h("If-Unmodified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"),
            h("If-None-Match", "\"c\""),
            h("X-Range", "no"),
        ];
        let f = FileFields::of(&headers);
        let first = |name: &str| {
            headers
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(name))
                .map(|x| x.value)
        };
        assert_eq!(f.range, first("range"));
        assert_eq!(f.range, Some(&b"bytes=0-1"[..]));
        assert_eq!(f.if_range, first("if-range"));
        assert_eq!(f.conditions.if_match, first("if-match"));
        assert_eq!(f.conditions.if_none_match, Some(&b"\"a\""[..]));
        assert_eq!(f.conditions.if_modified_since, first("if-modified-since"));
        assert_eq!(f.conditions.if_unmodified_since, first("if-unmodified-since"));
        let none = FileFields::of(&headers[..1]);
        assert!(none.range.is_none() && none.if_range.is_none() && none.conditions.if_match.is_none());
    }
}
