//! Engines shared by every module with the same settings, and the one
//! epoch ticker thread per process that makes deadlines fire.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::WasmError;
use super::limits::Limits;

/// How often a deadline engine's epoch advances: a deadline fires within
/// one tick after it passes.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// What an engine is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Settings {
    pub(crate) fuel: bool,
    pub(crate) deadline: bool,
    pub(crate) multi_memory: bool,
    /// Instances come from a pool of this shape (the pooling allocator).
    pub(crate) pool: Option<Pool>,
}

/// The pooling allocator's slots: how many, and how big each one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Pool {
    instances: u32,
    memory_bytes: usize,
    memories: u32,
    tables: u32,
    table_elements: u32,
}

impl Settings {
    /// What modules with these limits need from their engine.
    pub(crate) fn for_limits(limits: &Limits) -> Self {
        Settings {
            fuel: limits.fuel.is_some(),
            deadline: limits.deadline.is_some(),
            multi_memory: limits.max_memories > 1,
            pool: limits.pooled.map(|instances| Pool {
                instances,
                memory_bytes: limits.max_memory_bytes(),
                memories: limits.max_memories,
                tables: limits.max_tables,
                table_elements: limits.max_table_elements,
            }),
        }
    }
}

/// The engine for `settings`, made once per process (with its ticker
/// thread when it keeps deadlines): modules with the same settings share
/// it (and, when pooled, its pool), so a service with a hundred modules has
/// at most a few engines and ticker threads.
pub(crate) fn shared(settings: Settings) -> Result<Engine, WasmError> {
    static ENGINES: LazyLock<Mutex<Vec<(Settings, Engine)>>> =
        LazyLock::new(|| Mutex::new(Vec::new()));
    let mut engines = ENGINES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, engine)) = engines.iter().find(|(s, _)| *s == settings) {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.consume_fuel(settings.fuel);
    config.epoch_interruption(settings.deadline);
    config.wasm_multi_memory(settings.multi_memory);
    if let Some(pool) = settings.pool {
        let mut pooling = PoolingAllocationConfig::new();
        pooling
            .total_core_instances(pool.instances)
            .total_memories(pool.instances.saturating_mul(pool.memories))
            .total_tables(pool.instances.saturating_mul(pool.tables))
            .max_memories_per_module(pool.memories)
            .max_tables_per_module(pool.tables)
            .max_memory_size(pool.memory_bytes)
            .table_elements(pool.table_elements as usize);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    let engine = Engine::new(&config).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
    if settings.deadline {
        tick(engine.clone())?;
    }
    engines.push((settings, engine.clone()));
    Ok(engine)
}

/// Adds `engine` to those the one ticker thread of the process advances,
/// starting the thread with the first.
fn tick(engine: Engine) -> Result<(), WasmError> {
    static TICKING: Mutex<Vec<Engine>> = Mutex::new(Vec::new());
    let mut ticking = TICKING.lock().unwrap_or_else(|p| p.into_inner());
    if ticking.is_empty() {
        std::thread::Builder::new()
            .name("cortex-epoch".into())
            .spawn(|| loop {
                std::thread::sleep(TICK);
                for engine in TICKING.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| WasmError::Compile(format!("cannot start the epoch thread: {e}")))?;
    }
    ticking.push(engine);
    Ok(())
}

/// Epoch ticks for a deadline: one more than it takes, so a call never
/// ends early.
pub(crate) fn ticks(deadline: Duration) -> u64 {
    u64::try_from(deadline.as_nanos().div_ceil(TICK.as_nanos()))
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}
