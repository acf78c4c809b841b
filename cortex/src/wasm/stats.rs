//! Counts of a memory manager, and their metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

/// A memory manager's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Bytes in live allocations (each rounded up to 8 bytes).
    pub allocated_bytes: u64,
    /// Bytes of the heap not allocated.
    pub free_bytes: u64,
    /// The most bytes ever allocated at once.
    pub peak_allocated_bytes: u64,
    /// Allocations made.
    pub allocations: u64,
    /// Allocations freed.
    pub frees: u64,
    /// Allocations live now.
    pub live_allocations: u64,
    /// Free blocks (1 when everything is freed: neighbours merge).
    pub free_blocks: u64,
    /// Size of the largest free block.
    pub largest_free_block: u64,
    /// `1 - largest_free_block / free_bytes`: 0 when the free space is one
    /// block, near 1 when it is in crumbs.
    pub fragmentation: f64,
    /// Times the memory was grown.
    pub growths: u64,
}

/// The counts one manager publishes for scrapes; it alone writes them.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub(crate) allocated: AtomicU64,
    pub(crate) free: AtomicU64,
    pub(crate) peak: AtomicU64,
    pub(crate) allocs: AtomicU64,
    pub(crate) frees: AtomicU64,
    pub(crate) growths: AtomicU64,
    pub(crate) fragmentation_bits: AtomicU64,
    group: Option<Arc<Group>>,
}

/// The managers sharing a `memory` label, and the counts of those gone.
#[derive(Debug, Default)]
struct Group {
    state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    live: Vec<Arc<Published>>,
    retired_allocs: u64,
    retired_frees: u64,
    retired_growths: u64,
}

static GROUPS: LazyLock<Mutex<HashMap<String, Arc<Group>>>> = LazyLock::new(Default::default);

impl Published {
    /// Counts for a new manager, added to the metrics of `name`.
    pub(crate) fn register(name: &str) -> Arc<Published> {
        let group = Arc::clone(
            GROUPS
                .lock()
                .entry(name.to_owned())
                .or_insert_with(|| new_group(name)),
        );
        let published = Arc::new(Published {
            group: Some(Arc::clone(&group)),
            ..Default::default()
        });
        group.state.lock().live.push(Arc::clone(&published));
        published
    }

    /// The manager is gone: its counters move to the group's totals, so
    /// they never go down, and its gauges leave the sums.
    pub(crate) fn retire(self: Arc<Self>) {
        let Some(group) = &self.group else { return };
        let mut state = group.state.lock();
        state.live.retain(|p| !Arc::ptr_eq(p, &self));
        state.retired_allocs += self.allocs.load(Relaxed);
        state.retired_frees += self.frees.load(Relaxed);
        state.retired_growths += self.growths.load(Relaxed);
    }
}

/// A metric name, its help, and how to read it from a group.
type Series = (&'static str, &'static str, fn(&GroupState) -> f64);

fn new_group(name: &str) -> Arc<Group> {
    let group = Arc::new(Group::default());
    let registry = crate::metrics::global();
    let gauges: [Series; 4] = [
        (
            "cortex_wasm_memory_allocated_bytes",
            "Bytes allocated in guest memories by the host-side manager.",
            |s| sum(s, |p| p.allocated.load(Relaxed)),
        ),
        (
            "cortex_wasm_memory_free_bytes",
            "Bytes of guest heaps not allocated.",
            |s| sum(s, |p| p.free.load(Relaxed)),
        ),
        (
            "cortex_wasm_memory_peak_allocated_bytes",
            "Largest number of bytes allocated at once, added over live managers.",
            |s| sum(s, |p| p.peak.load(Relaxed)),
        ),
        (
            "cortex_wasm_memory_fragmentation_ratio",
            "1 - largest free block / free bytes, the worst of the live managers (refreshed after each guest call and each stats()).",
            |s| {
                s.live
                    .iter()
                    .map(|p| f64::from_bits(p.fragmentation_bits.load(Relaxed)))
                    .fold(0.0, f64::max)
            },
        ),
    ];
    for (metric, help, read) in gauges {
        if let Ok(family) = registry.gauge_family(metric, help, &["memory"]) {
            let g = Arc::clone(&group);
            family
                .core()
                .attach_derived(&[name], Arc::new(move || read(&g.state.lock())));
        }
    }
    let counters: [Series; 3] = [
        (
            "cortex_wasm_memory_allocations_total",
            "Allocations made in guest memories.",
            |s| {
                (s.retired_allocs + s.live.iter().map(|p| p.allocs.load(Relaxed)).sum::<u64>())
                    as f64
            },
        ),
        (
            "cortex_wasm_memory_frees_total",
            "Allocations freed in guest memories.",
            |s| {
                (s.retired_frees + s.live.iter().map(|p| p.frees.load(Relaxed)).sum::<u64>()) as f64
            },
        ),
        (
            "cortex_wasm_memory_growths_total",
            "Times a guest memory was grown by the manager.",
            |s| {
                (s.retired_growths + s.live.iter().map(|p| p.growths.load(Relaxed)).sum::<u64>())
                    as f64
            },
        ),
    ];
    for (metric, help, read) in counters {
        if let Ok(family) = registry.counter_family(metric, help, &["memory"]) {
            let g = Arc::clone(&group);
            family
                .core()
                .attach_derived(&[name], Arc::new(move || read(&g.state.lock())));
        }
    }
    group
}

fn sum(s: &GroupState, f: impl Fn(&Published) -> u64) -> f64 {
    s.live.iter().map(|p| f(p)).sum::<u64>() as f64
}
