//! Between ended spans and the exporter: a bounded lock-free queue, drained
//! in batches by one background thread; and the tail-sampling buffer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::export::SpanExporter;
use super::sampler::{ratio_keeps, TailSampling};
use super::span::{RawSpan, SpanData};
use crate::metrics::Counter;

/// Why spans were not exported.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DropReason {
    QueueFull = 0,
    ExportFailed = 1,
    TailBufferFull = 2,
    Shutdown = 3,
}

const DROP_REASONS: [&str; 4] = [
    "queue_full",
    "export_failed",
    "tail_buffer_full",
    "shutdown",
];

struct Metrics {
    dropped: [Counter; 4],
    exported: Counter,
}

fn metrics() -> Option<&'static Metrics> {
    static METRICS: std::sync::LazyLock<Option<Metrics>> = std::sync::LazyLock::new(|| {
        let registry = crate::metrics::global();
        let dropped = registry
            .counter_family(
                "cortex_trace_spans_dropped_total",
                "Ended spans that were not exported, by reason.",
                &["reason"],
            )
            .ok()?;
        let exported = registry
            .counter(
                "cortex_trace_spans_exported_total",
                "Spans the exporter accepted.",
            )
            .ok()?;
        let handle = |i: usize| dropped.with_labels(&[DROP_REASONS[i]]).ok();
        Some(Metrics {
            dropped: [handle(0)?, handle(1)?, handle(2)?, handle(3)?],
            exported,
        })
    });
    METRICS.as_ref()
}

/// Registers the trace metrics so they show at zero.
pub(crate) fn register_metrics() {
    let _ = metrics();
}

thread_local! {
    static PUSHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Batching settings.
#[derive(Debug, Clone)]
pub(crate) struct BatchConfig {
    pub(crate) max_batch: usize,
    pub(crate) delay: Duration,
    pub(crate) queue: usize,
    pub(crate) flush_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 512,
            delay: Duration::from_secs(1),
            queue: 2048,
            flush_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct Signal {
    wake: bool,
    flush_requested: u64,
    flushed: u64,
    shutdown: bool,
    stopped: bool,
}

thread_local! {
    /// This thread's rings, by pipeline id (a thread rarely has more than
    /// one): the producing ends, which only this thread touches.
    static PRODUCERS: std::cell::RefCell<Vec<(usize, rtrb::Producer<RawSpan>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

static NEXT_PIPELINE: AtomicU64 = AtomicU64::new(1);

/// Ended spans travel from each thread to the export thread through a ring
/// of the thread's own (single producer, single consumer): pushing a span is
/// a write and a release store, no read-modify-write and no lock, and the
/// export thread drains every ring when it wakes.
pub(crate) struct Pipeline {
    id: usize,
    /// The consuming ends, one per thread that ended a span.
    rings: Mutex<Vec<rtrb::Consumer<RawSpan>>>,
    ring_capacity: usize,
    max_batch: usize,
    /// A thread wakes the export thread after this many spans: a batch, or
    /// a quarter of its ring if that is less, so draining starts well
    /// before the ring is full.
    wake_every: usize,
    delay: Duration,
    flush_timeout: Duration,
    shutdown_timeout: Duration,
    signal: Mutex<Signal>,
    cv: Condvar,
    closed: AtomicBool,
    last_warn: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pipeline {
    pub(crate) fn start(exporter: Box<dyn SpanExporter>, config: &BatchConfig) -> Arc<Pipeline> {
        register_metrics();
        let max_batch = config.max_batch.max(1);
        let pipeline = Arc::new(Pipeline {
            id: NEXT_PIPELINE.fetch_add(1, Ordering::Relaxed) as usize,
            rings: Mutex::new(Vec::new()),
            ring_capacity: config.queue.max(1),
            max_batch,
            wake_every: max_batch.min(config.queue / 4).max(1),
            delay: config.delay,
            flush_timeout: config.flush_timeout,
            shutdown_timeout: config.shutdown_timeout,
            signal: Mutex::new(Signal::default()),
            cv: Condvar::new(),
            closed: AtomicBool::new(false),
            last_warn: AtomicU64::new(0),
            thread: Mutex::new(None),
        });
        let p = Arc::clone(&pipeline);
        let thread = std::thread::Builder::new()
            .name("cortex-trace-export".into())
            .spawn(move || p.run(exporter));
        match thread {
            Ok(t) => *pipeline.thread.lock() = Some(t),
            Err(error) => {
                tracing::error!(target: "cortex::trace", %error, "cannot start the span export thread");
                pipeline.closed.store(true, Ordering::Release);
            }
        }
        pipeline
    }

    /// Queues an ended span in this thread's ring; drops it (counted) when
    /// the ring is full.
    #[inline]
    pub(crate) fn push(&self, span: RawSpan) {
        if self.closed.load(Ordering::Relaxed) {
            self.refuse_after_shutdown();
            return;
        }
        // During this thread's exit the rings may be gone already (a span
        // ended by another thread local's destructor): `push_new_ring`
        // then hands the span over in a ring of its own.
        let mut span = Some(span);
        let pushed = PRODUCERS
            .try_with(|p| {
                let Ok(mut p) = p.try_borrow_mut() else {
                    return Err(span.take());
                };
                match p.iter_mut().find(|(id, _)| *id == self.id) {
                    Some((_, ring)) => match span.take() {
                        Some(s) => ring.push(s).map_err(|_full| None),
                        None => Err(None),
                    },
                    None => Err(span.take()),
                }
            })
            .unwrap_or_else(|_gone| Err(span.take()));
        match pushed {
            Ok(()) => self.count_push(),
            Err(None) => self.dropped(DropReason::QueueFull, 1),
            Err(Some(span)) => self.push_new_ring(span),
        }
    }

    /// A span ended after shutdown: counted, and this thread's ring for the
    /// pipeline is let go.
    #[cold]
    fn refuse_after_shutdown(&self) {
        self.dropped(DropReason::Shutdown, 1);
        let _ = PRODUCERS.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.retain(|(id, _)| *id != self.id);
            }
        });
    }

    /// Every `wake_every` spans a thread ends, it wakes the export thread.
    #[inline]
    fn count_push(&self) {
        let due = PUSHED
            .try_with(|c| {
                let next = c.get() + 1;
                c.set(if next >= self.wake_every { 0 } else { next });
                next >= self.wake_every
            })
            .unwrap_or(true);
        if due {
            self.wake();
        }
    }

    /// The first span this thread ends for this pipeline: make its ring.
    #[cold]
    fn push_new_ring(&self, span: RawSpan) {
        let (mut producer, consumer) = rtrb::RingBuffer::new(self.ring_capacity);
        let _ = producer.push(span);
        self.rings.lock().push(consumer);
        let mut producer = Some(producer);
        // Only when a span ends inside this very function, or while this
        // thread's locals are destroyed: the ring is kept for the export
        // thread (its span is exported), the producer let go.
        let _ = PRODUCERS.try_with(|p| {
            if let (Ok(mut p), Some(producer)) = (p.try_borrow_mut(), producer.take()) {
                p.push((self.id, producer));
            }
        });
        drop(producer);
        self.count_push();
    }

    /// Takes every span waiting in the threads' rings; rings of threads
    /// that ended are let go once empty.
    fn drain(&self, into: &mut Vec<RawSpan>) {
        let mut rings = self.rings.lock();
        for ring in rings.iter_mut() {
            while let Ok(span) = ring.pop() {
                into.push(span);
            }
        }
        rings.retain(|r| !(r.is_abandoned() && r.is_empty()));
    }

    #[cold]
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        if let Some(m) = metrics() {
            m.dropped[reason as usize].inc_by(n);
        }
        // At most one warning a second.
        let now = crate::trace::clock::now_unix_nanos() / 1_000_000_000;
        let last = self.last_warn.load(Ordering::Relaxed);
        if now > last
            && self
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                target: "cortex::trace",
                reason = DROP_REASONS[reason as usize],
                spans = n,
                "dropping spans (counted in cortex_trace_spans_dropped_total)"
            );
        }
    }

    fn wake(&self) {
        self.signal.lock().wake = true;
        self.cv.notify_all();
    }

    fn run(&self, mut exporter: Box<dyn SpanExporter>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut loose = Vec::new();
        loop {
            let (flush_generation, shutdown) = {
                let mut s = self.signal.lock();
                let deadline = Instant::now() + self.delay;
                while !s.wake && !s.shutdown && s.flush_requested == s.flushed {
                    if self.cv.wait_until(&mut s, deadline).timed_out() {
                        break;
                    }
                }
                s.wake = false;
                (s.flush_requested, s.shutdown)
            };
            self.drain(&mut loose);
            for span in loose.drain(..) {
                batch.push(span.into_data());
                if batch.len() == self.max_batch {
                    self.export(&mut *exporter, &mut batch);
                }
            }
            if !batch.is_empty() {
                self.export(&mut *exporter, &mut batch);
            }
            let mut s = self.signal.lock();
            s.flushed = s.flushed.max(flush_generation);
            if shutdown {
                self.closed.store(true, Ordering::Release);
                drop(s);
                // Spans that raced in after the last drain.
                self.drain(&mut loose);
                batch.extend(loose.drain(..).map(RawSpan::into_data));
                if !batch.is_empty() {
                    self.export(&mut *exporter, &mut batch);
                }
                exporter.shutdown();
                let mut s = self.signal.lock();
                s.stopped = true;
                s.flushed = s.flush_requested;
                self.cv.notify_all();
                return;
            }
            self.cv.notify_all();
        }
    }

    fn export(&self, exporter: &mut dyn SpanExporter, batch: &mut Vec<SpanData>) {
        let n = batch.len() as u64;
        match exporter.export(batch) {
            Ok(()) => {
                if let Some(m) = metrics() {
                    m.exported.inc_by(n);
                }
            }
            Err(error) => {
                tracing::warn!(target: "cortex::trace", %error, spans = n, "span export failed");
                self.dropped(DropReason::ExportFailed, n);
            }
        }
        batch.clear();
    }

    /// Exports everything queued so far; returns when the exporter is done
    /// with it.
    /// Exports what has ended; `false` if that did not finish within the
    /// flush timeout (an exporter stuck on a collector, say), or the
    /// pipeline cannot export at all.
    pub(crate) fn flush(&self) -> bool {
        let deadline = std::time::Instant::now() + self.flush_timeout;
        let mut s = self.signal.lock();
        if s.stopped || self.thread.lock().is_none() {
            return false;
        }
        s.flush_requested += 1;
        let generation = s.flush_requested;
        self.cv.notify_all();
        while s.flushed < generation && !s.stopped {
            if self.cv.wait_until(&mut s, deadline).timed_out() {
                tracing::warn!(target: "cortex::trace", timeout = ?self.flush_timeout, "span flush did not finish in time");
                return s.flushed >= generation;
            }
        }
        s.flushed >= generation
    }

    /// Flushes, stops the thread and shuts the exporter down, within the
    /// shutdown timeout; past it, spans still waiting are given up on
    /// (the export thread is left to finish alone) and `false` returned.
    pub(crate) fn shutdown(&self) -> bool {
        let deadline = std::time::Instant::now() + self.shutdown_timeout;
        {
            let mut s = self.signal.lock();
            s.shutdown = true;
            self.cv.notify_all();
            while !s.stopped {
                if self.cv.wait_until(&mut s, deadline).timed_out() {
                    drop(s);
                    self.closed.store(true, Ordering::Release);
                    tracing::warn!(target: "cortex::trace", timeout = ?self.shutdown_timeout, "tracer shutdown did not finish in time; spans still waiting are given up");
                    return false;
                }
            }
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        true
    }
}

/// Spans of open traces, held until their local root ends.
pub(crate) struct TailBuffer {
    config: TailSampling,
    state: Mutex<TailState>,
}

/// Decisions remembered for spans that end after their root (a task the
/// request spawned, say): two generations of this many traces.
const DECIDED: usize = 4096;
/// Held spans whose root has not ended after this long are decided without
/// it (the root was lost, or never sampled here), so nothing is held forever.
const MAX_HOLD_NANOS: u64 = 60_000_000_000;

#[derive(Default)]
struct TailState {
    traces: HashMap<(u128, u64), Held>,
    buffered: usize,
    decided: [HashMap<(u128, u64), bool>; 2],
    roots_since_sweep: usize,
}

#[derive(Default)]
struct Held {
    spans: Vec<RawSpan>,
    error: bool,
    /// Raw clock reading when the first span was held.
    since: u64,
}

impl TailState {
    fn decision(&self, key: &(u128, u64)) -> Option<bool> {
        self.decided[0]
            .get(key)
            .or_else(|| self.decided[1].get(key))
            .copied()
    }

    fn remember(&mut self, key: (u128, u64), keep: bool) {
        if self.decided[0].len() >= DECIDED {
            self.decided[1] = std::mem::take(&mut self.decided[0]);
        }
        self.decided[0].insert(key, keep);
    }
}

impl TailBuffer {
    pub(crate) fn new(config: TailSampling) -> Self {
        TailBuffer {
            config,
            state: Mutex::new(TailState::default()),
        }
    }

    /// Takes an ended span; when it is the local root, decides for the
    /// whole trace and hands what is kept to `pipeline`.
    pub(crate) fn on_end(&self, span: RawSpan, local_root: u64, pipeline: &Pipeline) {
        let key = (span.trace_id, local_root);
        let failed = span.failed;
        if span.span_id != local_root {
            let mut s = self.state.lock();
            // Its root has ended already: the trace's decision stands.
            if let Some(keep) = s.decision(&key) {
                drop(s);
                if keep {
                    pipeline.push(span);
                }
                return;
            }
            if s.buffered >= self.config.max_buffered_spans {
                drop(s);
                pipeline.dropped(DropReason::TailBufferFull, 1);
                return;
            }
            s.buffered += 1;
            let held = s.traces.entry(key).or_default();
            if held.spans.is_empty() {
                held.since = span.end;
            }
            held.error |= failed;
            held.spans.push(span);
            return;
        }
        let keep_rest = |error: bool| error || ratio_keeps(self.config.keep_ratio, key.0);
        let (held, stale) = {
            let mut s = self.state.lock();
            let held = s.traces.remove(&key).unwrap_or_default();
            s.buffered -= held.spans.len();
            let keep = failed
                || held.error
                || u128::from(span.duration_nanos()) >= self.config.latency.as_nanos()
                || keep_rest(false);
            s.remember(key, keep);
            (
                if keep { Some(held) } else { None },
                self.sweep(&mut s, span.end),
            )
        };
        if let Some(held) = held {
            for s in held.spans {
                pipeline.push(s);
            }
            pipeline.push(span);
        }
        for (trace_id, held) in stale {
            if held.error || ratio_keeps(self.config.keep_ratio, trace_id) {
                for s in held.spans {
                    pipeline.push(s);
                }
            }
        }
    }

    /// Every 1024 roots, takes out the traces held longer than
    /// `MAX_HOLD_NANOS` (their root never ended here).
    fn sweep(&self, s: &mut TailState, now_raw: u64) -> Vec<(u128, Held)> {
        s.roots_since_sweep += 1;
        if s.roots_since_sweep < 1024 {
            return Vec::new();
        }
        s.roots_since_sweep = 0;
        let clock = crate::__private::clock();
        let stale: Vec<(u128, u64)> = s
            .traces
            .iter()
            .filter(|(_, h)| {
                now_raw > h.since && clock.delta_as_nanos(h.since, now_raw) > MAX_HOLD_NANOS
            })
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::with_capacity(stale.len());
        for key in stale {
            if let Some(held) = s.traces.remove(&key) {
                s.buffered -= held.spans.len();
                out.push((key.0, held));
            }
        }
        out
    }
}
