//! Loading guest modules, running them under limits, and calling them with
//! byte buffers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use wasmtime::{
    Caller, Engine, Instance, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
    TypedFunc,
};

use super::error::WasmError;
use super::heap::GuestPtr;
use super::memory::{MemoryManager, MemoryOptions, PAGE};
use super::stats::MemoryStats;

/// The signature of a function [`WasmInstance::call`] can call.
const CALL_SIGNATURE: &str =
    "(param i32 i32) (result i64): input pointer and length in, (pointer << 32 | length) out";

/// The default per-call deadline of [`Limits`].
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// What a guest may use: memory, tables, fuel, time.
///
/// The defaults bound everything a guest can take: 16 MiB of memory, one
/// memory (multi-memory is off), at most 4 tables of 10,000 elements in
/// all, and a **5 s deadline per call**, so a guest stuck in a loop cannot
/// hold a worker forever. Growing past a limit fails inside the guest
/// (`memory.grow` and `table.grow` return -1); a module that declares more
/// than the limits fails to instantiate with a clear error; host memory
/// never grows for it.
///
/// ```
/// use cortex::wasm::Limits;
/// use std::time::Duration;
///
/// let limits = Limits::default()
///     .fuel(10_000_000)
///     .deadline(Duration::from_millis(200))
///     .max_table_elements(1_000);
/// # let _ = limits;
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    max_memory_pages: u64,
    max_memories: u32,
    max_tables: u32,
    max_table_elements: u32,
    fuel: Option<u64>,
    deadline: Option<Duration>,
    reserved: Option<u32>,
    metrics: Option<String>,
}

impl Default for Limits {
    /// 256 pages (16 MiB) of memory, one memory, 4 tables of 10,000
    /// elements in all, no fuel limit, a 5 s deadline per call.
    fn default() -> Self {
        Limits {
            max_memory_pages: 256,
            max_memories: 1,
            max_tables: 4,
            max_table_elements: 10_000,
            fuel: None,
            deadline: Some(DEFAULT_DEADLINE),
            reserved: None,
            metrics: None,
        }
    }
}

impl Limits {
    /// The most 64 KiB pages the guest's memory may have; the module's own
    /// initial size counts, and the manager grows no further.
    pub fn max_memory_pages(mut self, pages: u64) -> Self {
        self.max_memory_pages = pages;
        self
    }

    /// How many memories a guest may have (default 1; more turns on the
    /// multi-memory proposal for this module).
    pub fn max_memories(mut self, memories: u32) -> Self {
        self.max_memories = memories.max(1);
        self
    }

    /// How many tables a guest may have (default 4).
    pub fn max_tables(mut self, tables: u32) -> Self {
        self.max_tables = tables;
        self
    }

    /// The most elements any one table may have, declared or grown to
    /// (default 10,000).
    pub fn max_table_elements(mut self, elements: u32) -> Self {
        self.max_table_elements = elements;
        self
    }

    /// No deadline: a call may run as long as its fuel (if any) lasts.
    /// Without fuel either, a looping guest spins its thread forever: only
    /// for trusted guests.
    pub fn no_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// Fuel for each call (about one unit per wasm instruction): a call
    /// that uses it all fails with [`WasmError::FuelExhausted`].
    pub fn fuel(mut self, units: u64) -> Self {
        self.fuel = Some(units);
        self
    }

    /// A wall-clock deadline for each call (default 5 s): a call running
    /// past it fails with [`WasmError::DeadlineExceeded`] (checked at loop
    /// heads and function entries, within 5 ms after it passes; one ticker
    /// thread per process keeps the time for every module).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Bytes at the start of memory never handed out (see
    /// [`MemoryOptions::reserved`]).
    pub fn reserved(mut self, bytes: u32) -> Self {
        self.reserved = Some(bytes);
        self
    }

    /// Export the instances' memory counts as metrics with this `memory`
    /// label.
    pub fn metrics(mut self, name: &str) -> Self {
        self.metrics = Some(name.into());
        self
    }
}

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
/// a call's buffers are freed when it returns.
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
    /// [`WasmError::Compile`] with the parser's or validator's message.
    pub fn from_wat(text: &str, limits: Limits) -> Result<Self, WasmError> {
        Self::build(limits, |engine| Module::new(engine, text.as_bytes()))
    }

    /// Compiles a module from its binary (`.wasm` bytes).
    ///
    /// # Errors
    /// [`WasmError::Compile`] with the validator's message.
    pub fn from_bytes(bytes: &[u8], limits: Limits) -> Result<Self, WasmError> {
        Self::build(limits, |engine| Module::from_binary(engine, bytes))
    }

    fn build(
        limits: Limits,
        compile: impl FnOnce(&Engine) -> wasmtime::Result<Module>,
    ) -> Result<Self, WasmError> {
        let engine = super::engine::shared(super::engine::Settings {
            fuel: limits.fuel.is_some(),
            deadline: limits.deadline.is_some(),
            multi_memory: limits.max_memories > 1,
        })?;
        let module = compile(&engine).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        define_imports(&mut linker).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        let deadline_ticks = limits.deadline.map_or(0, super::engine::ticks);
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
        let limits = StoreLimitsBuilder::new()
            .memory_size((inner.limits.max_memory_pages.saturating_mul(PAGE)) as usize)
            .memories(inner.limits.max_memories as usize)
            .tables(inner.limits.max_tables as usize)
            .table_elements(inner.limits.max_table_elements as usize)
            .instances(1)
            .build();
        let mut store = Store::new(
            &inner.engine,
            HostState {
                manager: None,
                call_allocs: Vec::new(),
                limits,
            },
        );
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
        Ok(WasmInstance {
            module: self.clone(),
            store,
            instance,
            functions: HashMap::new(),
            poisoned: false,
        })
    }

    /// A lazily instantiated instance that replaces itself when poisoned:
    /// the per-worker state for a [`WorkerPool`](crate::workers::WorkerPool).
    pub fn worker(&self) -> WasmWorker {
        WasmWorker {
            module: self.clone(),
            instance: None,
        }
    }

    /// Gives the store this module's fuel and deadline for one call.
    fn arm(&self, store: &mut Store<HostState>) -> wasmtime::Result<()> {
        if let Some(fuel) = self.inner.limits.fuel {
            store.set_fuel(fuel)?;
        }
        if self.inner.limits.deadline.is_some() {
            store.set_epoch_deadline(self.inner.deadline_ticks);
        }
        Ok(())
    }
}

/// What the store carries for the host functions.
struct HostState {
    /// Taken out while the host uses it (growing needs the store).
    manager: Option<Box<MemoryManager>>,
    /// Buffers of the call running now, freed when it returns.
    call_allocs: Vec<GuestPtr>,
    limits: StoreLimits,
}

fn define_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "cortex",
        "alloc",
        |mut caller: Caller<'_, HostState>, size: i32, align: i32| -> i32 {
            let Some(mut manager) = caller.data_mut().manager.take() else {
                return 0;
            };
            let result = manager.alloc(&mut caller, size as u32, align as u32);
            let data = caller.data_mut();
            data.manager = Some(manager);
            match result {
                Ok(ptr) => {
                    data.call_allocs.push(ptr);
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
            let data = caller.data_mut();
            let Some(manager) = data.manager.as_mut() else {
                return -1;
            };
            let found = data
                .call_allocs
                .iter()
                .position(|p| p.offset() == ptr as u32 && manager.is_live(p));
            match found {
                Some(i) => {
                    let p = data.call_allocs.swap_remove(i);
                    manager.free(&p).map_or(-1, |()| 0)
                }
                None => -1,
            }
        },
    )?;
    Ok(())
}

/// A running guest: its store, its memory manager and its exports.
pub struct WasmInstance {
    module: WasmModule,
    store: Store<HostState>,
    instance: Instance,
    /// Exports looked up so far; a `TypedFunc` is costly to clone, so calls
    /// borrow it from here.
    functions: HashMap<Box<str>, TypedFunc<(i32, i32), i64>>,
    poisoned: bool,
}

impl fmt::Debug for WasmInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmInstance")
            .field("module", &self.module)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl WasmInstance {
    /// Calls the export `function` with `input` copied into guest memory,
    /// and returns the bytes it answers with.
    ///
    /// # Errors
    /// [`WasmError::Trap`], [`WasmError::FuelExhausted`] or
    /// [`WasmError::DeadlineExceeded`] (these poison the instance),
    /// [`WasmError::BadOutput`], [`WasmError::OutOfMemory`] for an input
    /// that does not fit, [`WasmError::NoFunction`],
    /// [`WasmError::WrongSignature`], [`WasmError::Poisoned`].
    pub fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, WasmError> {
        let mut out = Vec::new();
        self.call_into(function, input, &mut out)?;
        Ok(out)
    }

    /// [`call`](Self::call), appending the answer to `out` (reuse it to
    /// save an allocation per call).
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn call_into(
        &mut self,
        function: &str,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WasmError> {
        if self.poisoned {
            return Err(WasmError::Poisoned);
        }
        self.look_up(function)?;
        let len = u32::try_from(input.len()).map_err(|_| WasmError::OutOfMemory {
            requested: u32::MAX,
            max_pages: self.module.inner.limits.max_memory_pages,
        })?;
        let ptr = self.alloc(len, 8)?;
        self.write(&ptr, input)?;
        self.store.data_mut().call_allocs.push(ptr);
        let result =
            self.module
                .arm(&mut self.store)
                .and_then(|()| match self.functions.get(function) {
                    Some(func) => func.call(&mut self.store, (ptr.offset() as i32, len as i32)),
                    None => Err(wasmtime::Error::msg("export vanished")),
                });
        let answer = match result {
            Ok(packed) => self.take_output(function, packed as u64, out),
            Err(e) => {
                self.poisoned = true;
                let error = self.classify(function, e);
                tracing::debug!(target: "cortex::wasm", %error, "guest call failed");
                Err(error)
            }
        };
        self.release_call_buffers();
        answer
    }

    fn take_output(
        &mut self,
        function: &str,
        packed: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), WasmError> {
        let (offset, len) = ((packed >> 32) as u32, packed as u32);
        let data = self.store.data();
        let manager = data.manager.as_ref().ok_or(WasmError::NoMemory)?;
        let inside = data
            .call_allocs
            .iter()
            .any(|p| p.contains(offset, len) && manager.is_live(p));
        let bytes = manager.memory().data(&self.store);
        match bytes.get(offset as usize..offset as usize + len as usize) {
            Some(b) if inside => {
                out.extend_from_slice(b);
                Ok(())
            }
            _ => Err(WasmError::BadOutput {
                function: function.into(),
                offset,
                len,
            }),
        }
    }

    fn release_call_buffers(&mut self) {
        let data = self.store.data_mut();
        if let Some(manager) = data.manager.as_mut() {
            for p in data.call_allocs.drain(..) {
                // Those the guest freed itself are no longer live.
                let _ = manager.free(&p);
            }
            manager.refresh_metrics();
        }
    }

    fn classify(&self, function: &str, e: wasmtime::Error) -> WasmError {
        let limits = &self.module.inner.limits;
        match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => WasmError::FuelExhausted {
                function: function.into(),
                fuel: limits.fuel.unwrap_or(0),
            },
            Some(Trap::Interrupt) => WasmError::DeadlineExceeded {
                function: function.into(),
                deadline: limits.deadline.unwrap_or_default(),
            },
            Some(trap) => WasmError::Trap {
                function: function.into(),
                message: trap.to_string(),
            },
            None => WasmError::Trap {
                function: function.into(),
                message: format!("{e:#}"),
            },
        }
    }

    /// Finds and checks the export `name` once; later calls find it in
    /// `functions`.
    fn look_up(&mut self, name: &str) -> Result<(), WasmError> {
        if self.functions.contains_key(name) {
            return Ok(());
        }
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| WasmError::NoFunction(name.into()))?;
        let typed =
            func.typed::<(i32, i32), i64>(&self.store)
                .map_err(|_| WasmError::WrongSignature {
                    name: name.into(),
                    expected: CALL_SIGNATURE,
                })?;
        self.functions.insert(name.into(), typed);
        Ok(())
    }

    /// Whether a failed call poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Replaces this instance with a fresh one of the same module (new
    /// memory, new manager).
    ///
    /// # Errors
    /// As [`WasmModule::instantiate`].
    pub fn reset(&mut self) -> Result<(), WasmError> {
        *self = self.module.instantiate()?;
        Ok(())
    }

    fn with_manager<R>(
        &mut self,
        f: impl FnOnce(&mut MemoryManager, &mut Store<HostState>) -> Result<R, WasmError>,
    ) -> Result<R, WasmError> {
        let mut manager = self
            .store
            .data_mut()
            .manager
            .take()
            .ok_or(WasmError::NoMemory)?;
        let result = f(&mut manager, &mut self.store);
        self.store.data_mut().manager = Some(manager);
        result
    }

    fn manager(&self) -> Result<&MemoryManager, WasmError> {
        self.store
            .data()
            .manager
            .as_deref()
            .ok_or(WasmError::NoMemory)
    }

    /// Allocates in the guest's memory; see [`MemoryManager::alloc`].
    ///
    /// # Errors
    /// As [`MemoryManager::alloc`].
    #[inline]
    pub fn alloc(&mut self, size: u32, align: u32) -> Result<GuestPtr, WasmError> {
        self.with_manager(|m, store| m.alloc(store, size, align))
    }

    /// Frees an allocation; see [`MemoryManager::free`].
    ///
    /// # Errors
    /// As [`MemoryManager::free`].
    #[inline]
    pub fn free(&mut self, ptr: &GuestPtr) -> Result<(), WasmError> {
        match self.store.data_mut().manager.as_mut() {
            Some(m) => m.free(ptr),
            None => Err(WasmError::NoMemory),
        }
    }

    /// Writes at the start of an allocation; see [`MemoryManager::write`].
    ///
    /// # Errors
    /// As [`MemoryManager::write`].
    pub fn write(&mut self, ptr: &GuestPtr, bytes: &[u8]) -> Result<(), WasmError> {
        let manager = self.manager()?;
        let (memory, range) = (manager.memory(), manager.range(ptr, 0, bytes.len() as u64)?);
        match memory.data_mut(&mut self.store).get_mut(range) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(WasmError::UnknownPointer {
                offset: ptr.offset(),
            }),
        }
    }

    /// Copies bytes out of an allocation; see [`MemoryManager::read`].
    ///
    /// # Errors
    /// As [`MemoryManager::read`].
    pub fn read(&self, ptr: &GuestPtr, len: u32) -> Result<Vec<u8>, WasmError> {
        self.manager()?.read(&self.store, ptr, len)
    }

    /// Borrows an allocation's bytes; see [`MemoryManager::view`].
    ///
    /// # Errors
    /// As [`MemoryManager::view`].
    pub fn view(&self, ptr: &GuestPtr) -> Result<&[u8], WasmError> {
        self.manager()?.view(&self.store, ptr)
    }

    /// The memory manager's counts.
    pub fn memory_stats(&self) -> Option<MemoryStats> {
        self.manager().ok().map(MemoryManager::stats)
    }
}

/// An instance made on first use and made again after it is poisoned: the
/// per-worker state of a [`WorkerPool`](crate::workers::WorkerPool), so each
/// worker thread owns its own guest.
#[derive(Debug)]
pub struct WasmWorker {
    module: WasmModule,
    instance: Option<WasmInstance>,
}

impl WasmWorker {
    /// The instance, instantiated now if there is none or the last was
    /// poisoned.
    ///
    /// # Errors
    /// As [`WasmModule::instantiate`].
    pub fn instance(&mut self) -> Result<&mut WasmInstance, WasmError> {
        if self
            .instance
            .as_ref()
            .is_some_and(WasmInstance::is_poisoned)
        {
            tracing::warn!(target: "cortex::wasm", "replacing a poisoned guest instance");
            self.instance = None;
        }
        match &mut self.instance {
            Some(i) => Ok(i),
            slot => Ok(slot.insert(self.module.instantiate()?)),
        }
    }

    /// Calls `function` on the instance; see [`WasmInstance::call`].
    ///
    /// # Errors
    /// As [`WasmInstance::call`] and [`WasmModule::instantiate`].
    pub fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, WasmError> {
        self.instance()?.call(function, input)
    }
}
