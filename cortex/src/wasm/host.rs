//! What the store carries for the host functions, and the functions a guest
//! imports from `cortex`: `alloc` and `free`.
//!
//! A call's buffers are kept by offset, so `free` is one lookup, and there
//! are at most [`Limits::max_call_allocations`] of them, so a guest cannot
//! make the host's bookkeeping grow past that, however often it calls.

use hashbrown::HashMap;
use wasmtime::{Caller, Linker};

use super::heap::GuestPtr;
use super::limits::{Limits, HOST_CALL_FUEL};
use super::memory::MemoryManager;

/// The store's data.
pub(crate) struct HostState {
    /// Taken out while the host uses it (growing needs the store).
    pub(crate) manager: Option<Box<MemoryManager>>,
    /// The input buffer of the call running now.
    pub(crate) input: Option<GuestPtr>,
    /// Buffers the guest got in the call running now, by offset; freed
    /// when it returns.
    pub(crate) call_allocs: HashMap<u32, GuestPtr>,
    /// Buffers the guest may still get in this call.
    pub(crate) allocs_left: u32,
    /// Whether fuel is metered (host calls then cost [`HOST_CALL_FUEL`]).
    pub(crate) metered: bool,
    pub(crate) limits: wasmtime::StoreLimits,
}

impl HostState {
    pub(crate) fn new(limits: &Limits) -> Self {
        HostState {
            manager: None,
            input: None,
            call_allocs: HashMap::new(),
            allocs_left: limits.max_call_allocations,
            metered: limits.fuel.is_some(),
            limits: limits.store_limits(),
        }
    }

    /// Whether `[offset, offset + len)` lies in a live buffer of this call.
    pub(crate) fn holds(&self, offset: u32, len: u32) -> bool {
        let Some(manager) = self.manager.as_ref() else {
            return false;
        };
        let live = |p: &GuestPtr| p.contains(offset, len) && manager.is_live(p);
        // Usually the answer is the input, or starts a buffer.
        self.input.as_ref().is_some_and(live)
            || self.call_allocs.get(&offset).is_some_and(live)
            || self.call_allocs.values().any(live)
    }

    /// Frees what the call left and makes its allowance whole again.
    pub(crate) fn end_call(&mut self, allowance: u32) {
        self.allocs_left = allowance;
        if let Some(manager) = self.manager.as_mut() {
            // Those the guest freed itself are no longer live.
            if let Some(p) = self.input.take() {
                let _ = manager.free(&p);
            }
            // Most calls ask for nothing: skip walking the table.
            if !self.call_allocs.is_empty() {
                for (_, p) in self.call_allocs.drain() {
                    let _ = manager.free(&p);
                }
            }
            manager.refresh_metrics();
        }
    }
}

/// Takes the fuel a host call costs; `false` when the guest has too little
/// left (the call is then refused, and the guest's next instruction runs
/// out).
fn charge(caller: &mut Caller<'_, HostState>) -> bool {
    if !caller.data().metered {
        return true;
    }
    let left = caller.get_fuel().unwrap_or(0);
    let after = left.saturating_sub(HOST_CALL_FUEL);
    let _ = caller.set_fuel(after);
    left >= HOST_CALL_FUEL
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "cortex",
        "alloc",
        |mut caller: Caller<'_, HostState>, size: i32, align: i32| -> i32 {
            if !charge(&mut caller) {
                return 0;
            }
            let data = caller.data_mut();
            if data.allocs_left == 0 {
                tracing::debug!(target: "cortex::wasm", "guest allocation refused: the call's allocation limit is reached");
                return 0;
            }
            let Some(mut manager) = data.manager.take() else {
                return 0;
            };
            let result = manager.alloc(&mut caller, size as u32, align as u32);
            let data = caller.data_mut();
            data.manager = Some(manager);
            match result {
                Ok(ptr) => {
                    data.allocs_left -= 1;
                    data.call_allocs.insert(ptr.offset(), ptr);
                    ptr.offset() as i32
                }
                Err(error) => {
                    tracing::debug!(target: "cortex::wasm", %error, "guest allocation refused");
                    0
                }
            }
        },
    )?;
    linker.func_wrap(
        "cortex",
        "free",
        |mut caller: Caller<'_, HostState>, ptr: i32| -> i32 {
            if !charge(&mut caller) {
                return -1;
            }
            let data = caller.data_mut();
            let Some(manager) = data.manager.as_mut() else {
                return -1;
            };
            let found = match data.call_allocs.remove(&(ptr as u32)) {
                Some(p) => Some(p),
                None => data.input.take_if(|p| p.offset() == ptr as u32),
            };
            match found {
                Some(p) => manager.free(&p).map_or(-1, |()| 0),
                None => -1,
            }
        },
    )?;
    Ok(())
}
