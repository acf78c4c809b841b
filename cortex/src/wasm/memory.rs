//! The memory manager: the host-side allocator joined to a wasmtime memory.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use wasmtime::{AsContext, AsContextMut, Instance, Memory, StoreContext, TypedFunc};

use super::error::WasmError;
use super::heap::{GuestPtr, Heap, GRANULE};
use super::stats::{MemoryStats, Published};

/// A WebAssembly page.
pub const PAGE: u64 = 64 * 1024;
/// The most pages a 32-bit memory can have (4 GiB).
const MAX_PAGES: u64 = 1 << 16;
/// The least the host borrows from a guest's `malloc` at a time.
const ARENA: u64 = 64 * 1024;

static NEXT_OWNER: AtomicU32 = AtomicU32::new(1);

/// How a [`MemoryManager`] treats its memory.
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    pub(crate) reserved: Option<u32>,
    pub(crate) max_pages: Option<u64>,
    pub(crate) metrics: Option<String>,
    pub(crate) guest_malloc: bool,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            reserved: None,
            max_pages: None,
            metrics: None,
            guest_malloc: true,
        }
    }
}

impl MemoryOptions {
    /// Never hand out the first `bytes` bytes (the guest's data and stack).
    /// Without it, all the memory the module starts with is left to the
    /// guest, and the host hands out only pages it grew itself. Set this
    /// only for a guest known to leave the rest of its initial memory alone:
    /// `__heap_base` is not where a guest's memory ends, since its own
    /// `malloc` starts there.
    ///
    /// A guest with its own allocator should export it as `malloc`
    /// (`(param i32) (result i32)`, as C's; with clang,
    /// `-Wl,--export=malloc`): the host then borrows its buffers' space from
    /// it, in arenas of 64 KiB or more, and never touches a page the
    /// guest's allocator could claim (see [`guest_malloc`](Self::guest_malloc)).
    /// Without that, an allocator that claims all the memory there is when
    /// first used (wasi-libc's dlmalloc built with LLVM 15 or older does)
    /// would take pages the host grew before its first `malloc`.
    pub fn reserved(mut self, bytes: u32) -> Self {
        self.reserved = Some(bytes);
        self
    }

    /// Grow the memory up to this many 64 KiB pages at most (the memory's
    /// own declared maximum applies too).
    pub fn max_pages(mut self, pages: u64) -> Self {
        self.max_pages = Some(pages);
        self
    }

    /// Whether to borrow the host's arenas from the guest's exported
    /// `malloc` when it has one (default `true`; see
    /// [`reserved`](Self::reserved)). `false` makes the host grow pages of
    /// its own even then.
    pub fn guest_malloc(mut self, borrow: bool) -> Self {
        self.guest_malloc = borrow;
        self
    }

    /// Export this manager's counts as metrics in the global registry,
    /// under the `memory` label `name` (managers with the same name are
    /// added up).
    pub fn metrics(mut self, name: &str) -> Self {
        self.metrics = Some(name.into());
        self
    }
}

/// Allocates buffers in a guest's linear memory, with the bookkeeping on
/// the host where the guest cannot reach it.
///
/// Every read and write is checked against its allocation, not only against
/// the memory; a double free or a pointer from elsewhere is an error. When
/// nothing fits, the memory grows by 64 KiB pages up to its maximum.
/// Views of the memory borrow the store, and growing needs it mutably, so
/// the compiler refuses a view kept across an allocation:
///
/// ```compile_fail,E0502
/// # use cortex::wasm::{MemoryManager, MemoryOptions};
/// # use wasmtime::{Engine, Instance, Module, Store};
/// # let engine = Engine::default();
/// # let module = Module::new(&engine, r#"(module (memory (export "memory") 1))"#).unwrap();
/// # let mut store = Store::new(&engine, ());
/// # let instance = Instance::new(&mut store, &module, &[]).unwrap();
/// # let mut memory = MemoryManager::for_instance(&mut store, &instance, MemoryOptions::default()).unwrap();
/// let a = memory.alloc(&mut store, 16, 8).unwrap();
/// let view = memory.view(&store, &a).unwrap();
/// let b = memory.alloc(&mut store, 1 << 20, 8).unwrap(); // may grow: refused
/// assert_eq!(view.len(), 16);
/// ```
///
/// [`WasmInstance`](super::WasmInstance) wraps one for a running module;
/// this type is for embedders who drive wasmtime themselves.
///
/// ```
/// use cortex::wasm::{MemoryManager, MemoryOptions};
/// use wasmtime::{Engine, Instance, Module, Store};
///
/// let engine = Engine::default();
/// let module = Module::new(&engine, r#"(module (memory (export "memory") 1 4))"#).unwrap();
/// let mut store = Store::new(&engine, ());
/// let instance = Instance::new(&mut store, &module, &[]).unwrap();
/// let mut memory = MemoryManager::for_instance(&mut store, &instance, MemoryOptions::default()).unwrap();
///
/// let buf = memory.alloc(&mut store, 5, 1).unwrap();
/// memory.write(&mut store, &buf, b"hello").unwrap();
/// assert_eq!(memory.read(&store, &buf, 5).unwrap(), b"hello");
/// assert!(memory.write(&mut store, &buf, b"hello!").is_err()); // past the allocation
/// memory.free(&buf).unwrap();
/// assert!(memory.free(&buf).is_err()); // double free
/// ```
pub struct MemoryManager {
    heap: Heap,
    memory: Memory,
    max_pages: u64,
    growths: u64,
    published: Option<Arc<Published>>,
    /// The guest's own `malloc`, when the host borrows its space from it.
    lender: Option<TypedFunc<i32, i32>>,
}

impl fmt::Debug for MemoryManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryManager")
            .field("max_pages", &self.max_pages)
            .field("counts", &self.heap.counts)
            .field("growths", &self.growths)
            .finish()
    }
}

impl MemoryManager {
    /// A manager over the instance's memory exported as `memory`. When the
    /// guest exports a `malloc` (and the options allow), the host's space
    /// is borrowed from it; otherwise the reserved start is the options',
    /// else all the memory it starts with (or, should the guest export a
    /// `__heap_base` past that, up to it).
    ///
    /// # Errors
    /// [`WasmError::NoMemory`] when the instance exports no such memory.
    pub fn for_instance(
        mut store: impl AsContextMut,
        instance: &Instance,
        options: MemoryOptions,
    ) -> Result<Self, WasmError> {
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or(WasmError::NoMemory)?;
        let heap_base = instance
            .get_global(&mut store, "__heap_base")
            .and_then(|g| g.get(&mut store).i32())
            .map(|v| v as u32);
        let lender = if options.guest_malloc {
            instance
                .get_typed_func::<i32, i32>(&mut store, "malloc")
                .ok()
        } else {
            None
        };
        if lender.is_some() {
            // Nothing of the memory as it is: every arena comes from malloc.
            return Ok(Self::build(store, memory, options, lender));
        }
        let initial = memory.data_size(&store) as u64;
        let options = MemoryOptions {
            reserved: options.reserved.or_else(|| {
                let end = heap_base.map_or(initial, |b| u64::from(b).max(initial));
                Some(u32::try_from(end).unwrap_or(u32::MAX))
            }),
            ..options
        };
        Ok(Self::new(store, memory, options))
    }

    /// A manager over `memory`. Without a reserved size in the options,
    /// all the memory's current pages are left to the guest.
    pub fn new(store: impl AsContext, memory: Memory, options: MemoryOptions) -> Self {
        Self::build(store, memory, options, None)
    }

    fn build(
        store: impl AsContext,
        memory: Memory,
        options: MemoryOptions,
        lender: Option<TypedFunc<i32, i32>>,
    ) -> Self {
        let store = store.as_context();
        let size = memory.data_size(&store) as u64;
        let declared = memory.ty(&store).maximum().unwrap_or(MAX_PAGES);
        let max_pages = options
            .max_pages
            .unwrap_or(MAX_PAGES)
            .min(declared)
            .min(MAX_PAGES);
        // Offset 0 is null and never handed out, even with nothing reserved.
        let (reserved, lent) = match lender {
            Some(_) => (options.reserved.map_or(1, u64::from).max(1), true),
            None => (options.reserved.map_or(size, u64::from).max(1), false),
        };
        let mut heap = Heap::new(NEXT_OWNER.fetch_add(1, Relaxed), reserved);
        if !lent {
            heap.add_region(reserved, size);
        }
        let published = options.metrics.as_deref().map(Published::register);
        let manager = MemoryManager {
            heap,
            memory,
            max_pages,
            growths: 0,
            published,
            lender,
        };
        manager.publish();
        manager
    }

    /// The memory managed.
    pub fn memory(&self) -> Memory {
        self.memory
    }

    /// Allocates `size` bytes at a multiple of `align` (a power of two).
    /// A zero-size allocation is valid: it has its own non-null offset.
    /// Grows the memory when nothing fits.
    ///
    /// # Errors
    /// [`WasmError::BadAlignment`], or [`WasmError::OutOfMemory`] when the
    /// memory cannot grow enough.
    #[inline]
    pub fn alloc(
        &mut self,
        mut store: impl AsContextMut,
        size: u32,
        align: u32,
    ) -> Result<GuestPtr, WasmError> {
        if !align.is_power_of_two() {
            return Err(WasmError::BadAlignment(align));
        }
        if let Some(ptr) = self.heap.alloc(size, align) {
            self.publish();
            return Ok(ptr);
        }
        self.grow_for(store.as_context_mut(), size, align)?;
        let ptr = self.heap.alloc(size, align).ok_or(WasmError::OutOfMemory {
            requested: size,
            max_pages: self.max_pages,
        })?;
        self.publish();
        Ok(ptr)
    }

    #[cold]
    fn grow_for(
        &mut self,
        mut store: impl AsContextMut,
        size: u32,
        align: u32,
    ) -> Result<(), WasmError> {
        let oom = WasmError::OutOfMemory {
            requested: size,
            max_pages: self.max_pages,
        };
        if let Some(malloc) = self.lender.take() {
            let borrowed = self.borrow(store, &malloc, size, align, oom);
            self.lender = Some(malloc);
            return borrowed;
        }
        let end = self.memory.data_size(&store) as u64;
        let pages = self.heap.shortfall(size, align, end).div_ceil(PAGE);
        let now = self.memory.size(&store);
        if now.saturating_add(pages) > self.max_pages {
            return Err(oom);
        }
        self.memory
            .grow(&mut store, pages)
            .map_err(|_| oom.clone())?;
        let new_end = self.memory.data_size(&store) as u64;
        // Pages the guest grew by itself stay the guest's: the new region
        // starts where the memory ended, not where the heap did.
        self.heap.add_region(end, new_end);
        self.growths += 1;
        tracing::debug!(
            target: "cortex::wasm",
            pages,
            total_pages = self.memory.size(&store),
            "grew guest memory"
        );
        Ok(())
    }

    /// Borrows an arena for `size`/`align` from the guest's `malloc`.
    #[cold]
    fn borrow(
        &mut self,
        mut store: impl AsContextMut,
        malloc: &TypedFunc<i32, i32>,
        size: u32,
        align: u32,
        oom: WasmError,
    ) -> Result<(), WasmError> {
        // Room for the size, its alignment, the size class search and the
        // arena's own rounding to granules.
        let ask = (Heap::region_for(size, align) + 2 * u64::from(GRANULE)).max(ARENA);
        let Ok(ask) = i32::try_from(ask) else {
            return Err(oom);
        };
        let start = match malloc.call(&mut store, ask) {
            Ok(0) => return Err(oom),
            Ok(p) => u64::from(p as u32),
            Err(e) => {
                return Err(WasmError::Trap {
                    function: "malloc".into(),
                    message: format!("{e:#}"),
                })
            }
        };
        self.heap.add_region(start, start + ask as u64);
        self.growths += 1;
        tracing::debug!(target: "cortex::wasm", bytes = ask, "borrowed an arena from the guest's malloc");
        Ok(())
    }

    /// Frees an allocation.
    ///
    /// # Errors
    /// [`WasmError::AlreadyFreed`] for a double free, or
    /// [`WasmError::UnknownPointer`] for a pointer of another manager.
    #[inline]
    pub fn free(&mut self, ptr: &GuestPtr) -> Result<(), WasmError> {
        self.heap.free(ptr)?;
        self.publish();
        Ok(())
    }

    /// Writes `bytes` at the start of the allocation.
    ///
    /// # Errors
    /// [`WasmError::OutOfBounds`] when `bytes` is longer than the
    /// allocation; the pointer errors of [`free`](Self::free).
    pub fn write(
        &self,
        store: impl AsContextMut,
        ptr: &GuestPtr,
        bytes: &[u8],
    ) -> Result<(), WasmError> {
        self.write_at(store, ptr, 0, bytes)
    }

    /// Writes `bytes` at `at` bytes into the allocation.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn write_at(
        &self,
        mut store: impl AsContextMut,
        ptr: &GuestPtr,
        at: u32,
        bytes: &[u8],
    ) -> Result<(), WasmError> {
        let range = self.range(ptr, at, bytes.len() as u64)?;
        let data = self.memory.data_mut(&mut store);
        // The heap only hands out what it was given, which lies in the
        // memory; memories never shrink.
        match data.get_mut(range) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(self.out_of_bounds(ptr, at, bytes.len() as u64)),
        }
    }

    /// Copies the first `len` bytes of the allocation out.
    ///
    /// # Errors
    /// [`WasmError::OutOfBounds`] when `len` is past the allocation; the
    /// pointer errors of [`free`](Self::free).
    pub fn read(
        &self,
        store: impl AsContext,
        ptr: &GuestPtr,
        len: u32,
    ) -> Result<Vec<u8>, WasmError> {
        let store = store.as_context();
        let range = self.range(ptr, 0, u64::from(len))?;
        self.memory
            .data(&store)
            .get(range)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| self.out_of_bounds(ptr, 0, u64::from(len)))
    }

    /// The allocation's bytes, borrowed from the store: no copy, and no
    /// allocation (which could grow and move the memory) while it lives.
    ///
    /// # Errors
    /// The pointer errors of [`free`](Self::free).
    pub fn view<'a, T: 'static>(
        &self,
        store: impl Into<StoreContext<'a, T>>,
        ptr: &GuestPtr,
    ) -> Result<&'a [u8], WasmError> {
        let range = self.range(ptr, 0, u64::from(ptr.len()))?;
        let data = self.memory.data(store);
        data.get(range)
            .ok_or_else(|| self.out_of_bounds(ptr, 0, u64::from(ptr.len())))
    }

    /// The allocation's bytes, mutably; see [`view`](Self::view).
    ///
    /// # Errors
    /// The pointer errors of [`free`](Self::free).
    pub fn view_mut<'a, T: 'static>(
        &self,
        store: impl Into<wasmtime::StoreContextMut<'a, T>>,
        ptr: &GuestPtr,
    ) -> Result<&'a mut [u8], WasmError> {
        let range = self.range(ptr, 0, u64::from(ptr.len()))?;
        let data = self.memory.data_mut(store);
        match data.get_mut(range) {
            Some(d) => Ok(d),
            None => Err(self.out_of_bounds(ptr, 0, u64::from(ptr.len()))),
        }
    }

    pub(crate) fn range(
        &self,
        ptr: &GuestPtr,
        at: u32,
        len: u64,
    ) -> Result<std::ops::Range<usize>, WasmError> {
        self.heap.check(ptr)?;
        if u64::from(at) + len > u64::from(ptr.len()) {
            return Err(self.out_of_bounds(ptr, at, len));
        }
        let start = ptr.offset() as usize + at as usize;
        Ok(start..start + len as usize)
    }

    fn out_of_bounds(&self, ptr: &GuestPtr, at: u32, len: u64) -> WasmError {
        WasmError::OutOfBounds {
            at,
            len,
            allocation: ptr.len(),
        }
    }

    /// Counts now; also refreshes the fragmentation metric.
    pub fn stats(&self) -> MemoryStats {
        let c = self.heap.counts;
        let (largest, free_blocks) = self.heap.free_blocks();
        let free = c.capacity - c.allocated;
        let stats = MemoryStats {
            allocated_bytes: c.allocated,
            free_bytes: free,
            peak_allocated_bytes: c.peak,
            allocations: c.allocs,
            frees: c.frees,
            live_allocations: c.live,
            free_blocks,
            largest_free_block: largest,
            fragmentation: if free == 0 {
                0.0
            } else {
                1.0 - largest as f64 / free as f64
            },
            growths: self.growths,
        };
        if let Some(p) = &self.published {
            p.fragmentation_bits
                .store(stats.fragmentation.to_bits(), Relaxed);
        }
        stats
    }

    /// Recomputes the fragmentation metric, when metrics are on (it scans
    /// the free blocks, so it is not done on every allocation).
    pub(crate) fn refresh_metrics(&self) {
        if self.published.is_some() {
            let _ = self.stats();
        }
    }

    pub(crate) fn is_live(&self, ptr: &GuestPtr) -> bool {
        self.heap.check(ptr).is_ok()
    }

    #[inline]
    fn publish(&self) {
        if let Some(p) = &self.published {
            let c = &self.heap.counts;
            // One writer: plain stores, no read-modify-write.
            p.allocated.store(c.allocated, Relaxed);
            p.free.store(c.capacity - c.allocated, Relaxed);
            p.peak.store(c.peak, Relaxed);
            p.allocs.store(c.allocs, Relaxed);
            p.frees.store(c.frees, Relaxed);
            p.growths.store(self.growths, Relaxed);
        }
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        if let Some(p) = self.published.take() {
            p.retire();
        }
    }
}
