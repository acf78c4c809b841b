//! The host-side memory manager against allocating through guest exports
//! (how allocators that live in the guest, like Extism's, are reached), and
//! a 1 KiB round trip through a guest against raw wasmtime calls, in the
//! same run.
//!
//! ```text
//! cargo bench -p cortex-benches --features wasm --bench wasm
//! ```

use std::hint::black_box;

use cortex::wasm::{Limits, MemoryManager, MemoryOptions, WasmModule};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wasmtime::{Engine, Instance, Module, Store, TypedFunc};

/// A guest with a bump allocator of its own behind `alloc`/`free` exports
/// (free only rewinds the last allocation): the cheapest allocator a host
/// can reach through calls into the guest.
const GUEST: &str = r#"
(module
  (memory (export "memory") 4)
  (global $top (mut i32) (i32.const 65536))
  (func (export "alloc") (param $size i32) (param $align i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $top) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (global.set $top (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "free") (param $p i32)
    (global.set $top (local.get $p)))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))
"#;

fn alloc_free(c: &mut Criterion) {
    let mut g = c.benchmark_group("wasm_alloc_free_pair");
    g.throughput(Throughput::Elements(1));

    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let mut manager = MemoryManager::for_instance(
        &mut store,
        &instance,
        MemoryOptions::default().reserved(65536),
    )
    .unwrap();
    // Some live neighbours so frees merge for real.
    let _keep: Vec<_> = (0..64)
        .map(|i| manager.alloc(&mut store, 16 + i, 8).unwrap())
        .collect();
    g.bench_function("cortex_manager_64B", |b| {
        b.iter(|| {
            let p = manager.alloc(&mut store, black_box(64), 8).unwrap();
            manager.free(black_box(&p)).unwrap();
        })
    });

    let module = WasmModule::from_wat(GUEST, Limits::default()).unwrap();
    let mut inst = module.instantiate().unwrap();
    g.bench_function("cortex_instance_64B", |b| {
        b.iter(|| {
            let p = inst.alloc(black_box(64), 8).unwrap();
            inst.free(black_box(&p)).unwrap();
        })
    });

    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut live = Vec::with_capacity(256);
    g.bench_function("cortex_manager_mixed_sizes", |b| {
        b.iter(|| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let size = (rng % 4096) as u32;
            if live.len() < 256 {
                live.push(manager.alloc(&mut store, size, 8).unwrap());
            }
            let i = (rng >> 32) as usize % live.len();
            let p = live.swap_remove(i);
            manager.free(&p).unwrap();
            live.push(manager.alloc(&mut store, size, 8).unwrap());
        })
    });

    let mut store2 = Store::new(&engine, ());
    let raw = Instance::new(&mut store2, &Module::new(&engine, GUEST).unwrap(), &[]).unwrap();
    let alloc: TypedFunc<(i32, i32), i32> = raw.get_typed_func(&mut store2, "alloc").unwrap();
    let free: TypedFunc<i32, ()> = raw.get_typed_func(&mut store2, "free").unwrap();
    g.bench_function("guest_export_bump_64B", |b| {
        b.iter(|| {
            let p = alloc.call(&mut store2, (black_box(64), 8)).unwrap();
            free.call(&mut store2, black_box(p)).unwrap();
        })
    });

    g.bench_function("std_malloc_64B", |b| {
        b.iter(|| drop(black_box(Vec::<u8>::with_capacity(black_box(64)))))
    });
    g.finish();
}

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("wasm_round_trip_1KiB");
    let input = vec![b'x'; 1024];
    g.throughput(Throughput::Bytes(input.len() as u64));

    let module = WasmModule::from_wat(GUEST, Limits::default()).unwrap();
    let mut inst = module.instantiate().unwrap();
    let mut out = Vec::with_capacity(1024);
    g.bench_function("cortex_call_into", |b| {
        b.iter(|| {
            out.clear();
            inst.call_into("echo", black_box(&input), &mut out).unwrap();
            assert_eq!(out.len(), 1024);
        })
    });
    let fuelled = WasmModule::from_wat(GUEST, Limits::default().fuel(1_000_000)).unwrap();
    let mut inst = fuelled.instantiate().unwrap();
    g.bench_function("cortex_call_into_with_fuel", |b| {
        b.iter(|| {
            out.clear();
            inst.call_into("echo", black_box(&input), &mut out).unwrap();
        })
    });

    // The floor: write at a fixed offset, call, copy the answer out.
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let raw = Instance::new(&mut store, &Module::new(&engine, GUEST).unwrap(), &[]).unwrap();
    let memory = raw.get_memory(&mut store, "memory").unwrap();
    let echo: TypedFunc<(i32, i32), i64> = raw.get_typed_func(&mut store, "echo").unwrap();
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            memory.data_mut(&mut store)[65536..65536 + 1024].copy_from_slice(black_box(&input));
            let packed = echo.call(&mut store, (65536, 1024)).unwrap() as u64;
            let (p, n) = ((packed >> 32) as usize, packed as u32 as usize);
            out.clear();
            out.extend_from_slice(&memory.data(&store)[p..p + n]);
        })
    });
    g.finish();
}

/// Making an instance (and dropping it): wasmtime's on-demand allocator,
/// which maps fresh memory each time, against the pooling allocator.
fn instantiate(c: &mut Criterion) {
    let mut g = c.benchmark_group("wasm_instantiate");
    let on_demand = WasmModule::from_wat(GUEST, Limits::default()).unwrap();
    g.bench_function("on_demand", |b| {
        b.iter(|| black_box(on_demand.instantiate().unwrap()))
    });
    let pooled = WasmModule::from_wat(GUEST, Limits::default().pooled(8)).unwrap();
    g.bench_function("pooled", |b| {
        b.iter(|| black_box(pooled.instantiate().unwrap()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(3);
    targets = alloc_free, round_trip, instantiate
}
criterion_main!(benches);
