//! `POST /transform`: request bodies run through a WebAssembly guest, on a
//! worker pool whose every thread owns its own guest instance.

use std::sync::LazyLock;
use std::time::Duration;

use cortex::http::{header, text, HeaderValue, Request, Response, StatusCode};
use cortex::wasm::{Limits, WasmError, WasmModule, WasmWorker};
use cortex::workers::{PoolOptions, TaskError, WorkerPool};

/// The guest: `redact` masks every ASCII digit with `*`, in place (card
/// numbers never leave the service); `spin` never returns, to show the
/// fuel limit stopping it.
pub const GUEST_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "redact") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $c i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 48)) (i32.le_u (local.get $c) (i32.const 57)))
        (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.const 42))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))
  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0)))
"#;

/// The guest compiled with the service's limits: 4 MiB of memory, fuel for
/// about a megabyte of input per call, half a second at most.
///
/// # Panics
/// Never in practice: the guest above is valid (a test compiles it).
pub fn module() -> WasmModule {
    WasmModule::from_wat(
        GUEST_WAT,
        Limits::default()
            .max_memory_pages(64)
            .fuel(50_000_000)
            .deadline(Duration::from_millis(500))
            .metrics("demo-redact"),
    )
    .expect("the demo guest compiles")
}

/// Two worker threads, each with its own instance of the guest.
pub fn pool() -> &'static WorkerPool<WasmWorker> {
    static POOL: LazyLock<WorkerPool<WasmWorker>> = LazyLock::new(|| {
        let module = module();
        WorkerPool::with_state(
            PoolOptions::named("demo-wasm")
                .threads(2)
                .timeout(Duration::from_secs(2)),
            move || module.worker(),
        )
    });
    &POOL
}

/// `POST /transform`: the body with its digits masked by the guest.
pub async fn transform(req: Request) -> Response {
    let body = req.body().clone();
    let task = match pool()
        .submit(move |w: &mut WasmWorker| w.call("redact", &body))
        .await
    {
        Ok(task) => task,
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    };
    match task.await {
        Ok(Ok(out)) => {
            let mut response = Response::new(out.into());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        Ok(Err(e @ WasmError::OutOfMemory { .. })) => {
            text(StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n"))
        }
        Ok(Err(e)) => text(StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")),
        Err(e @ TaskError::QueueFull) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}
