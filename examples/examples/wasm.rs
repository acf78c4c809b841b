//! Request bodies transformed by a WebAssembly guest, on a worker pool whose
//! every thread owns its own instance; a runaway guest stopped by its fuel.
//!
//! Run with `cargo run --example wasm --features wasm`. The demo service
//! (`cargo run --example demo --features wasm`) serves the same guest at
//! `POST /transform`.

use cortex::wasm::{WasmError, WasmWorker};
use cortex_examples::transform;

fn main() {
    let pool = transform::pool();
    let bodies: [&'static str; 3] = [
        "card 4111 1111 1111 1111, exp 12/29",
        "order 1042 for account 993",
        "no digits here",
    ];
    let handles: Vec<_> = bodies
        .iter()
        .map(|&body| {
            pool.submit_blocking(move |w: &mut WasmWorker| {
                let thread = std::thread::current().name().unwrap_or("?").to_owned();
                (thread, w.call("redact", body.as_bytes()))
            })
            .expect("the pool takes the task")
        })
        .collect();
    for (body, handle) in bodies.iter().zip(handles) {
        let (thread, answer) = handle.wait().expect("the task ran");
        match answer {
            Ok(out) => println!("{thread}: {body:?} -> {:?}", String::from_utf8_lossy(&out)),
            Err(e) => println!("{thread}: {body:?} failed: {e}"),
        }
    }

    // A guest that never returns is stopped by its fuel; the worker gets a
    // fresh instance on its next call.
    let (spin, after) = pool
        .submit_blocking(|w: &mut WasmWorker| (w.call("spin", b""), w.call("redact", b"call 555")))
        .expect("the pool takes the task")
        .wait()
        .expect("the task ran");
    match spin {
        Err(e @ (WasmError::FuelExhausted { .. } | WasmError::DeadlineExceeded { .. })) => {
            println!("runaway guest stopped: {e}")
        }
        other => println!("unexpected: {other:?}"),
    }
    println!(
        "next call on a fresh instance: {:?}",
        after.map(String::from_utf8)
    );

    let text = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
    for line in text.lines().filter(|l| l.starts_with("cortex_wasm_memory")) {
        println!("{line}");
    }
}
