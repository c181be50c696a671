//! The `Date` and `Server` lines of a worker's responses, rendered once a second.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use ringd_core::{CommonLines, DateCache};

/// A worker's `Date` value, the `Date` and `Server` lines made from it (HTTP/1.1), the same two
/// values as HTTP/2 fields, and until when (on the monotonic clock) they hold.
pub(crate) struct WorkerDate {
    cache: DateCache,
    lines: Rc<CommonLines>,
    /// `date` and `server` (none when the server name is empty), for HTTP/2.
    fields: (HeaderValue, Option<HeaderValue>),
    until: Option<Instant>,
}

impl WorkerDate {
    pub(crate) fn new() -> WorkerDate {
        WorkerDate {
            cache: DateCache::new(),
            lines: Rc::default(),
            fields: (HeaderValue::from_static(""), None),
            until: None,
        }
    }

    /// Whether the lines must be rendered again at `now` (a recent reading of the monotonic
    /// clock, which callers already have): once `now` reaches the next whole second, or after
    /// [`WorkerDate::stale`]. The wall clock is read only then, not per response.
    #[inline]
    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now >= until)
    }

    /// The lines as last rendered.
    #[inline]
    pub(crate) fn lines(&self) -> Rc<CommonLines> {
        self.lines.clone()
    }

    /// The `date` and `server` fields as last rendered.
    #[inline]
    pub(crate) fn fields(&self) -> (HeaderValue, Option<HeaderValue>) {
        self.fields.clone()
    }

    /// Renders the lines for the wall clock's second, with `server` as the `Server` value.
    pub(crate) fn render(&mut self, now: Instant, server: &str) {
        let wall = SystemTime::now();
        self.cache.get(wall);
        let into_second = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        self.until = Some(now + Duration::from_nanos(u64::from(1_000_000_000 - into_second)));
        // In place unless a response being written still holds the old lines.
        Rc::make_mut(&mut self.lines).set(self.cache.last(), server.as_bytes());
        // Both are printable ASCII (an IMF-fixdate; a validated server name).
        self.fields = (
            HeaderValue::from_bytes(self.cache.last()).unwrap_or(HeaderValue::from_static("")),
            HeaderValue::from_str(server).ok().filter(|v| !v.is_empty()),
        );
    }

    /// Makes the next call render the lines again (the `Server` value may have changed).
    pub(crate) fn stale(&mut self) {
        self.until = None;
    }
}
