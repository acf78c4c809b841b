//! A pool of OS threads for CPU-heavy or blocking work, so it never stalls
//! the async runtime.
//!
//! - A bounded queue: [`WorkerPool::submit`] waits when it is full (async),
//!   [`WorkerPool::submit_blocking`] blocks, [`WorkerPool::try_submit`]
//!   fails at once.
//! - Timeouts: a task past its deadline answers [`TaskError::TimedOut`] at
//!   once; its thread cannot be killed, so it is marked lost and a
//!   replacement keeps the pool at full strength (the lost thread exits when
//!   its task finally returns).
//! - Panics: the caller gets [`TaskError::Panicked`] with the message; the
//!   worker is replaced and its per-worker state rebuilt.
//! - Per-worker state: [`WorkerPool::with_state`] gives each worker its own
//!   state (a parser, a compiled regex, a wasm instance) made by a factory.
//! - Shutdown: [`WorkerPool::shutdown`] finishes queued tasks and joins the
//!   threads; [`WorkerPool::shutdown_now`] cancels queued tasks. Dropping
//!   the pool cancels what is queued and joins the workers.
//!
//! ```
//! use cortex::workers::{PoolOptions, WorkerPool};
//!
//! let pool = WorkerPool::new(PoolOptions::named("doc-pool").threads(2));
//! let answer = pool.try_submit(|_| 6 * 7).unwrap().wait().unwrap();
//! assert_eq!(answer, 42);
//! let boom = pool.try_submit(|_| -> u32 { panic!("bad input") }).unwrap().wait();
//! assert_eq!(boom.unwrap_err().to_string(), "task panicked: bad input");
//! pool.shutdown();
//! ```

mod options;
mod pool;
mod report;
mod watchdog;
mod worker;

pub use options::{PoolOptions, PoolShutdown, PoolStats, TaskError};
pub use pool::{CancelToken, TaskHandle, WorkerPool};
