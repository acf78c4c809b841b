//! Expiry of series whose value stopped changing, judged at scrapes.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::series::{FamilyCore, Metric, SeriesKey};

/// A family's expiry: the time to live and what each series looked like.
#[derive(Debug)]
pub(crate) struct Expiry {
    ttl: Duration,
    /// Per series: its fingerprint at the last scrape, and since when it
    /// has had it.
    seen: HashMap<SeriesKey, (u64, Instant)>,
}

impl Expiry {
    pub(crate) fn new(ttl: Duration) -> Self {
        Expiry {
            ttl,
            seen: HashMap::new(),
        }
    }
}

/// Removes the API-made series of `core` unchanged for the ttl.
pub(crate) fn sweep<M: Metric>(core: &FamilyCore<M>) {
    let mut expiry = core.expiry.lock();
    let Some(expiry) = expiry.as_mut() else {
        return;
    };
    let now = Instant::now();
    let mut stale = Vec::new();
    {
        let map = core.series.read();
        expiry.seen.retain(|key, _| map.contains_key(key));
        for (key, series) in map.iter() {
            let Some(metric) = series.metric.as_ref().filter(|_| series.api) else {
                continue;
            };
            let print = metric.fingerprint();
            match expiry.seen.get_mut(key) {
                Some((old, since)) if *old == print => {
                    if now.duration_since(*since) >= expiry.ttl {
                        stale.push(key.clone());
                    }
                }
                Some(entry) => *entry = (print, now),
                None => {
                    expiry.seen.insert(key.clone(), (print, now));
                }
            }
        }
    }
    if stale.is_empty() {
        return;
    }
    let mut map = core.series.write();
    let index = core.index.pin();
    for key in stale {
        // Updated between the two locks: keep it.
        let unchanged = map
            .get(&key)
            .and_then(|s| s.metric.as_ref())
            .is_some_and(|m| {
                expiry
                    .seen
                    .get(&key)
                    .is_some_and(|(p, _)| *p == m.fingerprint())
            });
        if unchanged {
            map.remove(&key);
            index.remove(&key);
            expiry.seen.remove(&key);
            let _ = core
                .cap
                .made
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }
    core.changed();
}
