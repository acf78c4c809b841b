//! Tail sampling: spans of open traces held until their local root ends,
//! then kept or let go as a whole.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::data::RawSpan;
use super::pipeline::{DropReason, Pipeline};
use super::sampler::{ratio_keeps, TailSampling};

/// Spans of open traces, held until their local root ends.
pub(crate) struct TailBuffer {
    config: TailSampling,
    state: Mutex<TailState>,
}

/// Decisions remembered for spans that end after their root (a task the
/// request spawned, say): two generations of this many traces.
const DECIDED: usize = 4096;

#[derive(Default)]
struct TailState {
    traces: HashMap<(u128, u64), Held>,
    buffered: usize,
    decided: [HashMap<(u128, u64), bool>; 2],
    /// Raw clock reading at the last sweep for traces held too long.
    last_sweep: u64,
}

/// The export thread looks for traces held too long at most this often.
const SWEEP_EVERY_NANOS: u64 = 1_000_000_000;

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

    /// Spans held at most.
    pub(crate) fn max_buffered(&self) -> usize {
        self.config.max_buffered_spans
    }

    /// Takes an ended span; when it is the local root, decides for the
    /// whole trace and hands what is kept to `pipeline`, in one piece.
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
        let held = {
            let mut s = self.state.lock();
            let held = s.traces.remove(&key).unwrap_or_default();
            s.buffered -= held.spans.len();
            // Decided before it ended (released at a flush, or held too
            // long): the root follows, as its late children do.
            if let Some(keep) = s.decision(&key) {
                drop(s);
                if keep {
                    pipeline.push(span);
                }
                return;
            }
            let keep = failed
                || held.error
                || u128::from(span.duration_nanos()) >= self.config.latency.as_nanos()
                || ratio_keeps(self.config.keep_ratio, key.0);
            s.remember(key, keep);
            keep.then_some(held)
        };
        if let Some(mut held) = held {
            held.spans.push(span);
            pipeline.push_trace(held.spans);
        }
    }

    /// Decides held traces without their root, kept when a span failed or
    /// by the keep ratio, and puts the kept spans in `into`: every held
    /// trace when `everything` (a flush or shutdown), else, at most once a
    /// second, those held longer than `max_hold` (their root never ended
    /// here: lost, or not sampled here), so nothing is held forever. Spans of these traces that end later follow the
    /// decision.
    pub(crate) fn release(&self, everything: bool, into: &mut Vec<RawSpan>) {
        let now = super::clock::raw_now();
        let clock = crate::__private::clock();
        let max_hold = u64::try_from(self.config.max_hold.as_nanos()).unwrap_or(u64::MAX);
        let mut s = self.state.lock();
        if !everything {
            if now > s.last_sweep && clock.delta_as_nanos(s.last_sweep, now) < SWEEP_EVERY_NANOS {
                return;
            }
            s.last_sweep = now;
        }
        let due: Vec<(u128, u64)> = s
            .traces
            .iter()
            .filter(|(_, h)| {
                everything || (now > h.since && clock.delta_as_nanos(h.since, now) > max_hold)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(held) = s.traces.remove(&key) else {
                continue;
            };
            s.buffered -= held.spans.len();
            let keep = held.error || ratio_keeps(self.config.keep_ratio, key.0);
            s.remember(key, keep);
            if keep {
                into.extend(held.spans);
            }
        }
    }
}
