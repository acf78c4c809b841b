//! WebAssembly guests (feature `wasm`): a host-side memory manager over a
//! guest's linear memory, and a runner that calls guest functions with byte
//! buffers under memory, fuel and time limits.
//!
//! - [`MemoryManager`] allocates in a guest's memory with its bookkeeping on
//!   the host (a TLSF allocator: O(1) allocation, free blocks merged with
//!   their neighbours), checks every access against its allocation, and
//!   grows the memory by pages up to a maximum.
//! - [`WasmModule`] compiles WAT or `.wasm` bytes; [`WasmInstance`] runs it,
//!   moving buffers in and out through its manager; a trap, exhausted fuel
//!   or a missed deadline is an error, never a crash.
//! - [`WasmWorker`] is the per-worker state that gives every thread of a
//!   [`WorkerPool`](crate::workers::WorkerPool) its own instance.
//!
//! ```
//! use cortex::wasm::{Limits, WasmError, WasmModule};
//!
//! let module = WasmModule::from_wat(r#"
//!   (module
//!     (memory (export "memory") 1)
//!     ;; Answers with the input unchanged.
//!     (func (export "echo") (param i32 i32) (result i64)
//!       (i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32))
//!               (i64.extend_i32_u (local.get 1))))
//!     (func (export "spin") (param i32 i32) (result i64)
//!       (loop $forever (br $forever))
//!       (i64.const 0)))
//! "#, Limits::default().fuel(100_000)).unwrap();
//!
//! let mut guest = module.instantiate().unwrap();
//! assert_eq!(guest.call("echo", b"ping").unwrap(), b"ping");
//! assert!(matches!(guest.call("spin", b""), Err(WasmError::FuelExhausted { .. })));
//! assert!(matches!(guest.call("echo", b"ping"), Err(WasmError::Poisoned)));
//! guest.reset().unwrap();
//! assert_eq!(guest.call("echo", b"pong").unwrap(), b"pong");
//! ```
//!
//! ## Differences from Extism
//! Extism keeps its allocator's headers inside guest memory (where a guest
//! can overwrite them), at offsets that are not aligned, and never merges
//! free blocks. Here the bookkeeping is host-only, every allocation honours
//! its alignment, and a freed block merges with free neighbours at once.

mod engine;
mod error;
mod heap;
mod host;
mod instance;
mod limits;
mod memory;
mod module;
mod stats;

pub use error::WasmError;
pub use heap::GuestPtr;
pub use instance::{WasmInstance, WasmWorker};
pub use limits::{
    Limits, DEFAULT_CALL_ALLOCATIONS, DEFAULT_DEADLINE, HOST_CALL_FUEL, MIN_DEADLINE,
};
pub use memory::{MemoryManager, MemoryOptions, PAGE};
pub use module::WasmModule;
pub use stats::MemoryStats;

/// wasmtime, as Cortex uses it, for embedders driving it directly.
pub use wasmtime;
