//! What a pool reports: metrics, gauges and its health.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::pool::Shared;
use crate::metrics::{Buckets, Counter, Family, Histogram, Registry};

pub(super) struct Metrics {
    pub(super) outcomes: Family<Counter>,
    pub(super) duration: Histogram,
}

pub(super) fn metrics(registry: &Registry, pool: &str) -> Option<Metrics> {
    let outcomes = registry
        .counter_family(
            "cortex_worker_pool_tasks_total",
            "Tasks of a worker pool, by outcome.",
            &["pool", "outcome"],
        )
        .ok()?;
    for outcome in [
        "completed",
        "panicked",
        "timed_out",
        "rejected",
        "cancelled",
        "factory_panicked",
    ] {
        let _ = outcomes.with_labels(&[pool, outcome]);
    }
    let duration = registry
        .histogram_family(
            "cortex_worker_pool_task_duration_seconds",
            "Time a worker pool's task ran.",
            &["pool"],
            Buckets::default(),
        )
        .and_then(|f| f.with_labels(&[pool]))
        .ok()?;
    Some(Metrics { outcomes, duration })
}

pub(super) fn attach_gauges<S: Send + 'static>(
    registry: &Registry,
    shared: &Arc<Shared<S>>,
    _m: &Metrics,
) {
    let name = shared.name.to_string();
    if let Ok(depth) = registry.gauge_family(
        "cortex_worker_pool_queue_depth",
        "Tasks waiting in a worker pool's queue.",
        &["pool"],
    ) {
        let w = Arc::downgrade(shared);
        depth.core().attach_derived(
            &[&name],
            Arc::new(move || w.upgrade().map_or(0.0, |s| s.rx.len() as f64)),
        );
    }
    for (metric, help, read) in [
        (
            "cortex_worker_pool_lost_threads",
            "Threads of a worker pool given up on after a timeout, still running their task.",
            (|s: &Shared<S>| s.lost.load(Ordering::Relaxed)) as fn(&Shared<S>) -> usize,
        ),
        (
            "cortex_worker_pool_missing_workers",
            "Workers of a pool not replaced because its lost threads reached max_lost_threads.",
            |s: &Shared<S>| s.missing.load(Ordering::Relaxed),
        ),
    ] {
        if let Ok(family) = registry.gauge_family(metric, help, &["pool"]) {
            let w = Arc::downgrade(shared);
            family.core().attach_derived(
                &[&name],
                Arc::new(move || w.upgrade().map_or(0.0, |s| read(&s) as f64)),
            );
        }
    }
    if let Ok(active) = registry.gauge_family(
        "cortex_worker_pool_active_workers",
        "Workers of a pool running a task.",
        &["pool"],
    ) {
        let w = Arc::downgrade(shared);
        active.core().attach_derived(
            &[&name],
            Arc::new(move || {
                w.upgrade()
                    .map_or(0.0, |s| s.active.load(Ordering::Relaxed) as f64)
            }),
        );
    }
}

pub(super) fn pool_health<S>(shared: &Shared<S>) -> crate::health::Health {
    let missing = shared.missing.load(Ordering::Acquire);
    let failing = shared.failing.load(Ordering::Acquire);
    let threads = shared.threads.lock().len();
    let health = if failing > 0 && failing >= threads {
        crate::health::Health::down()
    } else if missing > 0 || failing > 0 {
        crate::health::Health::degraded()
    } else {
        crate::health::Health::up()
    };
    let health = health.with_detail("failing_to_start", failing);
    health
        .with_detail("threads", shared.threads.lock().len())
        .with_detail("lost", shared.lost.load(Ordering::Acquire))
        .with_detail("missing", missing)
}

pub(super) fn count<S>(shared: &Shared<S>, outcome: &str) {
    if let Some(m) = &shared.metrics {
        let _ = m.outcomes.with(&[&shared.name, outcome], Counter::inc);
    }
}
