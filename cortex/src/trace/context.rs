//! The current span (per thread, carried by futures across `.await`) and W3C
//! Trace Context (`traceparent`, `tracestate`).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::id::{parse_hex, SpanId, TraceId};

/// The part of a span that crosses process boundaries: its ids, whether it
/// is sampled, and the caller's `tracestate`.
#[derive(Clone, PartialEq, Eq)]
pub struct SpanContext {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) sampled: bool,
    pub(crate) remote: bool,
    pub(crate) trace_state: Option<Arc<str>>,
}

impl fmt::Debug for SpanContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanContext")
            .field("trace_id", &format_args!("{:032x}", self.trace_id))
            .field("span_id", &format_args!("{:016x}", self.span_id))
            .field("sampled", &self.sampled)
            .field("remote", &self.remote)
            .field("trace_state", &self.trace_state)
            .finish()
    }
}

impl SpanContext {
    /// A context with these ids (both non-zero, as the types ensure).
    pub fn new(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        SpanContext {
            trace_id: trace_id.to_u128(),
            span_id: span_id.to_u64(),
            sampled,
            remote: false,
            trace_state: None,
        }
    }

    /// Whether the ids are set (a span made with no tracer has none).
    pub fn is_valid(&self) -> bool {
        self.trace_id != 0 && self.span_id != 0
    }

    /// The trace id (`None` when invalid).
    pub fn trace_id(&self) -> Option<TraceId> {
        TraceId::from_u128(self.trace_id)
    }

    /// The span id (`None` when invalid).
    pub fn span_id(&self) -> Option<SpanId> {
        SpanId::from_u64(self.span_id)
    }

    /// Whether the trace is sampled (recorded and exported).
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// Whether it came from another process.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// The `tracestate` to pass on, as received.
    pub fn trace_state(&self) -> Option<&str> {
        self.trace_state.as_deref()
    }

    /// Parses a `traceparent` header, with its `tracestate`. The
    /// `tracestate` is kept only if every member follows the spec's grammar
    /// (see [`valid_trace_state`]); otherwise it is dropped and the
    /// `traceparent` still used, as the spec says.
    ///
    /// Returns `None` for anything the W3C Trace Context spec calls invalid:
    /// wrong length or separators, upper-case hex, version `ff`, all-zero
    /// ids, or a version-00 header with extra fields. A future version's
    /// header is read for its first four fields, as the spec asks.
    ///
    /// ```
    /// use cortex::trace::SpanContext;
    ///
    /// let cx = SpanContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ///     Some("congo=t61rcWkgMzE"),
    /// ).unwrap();
    /// assert!(cx.is_sampled() && cx.is_remote());
    /// assert_eq!(cx.trace_state(), Some("congo=t61rcWkgMzE"));
    /// assert_eq!(cx.to_traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ///
    /// assert!(SpanContext::from_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None).is_none());
    /// assert!(SpanContext::from_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).is_none());
    /// ```
    pub fn from_traceparent(header: &str, trace_state: Option<&str>) -> Option<Self> {
        let header = header.trim_matches(|c| c == ' ' || c == '\t');
        if header.len() < 55 {
            return None;
        }
        let b = header.as_bytes();
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = parse_hex::<2>(&header[0..2])? as u8;
        if version == 0xff {
            return None;
        }
        if header.len() > 55 && (version == 0 || b[55] != b'-') {
            return None;
        }
        let trace_id = parse_hex::<32>(&header[3..35])?;
        let span_id = parse_hex::<16>(&header[36..52])? as u64;
        let flags = parse_hex::<2>(&header[53..55])? as u8;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        let trace_state = trace_state.and_then(valid_trace_state).map(Arc::from);
        Some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            remote: true,
            trace_state,
        })
    }

    /// The `traceparent` header for this context (version 00; of the flags
    /// only `sampled` is set).
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// What a thread knows of its current span: plain data, so reading and
/// switching it is a few loads and stores. The `tracestate`, rare, lives
/// beside it and is touched only when a span has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Current {
    pub(crate) trace_hi: u64,
    pub(crate) trace_lo: u64,
    pub(crate) span_id: u64,
    /// The first span of this trace in this process (tail sampling decides
    /// there); 0 for a context from elsewhere.
    pub(crate) local_root: u64,
    pub(crate) sampled: bool,
    pub(crate) remote: bool,
    pub(crate) has_state: bool,
}

impl Current {
    pub(crate) const NONE: Current = Current {
        trace_hi: 0,
        trace_lo: 0,
        span_id: 0,
        local_root: 0,
        sampled: false,
        remote: false,
        has_state: false,
    };

    #[inline(always)]
    pub(crate) fn is_some(&self) -> bool {
        self.span_id != 0
    }

    #[inline(always)]
    pub(crate) fn trace_id(&self) -> u128 {
        (u128::from(self.trace_hi) << 64) | u128::from(self.trace_lo)
    }

    #[inline(always)]
    pub(crate) fn with_trace_id(mut self, id: u128) -> Self {
        self.trace_hi = (id >> 64) as u64;
        self.trace_lo = id as u64;
        self
    }

    pub(crate) fn to_context(self, state: Option<Arc<str>>) -> SpanContext {
        SpanContext {
            trace_id: self.trace_id(),
            span_id: self.span_id,
            sampled: self.sampled,
            remote: self.remote,
            trace_state: state,
        }
    }

    pub(crate) fn from_context(cx: &SpanContext, local_root: u64) -> Self {
        Current {
            span_id: cx.span_id,
            local_root,
            sampled: cx.sampled,
            remote: cx.remote,
            has_state: cx.trace_state.is_some(),
            ..Current::NONE
        }
        .with_trace_id(cx.trace_id)
    }
}

/// A current span and its `tracestate`, as a future carries it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Active {
    pub(crate) current: Current,
    pub(crate) state: Option<Arc<str>>,
}

#[cfg(any(feature = "actors", feature = "workers"))]
impl Active {
    /// This thread's current span, to carry to another thread (a worker
    /// pool's task, an actor's message).
    #[inline]
    pub(crate) fn capture() -> Self {
        let current = current_raw();
        Active {
            current,
            state: current_state(&current),
        }
    }

    /// Runs `f` with this span current, then puts back what was.
    #[cfg(feature = "workers")]
    #[inline]
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        if !self.current.is_some() && !current_raw().is_some() {
            return f();
        }
        let saved = enter(self.current, self.state);
        let out = f();
        restore(saved);
        out
    }
}

thread_local! {
    static CURRENT: Cell<Current> = const { Cell::new(Current::NONE) };
    static STATE: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
}

/// The current span of this thread (`Current::NONE` outside any).
#[inline(always)]
pub(crate) fn current_raw() -> Current {
    CURRENT.with(Cell::get)
}

/// The current span's `tracestate`, when it has one.
pub(crate) fn current_state(current: &Current) -> Option<Arc<str>> {
    if current.has_state {
        // `try_with`: a span may end while this thread's locals are being
        // destroyed (a span held in another thread local).
        STATE.try_with(|s| s.borrow().clone()).ok().flatten()
    } else {
        None
    }
}

/// Makes `next` current; returns what to restore.
#[inline(always)]
pub(crate) fn enter(next: Current, state: Option<Arc<str>>) -> Active {
    let previous = CURRENT.with(|c| c.replace(next));
    let previous_state = if next.has_state || previous.has_state {
        STATE
            .try_with(|s| std::mem::replace(&mut *s.borrow_mut(), state))
            .ok()
            .flatten()
    } else {
        None
    };
    Active {
        current: previous,
        state: previous_state,
    }
}

/// Puts back what [`enter`] returned.
#[inline(always)]
pub(crate) fn restore(saved: Active) {
    let _ = enter(saved.current, saved.state);
}

/// The ids of the current span when it is sampled: an exemplar's. (Callers
/// ask [`tracing_on`] first.)
#[inline(always)]
pub(crate) fn sampled_current() -> Option<(u128, u64)> {
    let c = current_raw();
    (c.sampled && c.is_some()).then(|| (c.trace_id(), c.span_id))
}

/// Whether any tracer exists (until then exemplars are not looked for).
#[inline(always)]
pub(crate) fn tracing_on() -> bool {
    TRACING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Set once any tracer exists: until then no exemplar lookup touches the
/// thread-local.
pub(crate) static TRACING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The context of the span current on this thread (or in this task), if
/// any.
pub fn current() -> Option<SpanContext> {
    let c = current_raw();
    c.is_some().then(|| c.to_context(current_state(&c)))
}

/// A future that makes its span current each time it is polled, so spans
/// started inside it (on whatever thread polls it) are children of that
/// span. Made by [`in_current_span`] and by `#[traced]` on async fns.
#[derive(Debug)]
pub struct Instrumented<F> {
    inner: F,
    /// `None`: no span to carry; the future is polled as it is.
    active: Option<Active>,
}

impl<F> Instrumented<F> {
    pub(crate) fn new(inner: F, active: Option<Active>) -> Self {
        Instrumented { inner, active }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of
        // `self`, and `active` is never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(active) = &this.active else {
            // SAFETY: see above.
            return unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx);
        };
        let previous = enter(active.current, active.state.clone());
        struct Restore(Option<Active>);
        impl Drop for Restore {
            #[inline(always)]
            fn drop(&mut self) {
                if let Some(p) = self.0.take() {
                    restore(p);
                }
            }
        }
        let _restore = Restore(Some(previous));
        // SAFETY: see above.
        unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}

/// Wraps `future` so it runs with the current span as its current span,
/// wherever it is polled: what a task given to `tokio::spawn` needs to stay
/// in its parent's trace.
pub fn in_current_span<F: Future>(future: F) -> Instrumented<F> {
    let current = current_raw();
    let state = current_state(&current);
    Instrumented::new(future, Some(Active { current, state }))
}

/// `tokio::spawn`, with the task carrying the current span.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use cortex::trace::{self, InMemoryExporter, Tracer};
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder().exporter(exporter.clone()).build();
/// let parent = tracer.start("parent");
/// let _in = parent.enter();
/// let child_tracer = tracer;
/// trace::spawn(async move { child_tracer.start("child"); }).await.unwrap();
/// drop(_in);
/// drop(parent);
/// tracer.force_flush();
/// let spans = exporter.spans();
/// let parent_id = spans.iter().find(|s| s.name == "parent").unwrap().span_id;
/// let child = spans.iter().find(|s| s.name == "child").unwrap();
/// assert_eq!(child.parent_span_id, Some(parent_id));
/// # }
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(in_current_span(future))
}

/// The `traceparent` (and `tracestate`) to send with an outgoing request
/// made in the current span, or `None` outside any span.
pub fn outgoing_headers() -> Option<(String, Option<String>)> {
    current().map(|cx| {
        (
            cx.to_traceparent(),
            cx.trace_state.as_deref().map(str::to_owned),
        )
    })
}

/// Adds `traceparent` (and `tracestate`) for the current span to an
/// outgoing request's headers; does nothing outside a span.
#[cfg(feature = "http")]
pub fn inject(headers: &mut http::HeaderMap) {
    if let Some((parent, state)) = outgoing_headers() {
        if let Ok(v) = http::HeaderValue::from_str(&parent) {
            headers.insert("traceparent", v);
        }
        if let Some(v) = state.and_then(|s| http::HeaderValue::from_str(&s).ok()) {
            headers.insert("tracestate", v);
        }
    }
}

/// The caller's context from incoming request headers; `None` (start a new
/// trace) when there is no valid `traceparent`, or more than one (the spec
/// calls a repeated `traceparent` invalid). Several `tracestate` headers
/// are one list, joined in order.
#[cfg(feature = "http")]
pub fn extract(headers: &http::HeaderMap) -> Option<SpanContext> {
    let mut parents = headers.get_all("traceparent").iter();
    let parent = parents.next()?.to_str().ok()?;
    if parents.next().is_some() {
        return None;
    }
    // Several tracestate lines are one list.
    let state: Vec<&str> = headers
        .get_all("tracestate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let state = (!state.is_empty()).then(|| state.join(","));
    SpanContext::from_traceparent(parent, state.as_deref())
}

/// Checks a `tracestate` value against the W3C Trace Context grammar and
/// returns it with empty members removed, or `None` when it must be
/// discarded: a member that is not `key=value`, a key that is not a simple
/// key (`lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`) or a
/// multi-tenant one (`tenant@system`, tenant up to 241 characters starting
/// with a letter or digit, system up to 14 starting with a letter), a value
/// longer than 256 characters, ending in a space or holding `,`, `=` or
/// characters outside printable ASCII, a key given twice, or more than 32
/// members.
///
/// ```
/// use cortex::trace::valid_trace_state;
///
/// assert_eq!(valid_trace_state("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"),
///            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".into()));
/// assert_eq!(valid_trace_state("tenant1@vendor=x,,  "), Some("tenant1@vendor=x".into()));
/// assert_eq!(valid_trace_state("Upper=1"), None);
/// assert_eq!(valid_trace_state("a=1,a=2"), None);
/// assert_eq!(valid_trace_state("a=b=c"), None);
/// ```
pub fn valid_trace_state(header: &str) -> Option<String> {
    let mut out = String::with_capacity(header.len());
    let mut keys: Vec<&str> = Vec::new();
    for member in header.split(',') {
        let member = member.trim_matches(|c| c == ' ' || c == '\t');
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) || keys.contains(&key) {
            return None;
        }
        keys.push(key);
        if keys.len() > 32 {
            return None;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(member);
    }
    (!out.is_empty()).then_some(out)
}

fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    match key.split_once('@') {
        None => {
            (1..=256).contains(&b.len())
                && b[0].is_ascii_lowercase()
                && b.iter().all(|&c| key_char(c))
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t.iter().all(|&c| key_char(c))
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && s.iter().all(|&c| key_char(c))
        }
    }
}

fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    let printable = |c: u8| (0x21..=0x7e).contains(&c) && c != b',' && c != b'=';
    (1..=256).contains(&b.len())
        && b.iter().all(|&c| c == b' ' || printable(c))
        && b.last().is_some_and(|&c| c != b' ')
}
