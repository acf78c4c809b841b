//! Between ended spans and the exporter: a bounded lock-free queue, drained
//! in batches by one background thread; and the tail-sampling buffer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
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
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 512,
            delay: Duration::from_secs(1),
            queue: 4096,
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

pub(crate) struct Pipeline {
    queue: ArrayQueue<RawSpan>,
    max_batch: usize,
    delay: Duration,
    signal: Mutex<Signal>,
    cv: Condvar,
    closed: AtomicBool,
    last_warn: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pipeline {
    pub(crate) fn start(exporter: Box<dyn SpanExporter>, config: &BatchConfig) -> Arc<Pipeline> {
        register_metrics();
        let pipeline = Arc::new(Pipeline {
            queue: ArrayQueue::new(config.queue.max(1)),
            max_batch: config.max_batch.max(1),
            delay: config.delay,
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

    /// Queues an ended span; drops it (counted) when the queue is full.
    #[inline]
    pub(crate) fn push(&self, span: RawSpan) {
        if self.closed.load(Ordering::Relaxed) {
            self.dropped(DropReason::Shutdown, 1);
            return;
        }
        match self.queue.push(span) {
            Ok(()) => {
                // Every `max_batch` spans a thread ends, it wakes the export
                // thread. (Asking the queue its length would read the line
                // the export thread writes: a cache miss on every span.)
                let due = PUSHED.with(|n| {
                    let next = n.get() + 1;
                    n.set(if next >= self.max_batch { 0 } else { next });
                    next >= self.max_batch
                });
                if due {
                    self.wake();
                }
            }
            Err(_) => self.dropped(DropReason::QueueFull, 1),
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
            while let Some(span) = self.queue.pop() {
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
                while let Some(span) = self.queue.pop() {
                    batch.push(span.into_data());
                }
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
    pub(crate) fn flush(&self) {
        let mut s = self.signal.lock();
        if s.stopped {
            return;
        }
        s.flush_requested += 1;
        let generation = s.flush_requested;
        self.cv.notify_all();
        while s.flushed < generation && !s.stopped {
            self.cv.wait(&mut s);
        }
    }

    /// Flushes, stops the thread and shuts the exporter down.
    pub(crate) fn shutdown(&self) {
        {
            let mut s = self.signal.lock();
            s.shutdown = true;
            self.cv.notify_all();
            while !s.stopped {
                self.cv.wait(&mut s);
            }
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// Spans of open traces, held until their local root ends.
pub(crate) struct TailBuffer {
    config: TailSampling,
    state: Mutex<TailState>,
}

#[derive(Default)]
struct TailState {
    traces: HashMap<(u128, u64), Held>,
    buffered: usize,
}

#[derive(Default)]
struct Held {
    spans: Vec<RawSpan>,
    error: bool,
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
            if s.buffered >= self.config.max_buffered_spans {
                drop(s);
                pipeline.dropped(DropReason::TailBufferFull, 1);
                return;
            }
            s.buffered += 1;
            let held = s.traces.entry(key).or_default();
            held.error |= failed;
            held.spans.push(span);
            return;
        }
        let held = {
            let mut s = self.state.lock();
            let held = s.traces.remove(&key).unwrap_or_default();
            s.buffered -= held.spans.len();
            held
        };
        let keep = failed
            || held.error
            || u128::from(span.duration_nanos()) >= self.config.latency.as_nanos()
            || ratio_keeps(self.config.keep_ratio, key.0);
        if keep {
            for s in held.spans {
                pipeline.push(s);
            }
            pipeline.push(span);
        }
    }
}
