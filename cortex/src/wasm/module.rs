//! Compiling guest modules and making instances of them.

use std::fmt;
use std::sync::Arc;

use wasmtime::{Engine, Linker, Module, Store};

use super::engine::{self, Settings};
use super::error::WasmError;
use super::host::{define_imports, HostState};
use super::instance::{WasmInstance, WasmWorker};
use super::limits::Limits;
use super::memory::{MemoryManager, MemoryOptions};

/// A compiled guest module, ready to instantiate; cheap to clone (one per
/// worker, say).
///
/// A callable export takes `(ptr: i32, len: i32)`, the input buffer, and
/// returns an `i64`: the output's pointer in the high 32 bits and its length
/// in the low ones. The output is either inside the input (a transform in
/// place) or in a buffer the guest got from the host during the call, by
/// importing `cortex.alloc (param i32 i32) (result i32)` (size, alignment;
/// 0 when out of memory). `cortex.free (param i32) (result i32)` gives one
/// back early (0, or -1 for a pointer that is not one of the call's). All of
/// a call's buffers are freed when it returns. A guest with an allocator of
/// its own exports it as `malloc` and the host borrows its buffers' space
/// from it (see [`MemoryOptions::reserved`](super::MemoryOptions::reserved)
/// for why). A call gets at most
/// [`Limits::max_call_allocations`] buffers; with fuel metered, each
/// `alloc` and `free` costs [`HOST_CALL_FUEL`](super::HOST_CALL_FUEL).
///
/// ```
/// use cortex::wasm::{Limits, WasmModule};
///
/// // Upper-cases ASCII in place.
/// let module = WasmModule::from_wat(r#"
///   (module
///     (memory (export "memory") 1)
///     (func (export "upper") (param $ptr i32) (param $len i32) (result i64)
///       (local $i i32) (local $c i32)
///       (block $done (loop $next
///         (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
///         (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
///         (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
///           (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
///         (local.set $i (i32.add (local.get $i) (i32.const 1)))
///         (br $next)))
///       (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
///               (i64.extend_i32_u (local.get $len)))))
/// "#, Limits::default().fuel(1_000_000)).unwrap();
///
/// let mut instance = module.instantiate().unwrap();
/// assert_eq!(instance.call("upper", b"hello, wasm").unwrap(), b"HELLO, WASM");
/// ```
#[derive(Clone)]
pub struct WasmModule {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    engine: Engine,
    module: Module,
    linker: Linker<HostState>,
    limits: Limits,
    deadline_ticks: u64,
}

impl fmt::Debug for WasmModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmModule")
            .field("name", &self.inner.module.name())
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl WasmModule {
    /// Compiles a module from WebAssembly text.
    ///
    /// # Errors
    /// [`WasmError::Compile`] with the parser's or validator's message;
    /// [`WasmError::BadLimits`] for limits that cannot be kept.
    pub fn from_wat(text: &str, limits: Limits) -> Result<Self, WasmError> {
        Self::build(limits, |engine| Module::new(engine, text.as_bytes()))
    }

    /// Compiles a module from its binary (`.wasm` bytes).
    ///
    /// # Errors
    /// [`WasmError::Compile`] with the validator's message;
    /// [`WasmError::BadLimits`] for limits that cannot be kept.
    pub fn from_bytes(bytes: &[u8], limits: Limits) -> Result<Self, WasmError> {
        Self::build(limits, |engine| Module::from_binary(engine, bytes))
    }

    fn build(
        limits: Limits,
        compile: impl FnOnce(&Engine) -> wasmtime::Result<Module>,
    ) -> Result<Self, WasmError> {
        if let Some(d) = limits.deadline.filter(|d| *d < super::MIN_DEADLINE) {
            return Err(WasmError::BadLimits(format!(
                "a deadline of {d:?} is shorter than the {:?} the deadline clock can keep",
                super::MIN_DEADLINE
            )));
        }
        let engine = engine::shared(Settings::for_limits(&limits))?;
        let module = compile(&engine).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        define_imports(&mut linker).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        let deadline_ticks = limits.deadline.map_or(0, engine::ticks);
        Ok(WasmModule {
            inner: Arc::new(ModuleInner {
                engine,
                module,
                linker,
                limits,
                deadline_ticks,
            }),
        })
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// A new instance with its own memory and memory manager.
    ///
    /// # Errors
    /// [`WasmError::Instantiate`] (an import the host does not offer, a
    /// memory above the limit, a start function that failed), or
    /// [`WasmError::NoMemory`].
    pub fn instantiate(&self) -> Result<WasmInstance, WasmError> {
        let inner = &self.inner;
        let mut store = Store::new(&inner.engine, HostState::new(&inner.limits));
        store.limiter(|s| &mut s.limits);
        self.arm(&mut store)
            .map_err(|e| WasmError::Instantiate(format!("{e:#}")))?;
        let instance = inner
            .linker
            .instantiate(&mut store, &inner.module)
            .map_err(|e| WasmError::Instantiate(format!("{e:#}")))?;
        let mut options = MemoryOptions::default().max_pages(inner.limits.max_memory_pages);
        if let Some(r) = inner.limits.reserved {
            options = options.reserved(r);
        }
        if let Some(m) = &inner.limits.metrics {
            options = options.metrics(m);
        }
        let manager = MemoryManager::for_instance(&mut store, &instance, options)?;
        store.data_mut().manager = Some(Box::new(manager));
        Ok(WasmInstance::new(self.clone(), store, instance))
    }

    /// A lazily instantiated instance that replaces itself when poisoned:
    /// the per-worker state for a [`WorkerPool`](crate::workers::WorkerPool).
    pub fn worker(&self) -> WasmWorker {
        WasmWorker::new(self.clone())
    }

    /// Gives the store this module's fuel and deadline for one call.
    pub(crate) fn arm(&self, store: &mut Store<HostState>) -> wasmtime::Result<()> {
        if let Some(fuel) = self.inner.limits.fuel {
            store.set_fuel(fuel)?;
        }
        if self.inner.limits.deadline.is_some() {
            store.set_epoch_deadline(self.inner.deadline_ticks);
        }
        Ok(())
    }
}
