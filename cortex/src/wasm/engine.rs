//! Engines shared by every module with the same settings, and the one
//! epoch ticker thread per engine that makes deadlines fire.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use wasmtime::{Config, Engine};

use super::error::WasmError;

/// How often a deadline engine's epoch advances: a deadline fires within
/// one tick after it passes.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// What an engine is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Settings {
    pub(crate) fuel: bool,
    pub(crate) deadline: bool,
    pub(crate) multi_memory: bool,
}

/// The engine for `settings`, made once per process (with its ticker
/// thread when it keeps deadlines): modules with the same settings share
/// it, so a service with a hundred modules has at most a few engines and
/// ticker threads.
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
    let engine = Engine::new(&config).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
    if settings.deadline {
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("cortex-wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(TICK);
                ticking.increment_epoch();
            })
            .map_err(|e| WasmError::Compile(format!("cannot start the epoch thread: {e}")))?;
    }
    engines.push((settings, engine.clone()));
    Ok(engine)
}

/// Epoch ticks for a deadline: one more than it takes, so a call never
/// ends early.
pub(crate) fn ticks(deadline: Duration) -> u64 {
    u64::try_from(deadline.as_nanos().div_ceil(TICK.as_nanos()))
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}
