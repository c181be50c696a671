//! The hot-file cache: the bytes and headers of small files, kept in memory on each worker.
//!
//! Like nginx's `open_file_cache`, but holding the content too, so that a hit costs no system
//! call at all. Each worker has its own cache (a thread-local LRU bounded in bytes), so a hit
//! takes no lock. An entry is trusted for [`CacheOptions::revalidate`]; after that, the next
//! request for it checks every path the answer depended on (`statx` through io_uring: inode,
//! size, modification time, and the absence of precompressed siblings that were absent) and
//! drops the entry if any changed.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;

/// How the hot-file cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    /// The most bytes of file content one worker keeps in memory; 0 turns the cache off.
    pub max_bytes: u64,
    /// Files larger than this are never cached: they stream from disk.
    pub max_file: u64,
    /// How long a cached file is served before its path is checked again.
    pub revalidate: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            max_bytes: 32 << 20,
            max_file: 1 << 20,
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
    pub(crate) size: u64,
    pub(crate) mtime_secs: u64,
    /// The quoted strong entity tag.
    pub(crate) etag: Bytes,
    /// The same, as text for comparisons.
    pub(crate) etag_text: Box<str>,
    /// The `Last-Modified` value.
    pub(crate) last_modified: Bytes,
    pub(crate) content_type: Bytes,
    /// The `Content-Encoding` of a precompressed sibling.
    pub(crate) encoding: Option<&'static str>,
}

/// A cached file: how to describe it and its whole content.
#[derive(Debug)]
pub(crate) struct CachedFile {
    pub(crate) meta: Meta,
    pub(crate) bytes: Bytes,
}

struct Entry {
    file: Rc<CachedFile>,
    checks: Checks,
    checked: Instant,
    cost: u64,
}

/// One worker's cache.
struct FileCache {
    entries: LruCache<String, Entry>,
    bytes: u64,
}

thread_local! {
    static CACHE: RefCell<FileCache> = RefCell::new(FileCache {
        entries: LruCache::unbounded(),
        bytes: 0,
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

/// Looks `key` up on this worker.
pub(crate) fn lookup(key: &str, revalidate: Duration) -> Lookup {
    CACHE.with_borrow_mut(|cache| match cache.entries.get(key) {
        None => Lookup::Miss,
        Some(e) if e.checked.elapsed() < revalidate => Lookup::Fresh(e.file.clone()),
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

/// Marks `key`'s checks as just made.
pub(crate) fn confirm(key: &str) {
    CACHE.with_borrow_mut(|cache| {
        if let Some(e) = cache.entries.peek_mut(key) {
            e.checked = Instant::now();
        }
    });
}

/// Forgets `key`.
pub(crate) fn remove(key: &str) {
    CACHE.with_borrow_mut(|cache| {
        if let Some(e) = cache.entries.pop(key) {
            cache.bytes -= e.cost;
        }
    });
}

/// Caches `file` under `key`, evicting the least recently used entries to stay within
/// `max_bytes`.
pub(crate) fn insert(key: String, file: Rc<CachedFile>, checks: Checks, max_bytes: u64) {
    let cost = file.bytes.len() as u64 + key.len() as u64 + ENTRY_OVERHEAD;
    if cost > max_bytes {
        return;
    }
    CACHE.with_borrow_mut(|cache| {
        if let Some(old) = cache.entries.pop(&key) {
            cache.bytes -= old.cost;
        }
        while cache.bytes + cost > max_bytes {
            match cache.entries.pop_lru() {
                Some((_, e)) => cache.bytes -= e.cost,
                None => break,
            }
        }
        cache.bytes += cost;
        cache.entries.put(
            key,
            Entry {
                file,
                checks,
                checked: Instant::now(),
                cost,
            },
        );
    });
}

/// This worker's cached bytes and entries (for tests).
#[cfg(test)]
fn usage() -> (u64, usize) {
    CACHE.with_borrow(|cache| (cache.bytes, cache.entries.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(len: usize) -> Rc<CachedFile> {
        Rc::new(CachedFile {
            meta: Meta {
                size: len as u64,
                mtime_secs: 0,
                etag: Bytes::new(),
                etag_text: "".into(),
                last_modified: Bytes::new(),
                content_type: Bytes::new(),
                encoding: None,
            },
            bytes: Bytes::from(vec![0u8; len]),
        })
    }

    #[test]
    fn stays_within_its_byte_budget_and_evicts_the_least_recently_used() {
        let budget = 3 * (1000 + 1 + ENTRY_OVERHEAD);
        insert("a".into(), file(1000), Vec::new(), budget);
        insert("b".into(), file(1000), Vec::new(), budget);
        insert("c".into(), file(1000), Vec::new(), budget);
        assert_eq!(usage(), (budget, 3));
        // Using `a` makes `b` the oldest.
        assert!(matches!(lookup("a", Duration::from_secs(60)), Lookup::Fresh(_)));
        insert("d".into(), file(1000), Vec::new(), budget);
        assert_eq!(usage(), (budget, 3));
        assert!(matches!(lookup("b", Duration::from_secs(60)), Lookup::Miss));
        assert!(matches!(lookup("a", Duration::from_secs(60)), Lookup::Fresh(_)));
        // Too big for the whole budget: not cached, nothing evicted.
        insert("huge".into(), file(budget as usize), Vec::new(), budget);
        assert!(matches!(lookup("huge", Duration::from_secs(60)), Lookup::Miss));
        assert_eq!(usage().1, 3);
        // Replacing a key does not count it twice.
        insert("a".into(), file(10), Vec::new(), budget);
        assert_eq!(usage().1, 3);
        remove("a");
        remove("c");
        remove("d");
        assert_eq!(usage(), (0, 0));
    }

    #[test]
    fn entries_go_stale_after_the_interval() {
        insert("s".into(), file(1), Vec::new(), 1 << 20);
        assert!(matches!(lookup("s", Duration::ZERO), Lookup::Stale(..)));
        confirm("s");
        assert!(matches!(lookup("s", Duration::from_secs(60)), Lookup::Fresh(_)));
        remove("s");
    }
}
