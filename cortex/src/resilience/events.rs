//! Per-call event hooks, shared by every policy: registered at run time,
//! called outside any lock, and costing one relaxed load per event while
//! none is registered.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

type Hook<E> = Arc<dyn Fn(&E) + Send + Sync>;

/// The hooks of one policy.
pub(crate) struct Hooks<E> {
    any: AtomicBool,
    list: RwLock<Arc<[Hook<E>]>>,
}

impl<E> Default for Hooks<E> {
    fn default() -> Self {
        Hooks {
            any: AtomicBool::new(false),
            list: RwLock::new(Arc::from(Vec::new())),
        }
    }
}

impl<E> fmt::Debug for Hooks<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("registered", &self.list.read().len())
            .finish()
    }
}

impl<E> Hooks<E> {
    /// Adds a hook.
    pub(crate) fn add(&self, hook: impl Fn(&E) + Send + Sync + 'static) {
        let mut list = self.list.write();
        let mut all: Vec<Hook<E>> = list.iter().cloned().collect();
        all.push(Arc::new(hook));
        *list = Arc::from(all);
        self.any.store(true, Ordering::Release);
    }

    /// Tells every hook; `event` is only made when there is one.
    #[inline(always)]
    pub(crate) fn emit(&self, event: impl FnOnce() -> E) {
        if self.any.load(Ordering::Relaxed) {
            self.emit_slow(event());
        }
    }

    #[cold]
    #[inline(never)]
    fn emit_slow(&self, event: E) {
        // A snapshot, so a hook may register another without a deadlock.
        let list = Arc::clone(&self.list.read());
        for hook in list.iter() {
            hook(&event);
        }
    }
}

/// Events told in the order they happened, each after the lock that
/// ordered them is released: one thread at a time drains the queue, so a
/// hook that causes another event (or registers a hook) neither deadlocks
/// nor sees events out of order.
pub(crate) struct Ordered<E> {
    queue: Mutex<(std::collections::VecDeque<E>, bool)>,
}

impl<E> Default for Ordered<E> {
    fn default() -> Self {
        Ordered {
            queue: Mutex::new((std::collections::VecDeque::new(), false)),
        }
    }
}

impl<E> Ordered<E> {
    /// Queues an event (under the lock that ordered it).
    pub(crate) fn push(&self, event: E) {
        self.queue.lock().0.push_back(event);
    }

    /// Tells `tell` every queued event, unless another thread is already
    /// doing so (it will tell these too).
    pub(crate) fn drain(&self, mut tell: impl FnMut(E)) {
        {
            let mut q = self.queue.lock();
            if q.1 || q.0.is_empty() {
                return;
            }
            q.1 = true;
        }
        loop {
            let next = {
                let mut q = self.queue.lock();
                match q.0.pop_front() {
                    Some(e) => e,
                    None => {
                        q.1 = false;
                        return;
                    }
                }
            };
            tell(next);
        }
    }
}
