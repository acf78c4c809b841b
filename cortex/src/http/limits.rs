//! The server's limits: every way a client can hold a connection, a task or
//! memory is bounded, with a default safe for a service facing the internet.

use std::time::Duration;

/// What the server does with a new connection once
/// [`max_connections`](Limits::max_connections) are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AtConnectionLimit {
    /// Stop accepting: new connections wait in the listener's backlog (the
    /// kernel's queue) until one closes. The default.
    #[default]
    Wait,
    /// Accept and close them at once, counting each in
    /// `cortex_http_connections_rejected_total`.
    Close,
}

/// Limits that protect the server from slow, idle, greedy or oversized
/// clients. The defaults are safe for a port facing the internet; each has
/// a setter of the same name.
///
/// ```
/// use cortex::http::Limits;
/// use std::time::Duration;
///
/// let limits = Limits::default()
///     .max_body_bytes(64 * 1024)
///     .request_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
/// assert_eq!(limits.idle_timeout, Duration::from_secs(60));
/// assert_eq!(limits.max_connections, 10_000);
/// ```
///
/// What a client can hold, with the defaults:
///
/// - **time**: a connection that has not sent a whole request head within
///   `header_read_timeout` of being accepted, or of sending the first byte
///   of a later head, is closed (HTTP/1 and HTTP/2 alike); one with no
///   request in flight for `idle_timeout` is closed; a body must arrive
///   within `body_read_timeout` (else 408); an HTTP/2 peer that does not
///   answer a ping within `http2_keep_alive_timeout` is dropped.
/// - **connections**: at most `max_connections` at once.
/// - **memory**: a request head is at most `max_header_bytes`; a body at
///   most `max_body_bytes`; the bodies being read or held by handlers,
///   across every connection and stream, at most `max_buffered_body_bytes`
///   (256 MiB) all together: past it a request gets 503 at once instead of
///   being read. So body buffering never exceeds 256 MiB whatever the
///   clients do, and one connection never holds more than
///   `http2_max_concurrent_streams` × `max_body_bytes` (200 MiB) of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A client must send a whole request head within this time, counted
    /// from the connection's accept (for its first request) or from the
    /// first byte of the head (for later ones), or the connection is
    /// closed: a client that connects and says nothing, an HTTP/2 client
    /// that sends only the preface, and a "slowloris" client trickling
    /// headers are all cut off. Default 10 s.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed
    /// (gracefully: HTTP/2 gets a `GOAWAY`). Default 60 s.
    pub idle_timeout: Duration,
    /// The whole request body must arrive within this time, else the
    /// request gets 408 and the handler never runs. Default 30 s.
    pub body_read_timeout: Duration,
    /// A handler still running after this long is dropped (its future is
    /// cancelled) and the client gets 503. Default none; a route can set its
    /// own with [`RouteOptions::request_timeout`](super::RouteOptions::request_timeout).
    pub request_timeout: Option<Duration>,
    /// The largest request head accepted, in bytes (at least 8 KiB).
    /// Default 64 KiB; larger heads get 431 (HTTP/1.1) or a stream error
    /// (HTTP/2, where it is the header list size).
    pub max_header_bytes: usize,
    /// The largest request body accepted, in bytes; larger bodies get 413.
    /// Default 2 MiB.
    pub max_body_bytes: usize,
    /// The most request-body bytes held at once by the whole server (being
    /// read, or held by a running handler). A request whose body would pass
    /// it gets 503 at once. Default 256 MiB.
    pub max_buffered_body_bytes: usize,
    /// The most connections open at once. Default 10,000.
    pub max_connections: usize,
    /// What happens to a connection past `max_connections`. Default
    /// [`AtConnectionLimit::Wait`].
    pub at_connection_limit: AtConnectionLimit,
    /// The most requests an HTTP/2 client may have in flight on one
    /// connection. Default 100.
    pub http2_max_concurrent_streams: u32,
    /// How often an HTTP/2 connection is pinged to check the peer is still
    /// there (`None`: never). Default 20 s.
    pub http2_keep_alive_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is closed.
    /// Default 20 s.
    pub http2_keep_alive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: None,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 2 * 1024 * 1024,
            max_buffered_body_bytes: 256 * 1024 * 1024,
            max_connections: 10_000,
            at_connection_limit: AtConnectionLimit::Wait,
            http2_max_concurrent_streams: 100,
            http2_keep_alive_interval: Some(Duration::from_secs(20)),
            http2_keep_alive_timeout: Duration::from_secs(20),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl Limits {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`header_read_timeout`](Limits::header_read_timeout).
    header_read_timeout: Duration;
    /// Sets [`idle_timeout`](Limits::idle_timeout).
    idle_timeout: Duration;
    /// Sets [`body_read_timeout`](Limits::body_read_timeout).
    body_read_timeout: Duration;
    /// Sets [`request_timeout`](Limits::request_timeout).
    request_timeout: Option<Duration>;
    /// Sets [`max_header_bytes`](Limits::max_header_bytes).
    max_header_bytes: usize;
    /// Sets [`max_body_bytes`](Limits::max_body_bytes).
    max_body_bytes: usize;
    /// Sets [`max_buffered_body_bytes`](Limits::max_buffered_body_bytes).
    max_buffered_body_bytes: usize;
    /// Sets [`max_connections`](Limits::max_connections).
    max_connections: usize;
    /// Sets [`at_connection_limit`](Limits::at_connection_limit).
    at_connection_limit: AtConnectionLimit;
    /// Sets [`http2_max_concurrent_streams`](Limits::http2_max_concurrent_streams).
    http2_max_concurrent_streams: u32;
    /// Sets [`http2_keep_alive_interval`](Limits::http2_keep_alive_interval).
    http2_keep_alive_interval: Option<Duration>;
    /// Sets [`http2_keep_alive_timeout`](Limits::http2_keep_alive_timeout).
    http2_keep_alive_timeout: Duration;
}
