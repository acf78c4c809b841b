//! One connection: served by hyper, watched by a timer that closes it when
//! a client holds it without using it (no request head in time, idle too
//! long), and shut down gracefully when the server stops.
//!
//! hyper's own HTTP/1 head timer starts only once the protocol is detected
//! and also runs while a kept-alive connection waits for its next request,
//! and HTTP/2 has none; so the server keeps one clock per connection itself,
//! fed by the requests it dispatches and the bytes it reads.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::Limits;

/// What one connection is doing, as its watchdog sees it.
pub(crate) struct Tracker {
    accepted: Instant,
    /// Requests dispatched whose response has not been sent in full.
    in_flight: AtomicUsize,
    /// Whether a request was ever dispatched.
    served: AtomicBool,
    /// Whether the connection speaks HTTP/2 (known from its first request).
    http2: AtomicBool,
    /// Milliseconds since `accepted` when the last request finished.
    idle_since: AtomicU64,
    /// Milliseconds since `accepted`, plus one, when the first byte of a
    /// new head arrived while idle; 0 while none has.
    head_started: AtomicU64,
}

/// Why the watchdog fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No whole request head in time: close at once.
    Head,
    /// No request for the idle timeout: close gracefully.
    Idle,
}

impl Tracker {
    pub(crate) fn new() -> Self {
        Tracker {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted + Duration::from_millis(ms)
    }

    /// A request was dispatched: its head is complete.
    pub(crate) fn started(self: &Arc<Self>, version: http::Version) -> InFlight {
        self.in_flight.fetch_add(1, AcqRel);
        self.served.store(true, Release);
        if version == http::Version::HTTP_2 {
            self.http2.store(true, Release);
        }
        self.head_started.store(0, Release);
        InFlight(Arc::clone(self))
    }

    /// Bytes arrived from the client.
    fn read_some(&self) {
        // Only the first byte of a head that comes while nothing is in
        // flight starts the head timer (HTTP/2 frames between requests are
        // pings and settings, not heads).
        if self.in_flight.load(Acquire) == 0
            && self.served.load(Acquire)
            && !self.http2.load(Acquire)
            && self.head_started.load(Acquire) == 0
        {
            let _ = self
                .head_started
                .compare_exchange(0, self.now_ms() + 1, AcqRel, Acquire);
        }
    }

    /// When the watchdog fires next, and why; `None` while a request is in
    /// flight. `idle` false leaves the idle timer out.
    fn deadline(&self, limits: &Limits, idle: bool) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Acquire) > 0 {
            return None;
        }
        if !self.served.load(Acquire) {
            return Some((self.accepted + limits.header_read_timeout, Expiry::Head));
        }
        match self.head_started.load(Acquire) {
            0 if idle => {
                let since = self.at(self.idle_since.load(Acquire));
                Some((since + limits.idle_timeout, Expiry::Idle))
            }
            0 => None,
            started => Some((
                self.at(started - 1) + limits.header_read_timeout,
                Expiry::Head,
            )),
        }
    }

    /// Waits until the connection has been held unused past a limit.
    ///
    /// Requests and bytes never wake it (that would cost every request a
    /// wake-up of the connection's task): it sleeps until the deadline it
    /// knows of, but never longer than the head timeout, and looks again.
    /// A head that starts while it sleeps is seen at the next look, which
    /// is always before that head's own deadline, so every limit fires on
    /// time.
    pub(crate) async fn expired(&self, limits: &Limits, idle: bool) -> Expiry {
        let step = limits.header_read_timeout.max(Duration::from_millis(1));
        loop {
            let now = Instant::now();
            let look_again = now + step;
            match self.deadline(limits, idle) {
                Some((at, why)) if at <= now => return why,
                Some((at, _)) => tokio::time::sleep_until(at.min(look_again)).await,
                None => tokio::time::sleep_until(look_again).await,
            }
        }
    }
}

/// A request in flight; dropped when its response has been sent (it rides
/// in the response body) or abandoned.
pub(crate) struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let t = &self.0;
        t.idle_since.store(t.now_ms(), Release);
        t.in_flight.fetch_sub(1, AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it is
/// sent or dropped.
pub(crate) struct TrackedBody {
    pub(crate) body: super::Body,
    pub(crate) _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = super::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling its tracker when bytes arrive.
pub(crate) struct TrackedIo<T> {
    pub(crate) io: T,
    pub(crate) tracker: Arc<Tracker>,
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.tracker.read_some();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves one accepted connection until the client closes it, a limit
/// closes it, or the server stops (`stop` turns true: the connection is shut
/// down gracefully, finishing what is in flight).
pub(crate) async fn serve(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    builder: &hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    app: Arc<super::app::App>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let tracker = Arc::new(Tracker::new());
    let io = hyper_util::rt::TokioIo::new(TrackedIo {
        io: stream,
        tracker: Arc::clone(&tracker),
    });
    let limits = app.limits;
    let observer = app.observer.clone();
    let service_tracker = Arc::clone(&tracker);
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let in_flight = service_tracker.started(req.version());
        let app = Arc::clone(&app);
        async move {
            let response = app.handle(req).await;
            Ok::<_, std::convert::Infallible>(response.map(|body| TrackedBody {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let stopping = *stop.borrow();
    let idle = if stopping {
        false
    } else {
        tokio::select! {
            ended = conn.as_mut() => return log_end(peer, ended, &observer),
            why = tracker.expired(&limits, true) => match why {
                Expiry::Head => return head_timed_out(peer, &observer),
                Expiry::Idle => true,
            },
            _ = stop.wait_for(|s| *s) => false,
        }
    };
    conn.as_mut().graceful_shutdown();
    // Idle: nothing is in flight, so the close is quick; a client that
    // keeps it open past another head timeout is dropped.
    let grace = async {
        if idle {
            tokio::time::sleep(limits.header_read_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        ended = conn.as_mut() => log_end(peer, ended, &observer),
        why = tracker.expired(&limits, false) => {
            if why == Expiry::Head {
                head_timed_out(peer, &observer);
            }
        }
        () = grace => {
            tracing::debug!(target: "cortex::http", %peer, "idle connection did not close after GOAWAY; dropped");
        }
    }
}

/// Logs how a connection ended; a request hyper refused itself (431 for a
/// head past `max_header_bytes`, 400 for a malformed one) is counted, as
/// no handler saw it.
fn log_end(
    peer: std::net::SocketAddr,
    ended: Result<(), super::BoxError>,
    observer: &crate::tower::Observer,
) {
    if let Err(error) = ended {
        if let Some(e) = error.downcast_ref::<hyper::Error>() {
            if e.is_parse_too_large() {
                observer.rejected(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            } else if e.is_parse() {
                observer.rejected(http::StatusCode::BAD_REQUEST);
            }
        }
        tracing::debug!(target: "cortex::http", %peer, %error, "connection ended with an error");
    }
}

/// A connection that sent no whole request head in time is closed (no
/// answer is sent), and counted as a rejected request with status 408.
fn head_timed_out(peer: std::net::SocketAddr, observer: &crate::tower::Observer) {
    observer.rejected(http::StatusCode::REQUEST_TIMEOUT);
    tracing::debug!(target: "cortex::http", %peer, "no whole request head within the header read timeout; connection closed");
}
