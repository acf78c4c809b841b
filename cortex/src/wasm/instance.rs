//! A running guest and the call protocol: input in, answer out, the call's
//! buffers freed after.

use std::fmt;

use hashbrown::HashMap;
use wasmtime::{Instance, Store, Trap, TypedFunc};

use super::error::WasmError;
use super::heap::GuestPtr;
use super::host::HostState;
use super::memory::MemoryManager;
use super::module::WasmModule;
use super::stats::MemoryStats;

/// The signature of a function [`WasmInstance::call`] can call.
const CALL_SIGNATURE: &str =
    "(param i32 i32) (result i64): input pointer and length in, (pointer << 32 | length) out";

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
    pub(crate) fn new(module: WasmModule, store: Store<HostState>, instance: Instance) -> Self {
        WasmInstance {
            module,
            store,
            instance,
            functions: HashMap::new(),
            poisoned: false,
        }
    }

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
            max_pages: self.module.limits().max_memory_pages,
        })?;
        // Armed first: the input's space may come from the guest's malloc,
        // which runs on the call's fuel and deadline.
        self.module
            .arm(&mut self.store)
            .map_err(|e| self.classify(function, e))?;
        let ptr = match self.alloc(len, 8) {
            Ok(ptr) => ptr,
            Err(error) => {
                // A guest malloc that trapped leaves the guest in doubt.
                self.poisoned = matches!(error, WasmError::Trap { .. });
                return Err(error);
            }
        };
        self.write(&ptr, input)?;
        self.store.data_mut().input = Some(ptr);
        let result = match self.functions.get(function) {
            Some(func) => func.call(&mut self.store, (ptr.offset() as i32, len as i32)),
            None => Err(wasmtime::Error::msg("export vanished")),
        };
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
        let inside = data.holds(offset, len);
        let manager = data.manager.as_ref().ok_or(WasmError::NoMemory)?;
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
        let allowance = self.module.limits().max_call_allocations;
        self.store.data_mut().end_call(allowance);
    }

    fn classify(&self, function: &str, e: wasmtime::Error) -> WasmError {
        let limits = self.module.limits();
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
    pub(crate) fn new(module: WasmModule) -> Self {
        WasmWorker {
            module,
            instance: None,
        }
    }

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
