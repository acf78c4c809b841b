//! WebAssembly guests that push on the host's bounds: a real C guest with
//! its own malloc, a guest that calls `cortex.alloc` a million times, and
//! pooled instances.

use std::time::Duration;

use cortex::wasm::{Limits, WasmError, WasmModule, DEFAULT_CALL_ALLOCATIONS, HOST_CALL_FUEL};

/// Built from `tests/guests/dlmalloc_guest.c` by `tests/guests/build.sh`
/// (clang and wasi-libc, whose malloc is dlmalloc).
const DLMALLOC_GUEST: &[u8] = include_bytes!("../guests/dlmalloc_guest.wasm");

/// A deterministic byte pattern of `len` bytes, different for each `seed`.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn a_dlmalloc_guest_and_the_host_never_share_memory() {
    let module = WasmModule::from_bytes(DLMALLOC_GUEST, Limits::default()).unwrap();
    let mut guest = module.instantiate().unwrap();
    let mut expected = Vec::new();
    // Inputs from a few bytes to several pages, so both the host (for the
    // inputs) and the guest's malloc (for its copies) grow the memory, in
    // turns; each copy lives on in the guest while the host reuses the
    // input buffers' space call after call.
    for round in 0..3u32 {
        for i in 0..120u32 {
            let len = match i % 4 {
                0 => 7,
                1 => 300,
                2 => 5_000,
                _ => 70_000,
            };
            let input = pattern(round * 1000 + i, len);
            assert_eq!(guest.call("remember", &input).unwrap(), input);
            expected.extend_from_slice(&input);
        }
        // Everything the guest kept is intact: no host write landed in it.
        let all = guest.call("recall", b"").unwrap();
        assert_eq!(all.len(), expected.len());
        assert!(all == expected, "the guest's heap was overwritten");
        if round < 2 {
            guest.call("forget", b"").unwrap();
            expected.clear();
        }
    }
    let stats = guest.memory_stats().unwrap();
    assert_eq!(stats.live_allocations, 0, "every call buffer was freed");
    assert!(
        stats.growths > 0,
        "the host grew the memory for its buffers"
    );
}

/// A guest that calls `cortex.alloc(1, 1)` a million times and answers with
/// how many it got, as 4 little-endian bytes in the last one it got.
const HOARDER: &str = r#"(module
  (import "cortex" "alloc" (func $alloc (param i32 i32) (result i32)))
  (import "cortex" "free" (func $free (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hoard") (param $in i32) (param $n i32) (result i64)
    (local $i i32) (local $got i32) (local $p i32) (local $out i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 1000000)))
      (local.set $p (call $alloc (i32.const 1) (i32.const 1)))
      (if (local.get $p) (then (local.set $got (i32.add (local.get $got) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.set $out (local.get $in))
    (i32.store (local.get $out) (local.get $got))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.const 4)))
  (func (export "churn") (param $in i32) (param $n i32) (result i64)
    ;; Allocates and frees at once, a million times: each free is found.
    (local $i i32) (local $ok i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 1000000)))
      (if (i32.eqz (call $free (call $alloc (i32.const 1) (i32.const 1))))
        (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.store (local.get $in) (local.get $ok))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $in)) (i64.const 32)) (i64.const 4))))"#;

fn count(answer: &[u8]) -> u32 {
    u32::from_le_bytes(answer.try_into().unwrap())
}

#[test]
fn a_million_host_allocations_hit_the_per_call_limit() {
    let module = WasmModule::from_wat(HOARDER, Limits::default()).unwrap();
    let mut guest = module.instantiate().unwrap();
    let got = count(&guest.call("hoard", &[0; 4]).unwrap());
    assert_eq!(got, DEFAULT_CALL_ALLOCATIONS);
    let stats = guest.memory_stats().unwrap();
    assert_eq!(stats.live_allocations, 0);
    // The host's bookkeeping held at most the limit: 10,000 one-byte
    // buffers of one 8-byte granule each, plus the 4-byte input.
    assert_eq!(
        stats.peak_allocated_bytes,
        u64::from(DEFAULT_CALL_ALLOCATIONS) * 8 + 8
    );
    // The allowance is per call: the next call gets as many again.
    assert_eq!(
        count(&guest.call("hoard", &[0; 4]).unwrap()),
        DEFAULT_CALL_ALLOCATIONS
    );
    let small = WasmModule::from_wat(HOARDER, Limits::default().max_call_allocations(3)).unwrap();
    assert_eq!(
        count(&small.instantiate().unwrap().call("hoard", &[0; 4]).unwrap()),
        3
    );
}

#[test]
fn host_allocations_cost_fuel() {
    // Enough fuel for the loop's instructions, not for a million host calls.
    let fuel = 50_000_000;
    assert!(1_000_000 * HOST_CALL_FUEL > fuel);
    let module = WasmModule::from_wat(HOARDER, Limits::default().fuel(fuel)).unwrap();
    let mut guest = module.instantiate().unwrap();
    assert_eq!(
        guest.call("hoard", &[0; 4]).unwrap_err(),
        WasmError::FuelExhausted {
            function: "hoard".into(),
            fuel
        }
    );
    guest.reset().unwrap();
    assert_eq!(guest.memory_stats().unwrap().live_allocations, 0);
}

#[test]
fn freeing_is_found_at_once_however_many_calls() {
    // A million allocations each freed at once stay within the allowance's
    // bookkeeping (the allowance counts allocations, so 10,000 succeed) and
    // every free of a live buffer answers 0.
    let module = WasmModule::from_wat(HOARDER, Limits::default()).unwrap();
    let mut guest = module.instantiate().unwrap();
    assert_eq!(
        count(&guest.call("churn", &[0; 4]).unwrap()),
        DEFAULT_CALL_ALLOCATIONS
    );
    let stats = guest.memory_stats().unwrap();
    assert_eq!(stats.live_allocations, 0);
    assert_eq!(stats.peak_allocated_bytes, 16, "one buffer at a time");
}

const ECHO: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))"#;

#[test]
fn pooled_instances_come_from_a_fixed_pool_and_go_back_to_it() {
    let limits = Limits::default()
        .max_memory_pages(4)
        .deadline(Duration::from_secs(3))
        .pooled(3);
    let module = WasmModule::from_wat(ECHO, limits).unwrap();
    let mut live: Vec<_> = (0..3).map(|_| module.instantiate().unwrap()).collect();
    for (i, g) in live.iter_mut().enumerate() {
        let input = format!("slot {i}");
        assert_eq!(g.call("echo", input.as_bytes()).unwrap(), input.as_bytes());
    }
    // A fourth does not fit while three live: a clear error, not a hang.
    match module.instantiate() {
        Err(WasmError::Instantiate(message)) => {
            assert!(message.contains("instance"), "{message}")
        }
        other => panic!("a full pool refuses, got {other:?}"),
    }
    // A dropped instance gives its slot back; the new one starts clean.
    live.pop();
    let mut again = module.instantiate().unwrap();
    assert_eq!(again.call("echo", b"reused").unwrap(), b"reused");
    assert_eq!(again.memory_stats().unwrap().live_allocations, 0);
    // Growing past the pooled memory size is refused inside the limits.
    let big = vec![7u8; 5 * 64 * 1024];
    assert!(matches!(
        again.call("echo", &big),
        Err(WasmError::OutOfMemory { .. })
    ));
}

#[test]
fn a_pooled_module_keeps_its_deadline() {
    let module = WasmModule::from_wat(
        r#"(module (memory (export "memory") 1)
             (func (export "spin") (param i32 i32) (result i64)
               (loop $forever (br $forever)) (i64.const 0)))"#,
        Limits::default()
            .deadline(Duration::from_millis(50))
            .pooled(2),
    )
    .unwrap();
    let mut g = module.instantiate().unwrap();
    assert_eq!(
        g.call("spin", b"").unwrap_err(),
        WasmError::DeadlineExceeded {
            function: "spin".into(),
            deadline: Duration::from_millis(50)
        }
    );
    g.reset().unwrap();
}

#[test]
fn a_guest_malloc_that_fails_is_an_error_and_one_that_traps_poisons() {
    let module = WasmModule::from_wat(
        r#"(module
          (memory (export "memory") 1)
          (global $mode (mut i32) (i32.const 0))
          ;; Out of memory first, then a trap.
          (func (export "malloc") (param i32) (result i32)
            (if (global.get $mode) (then unreachable))
            (global.set $mode (i32.const 1))
            (i32.const 0))
          (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
            (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
                    (i64.extend_i32_u (local.get $len)))))"#,
        Limits::default(),
    )
    .unwrap();
    let mut g = module.instantiate().unwrap();
    assert_eq!(
        g.call("echo", b"x").unwrap_err(),
        WasmError::OutOfMemory {
            requested: 1,
            max_pages: 256
        }
    );
    assert!(!g.is_poisoned());
    match g.call("echo", b"x") {
        Err(WasmError::Trap { function, .. }) => assert_eq!(function, "malloc"),
        other => panic!("a trapping malloc is a trap, got {other:?}"),
    }
    assert!(g.is_poisoned());
    assert_eq!(g.call("echo", b"x").unwrap_err(), WasmError::Poisoned);
}

#[test]
fn deadlines_are_kept_never_early_and_short_ones_refused() {
    const SPIN: &str = r#"(module (memory (export "memory") 1)
        (func (export "spin") (param i32 i32) (result i64)
          (loop $forever (br $forever)) (i64.const 0)))"#;
    match WasmModule::from_wat(SPIN, Limits::default().deadline(Duration::from_micros(200))) {
        Err(WasmError::BadLimits(why)) => assert!(why.contains("200µs"), "{why}"),
        other => panic!("a 200 µs deadline cannot be kept, got {other:?}"),
    }
    let deadline = Duration::from_millis(30);
    let module = WasmModule::from_wat(SPIN, Limits::default().deadline(deadline)).unwrap();
    let mut g = module.instantiate().unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        g.call("spin", b""),
        Err(WasmError::DeadlineExceeded { .. })
    ));
    let took = started.elapsed();
    assert!(
        took >= deadline,
        "stopped after {took:?}, before its {deadline:?}"
    );
    assert!(
        WasmModule::from_wat(SPIN, Limits::default().deadline(cortex::wasm::MIN_DEADLINE)).is_ok()
    );
}
