//! The hot-file cache: per worker, the headers and bytes of small files, and the headers and
//! open descriptor of larger ones.
//!
//! Like nginx's `open_file_cache`, but holding small files' content too, so that a hit on one
//! costs no system call at all, and a hit on a larger one no open, stat or path check before
//! its splice. Each worker has its own cache (a thread-local LRU bounded in bytes and in open
//! files), so a hit takes no lock. An entry is trusted for [`CacheOptions::revalidate`]; after that, the next
//! request for it checks every path the answer depended on (`statx` through io_uring: inode,
//! size, modification time, and the absence of precompressed siblings that were absent) and
//! drops the entry if any changed.

use std::cell::{OnceCell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::app::handler::SharedHeaders;
use bytes::Bytes;
use lru::LruCache;

/// How the hot-file cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    /// The most bytes of file content one worker keeps in memory; 0 turns the cache off.
    pub max_bytes: u64,
    /// Files up to this size are kept in memory; larger ones are kept open and spliced from
    /// the page cache, which costs less than copying them from memory.
    pub max_file: u64,
    /// The most files one worker keeps open.
    pub max_open_files: usize,
    /// How long a cached file is served before its path is checked again.
    pub revalidate: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            max_bytes: 32 << 20,
            max_file: 64 << 10,
            max_open_files: 256,
            revalidate: Duration::from_secs(1),
        }
    }
}

/// What tells one version of a file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: (u32, u32),
    ino: u64,
    size: u64,
    mtime: (i64, u32),
}

impl Identity {
    pub(crate) fn of(stat: &libc::statx) -> Identity {
        Identity {
            dev: (stat.stx_dev_major, stat.stx_dev_minor),
            ino: stat.stx_ino,
            size: stat.stx_size,
            mtime: (stat.stx_mtime.tv_sec, stat.stx_mtime.tv_nsec),
        }
    }
}

/// The paths an answer depended on, each with what it was then (`None`: absent).
pub(crate) type Checks = Vec<(PathBuf, Option<Identity>)>;

/// How a file is described in a response.
#[derive(Debug)]
pub(crate) struct Meta {
    /// The header lines of a whole-file 200, rendered at the first such answer (see
    /// `StaticFiles::whole_file_block`).
    pub(crate) block: OnceCell<WholeFileBlock>,
    pub(crate) size: u64,
    pub(crate) mtime_secs: u64,
    /// The quoted strong entity tag.
    pub(crate) etag: Bytes,
    /// The same, as text for comparisons.
    pub(crate) etag_text: Box<str>,
    /// The `Last-Modified` value.
    pub(crate) last_modified: Bytes,
    pub(crate) content_type: Bytes,
    /// The `Content-Encoding` of a precompressed sibling, or of a variant compressed on the fly.
    pub(crate) encoding: Option<&'static str>,
    /// A variant compressed on the fly: `etag` is `W/` + `etag_text`, and strong comparisons
    /// fail.
    pub(crate) weak: bool,
}

/// A whole-file answer's header lines, and the options they were rendered with (a reload may
/// change the options while the entry stays cached).
#[derive(Debug)]
pub(crate) struct WholeFileBlock {
    /// `None` if the lines did not pass the writer's checks (then every answer takes the
    /// ordinary path, which reports the bad header).
    pub(crate) block: Option<Rc<SharedHeaders>>,
    pub(crate) cache_control: Option<Bytes>,
    pub(crate) vary: bool,
}

/// A cached file: how to describe it, and its content or an open descriptor.
pub(crate) struct CachedFile {
    pub(crate) meta: Meta,
    pub(crate) content: Content,
}

/// Where a cached file's bytes are.
pub(crate) enum Content {
    /// In memory, whole.
    Bytes(Bytes),
    /// In the page cache, behind an open descriptor.
    Open(Rc<tokio_uring::fs::File>),
}

impl CachedFile {
    /// Memory the entry holds, and whether it holds a descriptor.
    fn cost(&self, key: &str) -> (u64, bool) {
        let overhead = key.len() as u64 + ENTRY_OVERHEAD;
        match &self.content {
            Content::Bytes(b) => (b.len() as u64 + overhead, false),
            Content::Open(_) => (overhead, true),
        }
    }
}

struct Entry {
    file: Rc<CachedFile>,
    checks: Checks,
    /// Until when the checks made last hold without being made again (`None`: for ever, an
    /// interval too long for the clock).
    fresh_until: Option<Instant>,
    cost: u64,
    open: bool,
}

/// One worker's cache.
struct FileCache {
    entries: LruCache<String, Entry>,
    bytes: u64,
    open: usize,
}

impl FileCache {
    fn forget(&mut self, e: &Entry) {
        self.bytes -= e.cost;
        self.open -= usize::from(e.open);
    }
}

thread_local! {
    static CACHE: RefCell<FileCache> = RefCell::new(FileCache {
        entries: LruCache::unbounded(),
        bytes: 0,
        open: 0,
    });
}

/// What the cache holds for a key.
pub(crate) enum Lookup {
    /// Checked within the revalidation interval: serve it.
    Fresh(Rc<CachedFile>),
    /// Serve it only if these checks still hold.
    Stale(Rc<CachedFile>, Checks),
    /// Not cached.
    Miss,
}

/// Memory an entry costs beyond its content: the key, the headers, the checks, the LRU node.
const ENTRY_OVERHEAD: u64 = 512;

/// Until when checks made now hold, trusted for `revalidate`.
fn fresh_until(revalidate: Duration) -> Option<Instant> {
    Instant::now().checked_add(revalidate)
}

/// Looks `key` up on this worker; `now` is a recent reading of the clock (the request's).
pub(crate) fn lookup(key: &str, now: Instant) -> Lookup {
    CACHE.with_borrow_mut(|cache| match cache.entries.get(key) {
        None => Lookup::Miss,
        Some(e) if e.fresh_until.is_none_or(|until| now < until) => Lookup::Fresh(e.file.clone()),
        Some(e) => Lookup::Stale(e.file.clone(), e.checks.clone()),
    })
}

/// Whether every check still holds.
pub(crate) async fn still_valid(checks: &Checks) -> bool {
    for (path, was) in checks {
        let now = tokio_uring::fs::statx(path).await.ok().map(|s| Identity::of(&s));
        if now != *was {
            return false;
        }
    }
    true
}

/// Marks `key`'s checks as just made, to be trusted for `revalidate`.
pub(crate) fn confirm(key: &str, revalidate: Duration) {
    CACHE.with_borrow_mut(|cache| {
        if let Some(e) = cache.entries.peek_mut(key) {
            e.fresh_until = fresh_until(revalidate);
        }
    });
}

/// Forgets `key`.
pub(crate) fn remove(key: &str) {
    CACHE.with_borrow_mut(|cache| {
        if let Some(e) = cache.entries.pop(key) {
            cache.forget(&e);
        }
    });
}

/// Caches `file` under `key`, evicting the least recently used entries to stay within the
/// budgets.
pub(crate) fn insert(key: String, file: Rc<CachedFile>, checks: Checks, options: &CacheOptions) {
    let (cost, open) = file.cost(&key);
    if cost > options.max_bytes || (open && options.max_open_files == 0) {
        return;
    }
    CACHE.with_borrow_mut(|cache| {
        if let Some(old) = cache.entries.pop(&key) {
            cache.forget(&old);
        }
        while cache.bytes + cost > options.max_bytes || (open && cache.open >= options.max_open_files) {
            match cache.entries.pop_lru() {
                Some((_, e)) => cache.forget(&e),
                None => break,
            }
        }
        cache.bytes += cost;
        cache.open += usize::from(open);
        cache.entries.put(
            key,
            Entry {
                file,
                checks,
                fresh_until: fresh_until(options.revalidate),
                cost,
                open,
            },
        );
    });
}

/// This worker's cached bytes and entries (for tests).
#[cfg(test)]
fn usage() -> (u64, usize) {
    CACHE.with_borrow(|cache| (cache.bytes, cache.entries.len()))
}

/// This worker's open cached files (for tests).
#[cfg(test)]
fn open_files() -> usize {
    CACHE.with_borrow(|cache| cache.open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_meta() -> Meta {
        Meta {
            block: OnceCell::new(),
            size: 0,
            mtime_secs: 0,
            etag: Bytes::new(),
            etag_text: "".into(),
            last_modified: Bytes::new(),
            content_type: Bytes::new(),
            encoding: None,
            weak: false,
        }
    }

    fn file(len: usize) -> Rc<CachedFile> {
        Rc::new(CachedFile {
            meta: file_meta(),
            content: Content::Bytes(Bytes::from(vec![0u8; len])),
        })
    }

    /// A budget of `max_bytes`; entries stay fresh for the whole test.
    fn options(max_bytes: u64) -> CacheOptions {
        CacheOptions {
            max_bytes,
            revalidate: Duration::from_secs(3600),
            ..CacheOptions::default()
        }
    }

    #[test]
    fn stays_within_its_byte_budget_and_evicts_the_least_recently_used() {
        let budget = 3 * (1000 + 1 + ENTRY_OVERHEAD);
        insert("a".into(), file(1000), Vec::new(), &options(budget));
        insert("b".into(), file(1000), Vec::new(), &options(budget));
        insert("c".into(), file(1000), Vec::new(), &options(budget));
        assert_eq!(usage(), (budget, 3));
        // Using `a` makes `b` the oldest.
        assert!(matches!(lookup("a", Instant::now()), Lookup::Fresh(_)));
        insert("d".into(), file(1000), Vec::new(), &options(budget));
        assert_eq!(usage(), (budget, 3));
        assert!(matches!(lookup("b", Instant::now()), Lookup::Miss));
        assert!(matches!(lookup("a", Instant::now()), Lookup::Fresh(_)));
        // Too big for the whole budget: not cached, nothing evicted.
        insert("huge".into(), file(budget as usize), Vec::new(), &options(budget));
        assert!(matches!(lookup("huge", Instant::now()), Lookup::Miss));
        assert_eq!(usage().1, 3);
        // Replacing a key does not count it twice.
        insert("a".into(), file(10), Vec::new(), &options(budget));
        assert_eq!(usage().1, 3);
        remove("a");
        remove("c");
        remove("d");
        assert_eq!(usage(), (0, 0));
    }

    #[test]
    fn open_files_are_bounded_by_count() {
        let dir = std::env::temp_dir();
        let options = CacheOptions {
            max_open_files: 2,
            ..options(CacheOptions::default().max_bytes)
        };
        tokio_uring::start(async {
            for name in ["f1", "f2", "f3"] {
                let file = tokio_uring::fs::File::open(&dir).await.unwrap();
                let cached = Rc::new(CachedFile {
                    meta: file_meta(),
                    content: Content::Open(Rc::new(file)),
                });
                insert(name.into(), cached, Vec::new(), &options);
            }
            assert_eq!(open_files(), 2);
            assert!(matches!(lookup("f1", Instant::now()), Lookup::Miss));
            remove("f2");
            remove("f3");
            assert_eq!((open_files(), usage()), (0, (0, 0)));
        });
    }

    #[test]
    fn entries_go_stale_after_the_interval() {
        let now = CacheOptions {
            revalidate: Duration::ZERO,
            ..options(1 << 20)
        };
        insert("s".into(), file(1), Vec::new(), &now);
        assert!(matches!(lookup("s", Instant::now()), Lookup::Stale(..)));
        confirm("s", Duration::from_secs(60));
        assert!(matches!(lookup("s", Instant::now()), Lookup::Fresh(_)));
        assert!(matches!(
            lookup("s", Instant::now() + Duration::from_secs(61)),
            Lookup::Stale(..)
        ));
        // An interval too long for the clock: fresh for ever.
        confirm("s", Duration::MAX);
        assert!(matches!(
            lookup("s", Instant::now() + Duration::from_secs(1 << 40)),
            Lookup::Fresh(_)
        ));
        remove("s");
    }
}
