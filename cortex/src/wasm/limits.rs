//! What a guest may use, and the store limiter that holds it to that.

use std::time::Duration;

use wasmtime::{StoreLimits, StoreLimitsBuilder};

use super::memory::PAGE;

/// The default per-call deadline of [`Limits`].
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// The shortest [`Limits::deadline`]: deadlines are kept by a clock that
/// ticks every 5 ms, so a call is stopped between its deadline and 10 ms
/// after it; a shorter deadline could not be kept honestly and is refused.
pub const MIN_DEADLINE: Duration = Duration::from_millis(10);

/// The default of [`Limits::max_call_allocations`].
pub const DEFAULT_CALL_ALLOCATIONS: u32 = 10_000;

/// Fuel one `cortex.alloc` or `cortex.free` costs when fuel is metered
/// (host work a guest could otherwise get for free).
pub const HOST_CALL_FUEL: u64 = 100;

/// What a guest may use: memory, tables, fuel, time, host allocations.
///
/// The defaults bound everything a guest can take: 16 MiB of memory, one
/// memory (multi-memory is off), at most 4 tables of 10,000 elements in
/// all, 10,000 host allocations per call, and a **5 s deadline per call**,
/// so a guest stuck in a loop cannot hold a worker forever. Growing past a
/// limit fails inside the guest (`memory.grow` and `table.grow` return -1,
/// `cortex.alloc` returns 0); a module that declares more than the limits
/// fails to instantiate with a clear error; host memory never grows for it.
///
/// ```
/// use cortex::wasm::Limits;
/// use std::time::Duration;
///
/// let limits = Limits::default()
///     .fuel(10_000_000)
///     .deadline(Duration::from_millis(200))
///     .max_table_elements(1_000)
///     .max_call_allocations(100);
/// # let _ = limits;
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    pub(crate) max_memory_pages: u64,
    pub(crate) max_memories: u32,
    pub(crate) max_tables: u32,
    pub(crate) max_table_elements: u32,
    pub(crate) max_call_allocations: u32,
    pub(crate) fuel: Option<u64>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) reserved: Option<u32>,
    pub(crate) metrics: Option<String>,
    pub(crate) pooled: Option<u32>,
}

impl Default for Limits {
    /// 256 pages (16 MiB) of memory, one memory, 4 tables of 10,000
    /// elements in all, 10,000 host allocations per call, no fuel limit, a
    /// 5 s deadline per call, instances allocated on demand (not pooled).
    fn default() -> Self {
        Limits {
            max_memory_pages: 256,
            max_memories: 1,
            max_tables: 4,
            max_table_elements: 10_000,
            max_call_allocations: DEFAULT_CALL_ALLOCATIONS,
            fuel: None,
            deadline: Some(DEFAULT_DEADLINE),
            reserved: None,
            metrics: None,
            pooled: None,
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

    /// How many buffers a guest may get from `cortex.alloc` during one call
    /// (default 10,000): past it `cortex.alloc` returns 0, as when memory is
    /// out. The host's bookkeeping for a call is bounded by it.
    pub fn max_call_allocations(mut self, allocations: u32) -> Self {
        self.max_call_allocations = allocations;
        self
    }

    /// No deadline: a call may run as long as its fuel (if any) lasts.
    /// Without fuel either, a looping guest spins its thread forever: only
    /// for trusted guests.
    pub fn no_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// Fuel for each call (about one unit per wasm instruction, and
    /// [`HOST_CALL_FUEL`] per `cortex.alloc` or `cortex.free`): a call that
    /// uses it all fails with [`WasmError::FuelExhausted`](super::WasmError::FuelExhausted).
    pub fn fuel(mut self, units: u64) -> Self {
        self.fuel = Some(units);
        self
    }

    /// A wall-clock deadline for each call (default 5 s): a call running
    /// past it fails with [`WasmError::DeadlineExceeded`](super::WasmError::DeadlineExceeded),
    /// never before it and at most 10 ms after it (checked at loop heads
    /// and function entries against a clock that ticks every 5 ms; one
    /// ticker thread per process keeps the time for every module). At
    /// least [`MIN_DEADLINE`] (10 ms): a module with a shorter one is
    /// refused with [`WasmError::BadLimits`](super::WasmError::BadLimits).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Bytes at the start of memory never handed out (see
    /// [`MemoryOptions::reserved`](super::MemoryOptions::reserved)).
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

    /// Allocate instances from a pool of `instances` slots made up front
    /// (wasmtime's pooling allocator): instantiating takes a free slot
    /// instead of mapping new memory (about twice as fast: 5.7 µs against
    /// 10-13 µs in `benches/benches/wasm.rs`),
    /// and a dropped instance gives its slot back. At most `instances` live
    /// at once, for every module with these same limits; one more fails to
    /// instantiate with [`WasmError::Instantiate`](super::WasmError::Instantiate).
    /// Each slot reserves address space (not memory) for the largest memory
    /// these limits allow.
    pub fn pooled(mut self, instances: u32) -> Self {
        self.pooled = Some(instances.max(1));
        self
    }

    /// The limiter a store of these limits runs under.
    pub(crate) fn store_limits(&self) -> StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size(self.max_memory_bytes())
            .memories(self.max_memories as usize)
            .tables(self.max_tables as usize)
            .table_elements(self.max_table_elements as usize)
            .instances(1)
            .build()
    }

    pub(crate) fn max_memory_bytes(&self) -> usize {
        usize::try_from(self.max_memory_pages.saturating_mul(PAGE)).unwrap_or(usize::MAX)
    }
}
