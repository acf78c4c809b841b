//! Between ended spans and the exporter: a bounded lock-free queue, drained
//! in batches by one background thread, and a queue of whole traces the
//! tail sampler kept.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::data::{RawSpan, SpanData};
use super::export::SpanExporter;
use super::tail::TailBuffer;
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
    /// Whole traces kept by the tail sampler, exported in batches like the
    /// rest; at most `bulk_limit` spans wait here.
    bulk: Mutex<Bulk>,
    bulk_limit: usize,
    /// The tail sampler whose held traces the export thread sweeps on
    /// time, and releases at a flush or shutdown.
    tail: Option<Arc<TailBuffer>>,
}

#[derive(Default)]
struct Bulk {
    traces: VecDeque<Vec<RawSpan>>,
    spans: usize,
}

impl Pipeline {
    pub(crate) fn start(
        exporter: Box<dyn SpanExporter>,
        config: &BatchConfig,
        tail: Option<Arc<TailBuffer>>,
    ) -> Arc<Pipeline> {
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
            bulk: Mutex::new(Bulk::default()),
            bulk_limit: config
                .queue
                .max(tail.as_ref().map_or(0, |t| t.max_buffered())),
            tail,
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

    /// Queues a whole kept trace, however many spans it has (the export
    /// thread sends it in batches); drops it (counted) only when more than
    /// the bulk limit of spans already wait.
    pub(crate) fn push_trace(&self, spans: Vec<RawSpan>) {
        let n = spans.len();
        if n == 0 {
            return;
        }
        if self.closed.load(Ordering::Relaxed) {
            self.dropped(DropReason::Shutdown, n as u64);
            return;
        }
        {
            let mut bulk = self.bulk.lock();
            if bulk.spans + n > self.bulk_limit {
                drop(bulk);
                self.dropped(DropReason::QueueFull, n as u64);
                return;
            }
            bulk.spans += n;
            bulk.traces.push_back(spans);
        }
        self.wake();
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
        drop(rings);
        let traces = {
            let mut bulk = self.bulk.lock();
            bulk.spans = 0;
            std::mem::take(&mut bulk.traces)
        };
        for trace in traces {
            into.extend(trace);
        }
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
            let (flush_generation, shutdown, flushing) = {
                let mut s = self.signal.lock();
                let deadline = Instant::now() + self.delay;
                while !s.wake && !s.shutdown && s.flush_requested == s.flushed {
                    if self.cv.wait_until(&mut s, deadline).timed_out() {
                        break;
                    }
                }
                s.wake = false;
                (s.flush_requested, s.shutdown, s.flush_requested > s.flushed)
            };
            if let Some(tail) = &self.tail {
                // Held traces: all of them at a flush or shutdown, else
                // those whose root never ended here.
                tail.release(shutdown || flushing, &mut loose);
            }
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
