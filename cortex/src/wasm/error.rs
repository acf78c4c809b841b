//! What can go wrong with guest memory and guest calls.

use std::time::Duration;

/// An error from the memory manager or the module runner. Nothing here
/// panics: every misuse and every guest failure is one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The alignment asked for is not a power of two.
    #[error("alignment {0} is not a power of two")]
    BadAlignment(u32),
    /// The allocation does not fit, even after growing the memory to its
    /// maximum.
    #[error("out of guest memory: {requested} bytes do not fit in {max_pages} pages of 64 KiB")]
    OutOfMemory {
        /// Bytes asked for.
        requested: u32,
        /// The memory's page limit.
        max_pages: u64,
    },
    /// The pointer was freed already (a double free, or a use after free).
    #[error("guest pointer {offset:#x} was already freed")]
    AlreadyFreed {
        /// Offset of the pointer.
        offset: u32,
    },
    /// The pointer was not given out by this manager (it belongs to another
    /// instance, or the guest returned an offset it never got).
    #[error("guest pointer {offset:#x} was not allocated by this memory manager")]
    UnknownPointer {
        /// Offset of the pointer.
        offset: u32,
    },
    /// An access reaches past the end of its allocation.
    #[error("access of {len} bytes at {at} is outside an allocation of {allocation} bytes")]
    OutOfBounds {
        /// Offset of the access within the allocation.
        at: u32,
        /// Bytes of the access.
        len: u64,
        /// Length of the allocation.
        allocation: u32,
    },
    /// The module has no exported memory named `memory`.
    #[error("the module exports no memory named \"memory\"")]
    NoMemory,
    /// The limits cannot be kept (a deadline under
    /// [`MIN_DEADLINE`](super::MIN_DEADLINE), say).
    #[error("bad limits: {0}")]
    BadLimits(String),
    /// The module could not be compiled (invalid WAT or wasm bytes).
    #[error("cannot compile the module: {0}")]
    Compile(String),
    /// The module could not be instantiated (a missing import, a start
    /// function that trapped, a memory above the limit).
    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),
    /// No exported function has this name.
    #[error("the module exports no function \"{0}\"")]
    NoFunction(String),
    /// The export does not have the signature the call needs.
    #[error("export \"{name}\" has the wrong signature: expected {expected}")]
    WrongSignature {
        /// Name of the export.
        name: String,
        /// The signature the call needs.
        expected: &'static str,
    },
    /// The guest trapped (unreachable, an out-of-bounds access of its own,
    /// a division by zero...). The instance is poisoned.
    #[error("guest function \"{function}\" trapped: {message}")]
    Trap {
        /// Function called.
        function: String,
        /// What wasmtime says.
        message: String,
    },
    /// The guest used all of its fuel. The instance is poisoned.
    #[error("guest function \"{function}\" ran out of fuel ({fuel} units)")]
    FuelExhausted {
        /// Function called.
        function: String,
        /// Fuel it had for the call.
        fuel: u64,
    },
    /// The guest ran past its deadline. The instance is poisoned.
    #[error("guest function \"{function}\" ran past its deadline of {deadline:?}")]
    DeadlineExceeded {
        /// Function called.
        function: String,
        /// The deadline.
        deadline: Duration,
    },
    /// The guest returned a buffer that is not inside an allocation it was
    /// given during the call.
    #[error("guest function \"{function}\" returned {len} bytes at {offset:#x}, outside any buffer of the call")]
    BadOutput {
        /// Function called.
        function: String,
        /// Offset it returned.
        offset: u32,
        /// Length it returned.
        len: u32,
    },
    /// An earlier call trapped, ran out of fuel or past its deadline, so the
    /// guest's own state may be inconsistent; [`reset`](super::WasmInstance::reset)
    /// the instance.
    #[error("the instance is poisoned by an earlier failed call; reset it")]
    Poisoned,
}
