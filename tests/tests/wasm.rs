//! WebAssembly guests: the host-side memory manager and the module runner.

use std::collections::BTreeMap;
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::wasm::{GuestPtr, Limits, WasmError, WasmInstance, WasmModule, PAGE};
use cortex::workers::{PoolOptions, WorkerPool};

/// Packs `(ptr, len)` locals into the i64 a callable export returns.
const PACK: &str = "(i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len)))";

/// Transforms in place (ASCII upper case), asks the host for a buffer
/// (`twice`), traps, loops forever, answers outside its buffers, and keeps
/// a count of its calls in a global.
fn guest() -> String {
    format!(
        r#"(module
  (import "cortex" "alloc" (func $alloc (param i32 i32) (result i32)))
  (import "cortex" "free" (func $free (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (func (export "upper") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $c i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
        (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    {PACK})
  (func (export "twice") (param $in i32) (param $n i32) (result i64)
    (local $ptr i32) (local $len i32)
    (local.set $len (i32.mul (local.get $n) (i32.const 2)))
    (local.set $ptr (call $alloc (local.get $len) (i32.const 1)))
    (if (i32.eqz (local.get $ptr)) (then unreachable))
    (memory.copy (local.get $ptr) (local.get $in) (local.get $n))
    (memory.copy (i32.add (local.get $ptr) (local.get $n)) (local.get $in) (local.get $n))
    ;; Gives the input back early; the host must not free it twice.
    (drop (call $free (local.get $in)))
    {PACK})
  (func (export "scratch") (param $in i32) (param $n i32) (result i64)
    ;; Frees something that is not one of the call's buffers: -1.
    (i64.extend_i32_s (call $free (i32.const 12345))))
  (func (export "hog") (param $in i32) (param $n i32) (result i64)
    ;; Asks for more than the limit allows: the host answers 0.
    (i64.extend_i32_u (call $alloc (i32.const 0x7fff0000) (i32.const 8))))
  (func (export "calls") (param $in i32) (param $n i32) (result i64)
    (i64.extend_i32_u (global.get $calls)))
  (func (export "crash") (param i32 i32) (result i64)
    unreachable)
  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0))
  (func (export "outside") (param i32 i32) (result i64)
    ;; 16 bytes at offset 16: inside the guest's reserved page.
    (i64.const 0x0000001000000010))
  (func (export "too_long") (param $ptr i32) (param $len i32) (result i64)
    (local.set $len (i32.add (local.get $len) (i32.const 1)))
    {PACK})
  (func (export "wrong") (param i32) (result i32) (local.get 0)))"#
    )
}

fn instance(limits: Limits) -> WasmInstance {
    WasmModule::from_wat(&guest(), limits)
        .expect("the guest compiles")
        .instantiate()
        .expect("the guest instantiates")
}

#[test]
fn transforms_bytes_in_place() {
    let mut g = instance(Limits::default().fuel(10_000_000));
    assert_eq!(g.call("upper", b"hello, wasm!").unwrap(), b"HELLO, WASM!");
    assert_eq!(g.call("upper", b"").unwrap(), b"");
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = g.call("upper", &big).unwrap();
    assert_eq!(out, big.to_ascii_uppercase());
    // Every buffer of every call was given back.
    let stats = g.memory_stats().unwrap();
    assert_eq!(stats.live_allocations, 0);
    assert_eq!(stats.allocated_bytes, 0);
    assert_eq!(stats.free_blocks, 1);
    assert_eq!(stats.allocations, stats.frees);
}

#[test]
fn guest_allocates_its_answer_through_the_host() {
    let mut g = instance(Limits::default());
    assert_eq!(g.call("twice", b"abc").unwrap(), b"abcabc");
    let stats = g.memory_stats().unwrap();
    assert_eq!(stats.allocations, 2);
    assert_eq!(
        stats.live_allocations, 0,
        "the guest freed the input, the host the rest"
    );
    assert_eq!(
        g.call("scratch", b"").unwrap_err(),
        bad_output("scratch", 0xffff_ffff, 0xffff_ffff)
    );
    // A guest allocation past the memory limit is refused with 0, not a crash.
    let mut small = instance(Limits::default().max_memory_pages(4));
    let err = small.call("hog", b"").unwrap_err();
    assert_eq!(err, bad_output("hog", 0, 0));
}

/// The error for an answer of `len` bytes at `offset` outside the call's
/// buffers (guests here also use it to report a number in `len`).
fn bad_output(function: &str, offset: u32, len: u32) -> WasmError {
    WasmError::BadOutput {
        function: function.into(),
        offset,
        len,
    }
}

#[test]
fn answers_outside_the_calls_buffers_are_refused() {
    let mut g = instance(Limits::default());
    assert_eq!(
        g.call("outside", b"x").unwrap_err(),
        bad_output("outside", 16, 16)
    );
    let err = g.call("too_long", b"abc").unwrap_err();
    assert!(matches!(err, WasmError::BadOutput { len: 4, .. }), "{err}");
    // Not a trap: the instance is still good.
    assert!(!g.is_poisoned());
    assert_eq!(g.call("upper", b"ok").unwrap(), b"OK");
}

#[test]
fn a_trap_is_an_error_and_poisons_until_reset() {
    let mut g = instance(Limits::default());
    let err = g.call("crash", b"boom").unwrap_err();
    match &err {
        WasmError::Trap { function, message } => {
            assert_eq!(function, "crash");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(g.is_poisoned());
    assert_eq!(g.call("upper", b"x").unwrap_err(), WasmError::Poisoned);
    g.reset().unwrap();
    assert_eq!(g.call("upper", b"x").unwrap(), b"X");
    // The call's buffers were freed even though it trapped.
    assert_eq!(g.memory_stats().unwrap().live_allocations, 0);
}

#[test]
fn a_looping_guest_runs_out_of_fuel() {
    let mut g = instance(Limits::default().fuel(50_000));
    let err = g.call("spin", b"").unwrap_err();
    assert_eq!(
        err,
        WasmError::FuelExhausted {
            function: "spin".into(),
            fuel: 50_000
        }
    );
    // Fuel is per call: after a reset a normal call has all of it again.
    g.reset().unwrap();
    for _ in 0..10 {
        assert_eq!(g.call("upper", b"fuel").unwrap(), b"FUEL");
    }
}

#[test]
fn a_looping_guest_is_stopped_at_its_deadline() {
    let deadline = Duration::from_millis(50);
    let mut g = instance(Limits::default().deadline(deadline));
    assert_eq!(
        g.call("spin", b"").unwrap_err(),
        WasmError::DeadlineExceeded {
            function: "spin".into(),
            deadline
        }
    );
    g.reset().unwrap();
    assert_eq!(g.call("upper", b"in time").unwrap(), b"IN TIME");
}

/// `(module (memory (export "memory") 1) (func (export "echo") (param i32 i32)
/// (result i64) ...))`, encoded by hand.
const ECHO_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7e, // type: (i32 i32) -> i64
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x05, 0x03, 0x01, 0x00, 0x01, // one memory, 1 page
    0x07, 0x11, 0x02, // two exports
    0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // "memory"
    0x04, b'e', b'c', b'h', b'o', 0x00, 0x00, // "echo"
    0x0a, 0x0e, 0x01, 0x0c, 0x00, // code: one body, no locals
    0x20, 0x00, 0xad, 0x42, 0x20, 0x86, // (ptr as u64) << 32
    0x20, 0x01, 0xad, 0x84, 0x0b, // | len as u64
];

#[test]
fn a_binary_module_runs_too() {
    let module = WasmModule::from_bytes(ECHO_WASM, Limits::default()).unwrap();
    let mut g = module.instantiate().unwrap();
    assert_eq!(g.call("echo", b"binary").unwrap(), b"binary");
    // Text is not binary: from_bytes refuses WAT.
    assert!(matches!(
        WasmModule::from_bytes(b"(module)", Limits::default()),
        Err(WasmError::Compile(_))
    ));
}

#[test]
fn calling_what_is_not_there() {
    let mut g = instance(Limits::default());
    assert_eq!(
        g.call("nope", b"").unwrap_err(),
        WasmError::NoFunction("nope".into())
    );
    assert!(matches!(
        g.call("wrong", b"").unwrap_err(),
        WasmError::WrongSignature { .. }
    ));
    assert!(matches!(
        WasmModule::from_wat("(module (func $f (result i32)))x", Limits::default()),
        Err(WasmError::Compile(_))
    ));
    assert!(matches!(
        WasmModule::from_bytes(b"\0asm\x01\0\0\0garbage", Limits::default()),
        Err(WasmError::Compile(_))
    ));
    let no_memory = WasmModule::from_wat("(module)", Limits::default()).unwrap();
    assert_eq!(no_memory.instantiate().unwrap_err(), WasmError::NoMemory);
    let unknown_import = WasmModule::from_wat(
        r#"(module (import "env" "secret" (func)) (memory (export "memory") 1))"#,
        Limits::default(),
    )
    .unwrap();
    let err = unknown_import.instantiate().unwrap_err();
    assert!(
        matches!(&err, WasmError::Instantiate(m) if m.contains("secret")),
        "{err}"
    );
    let too_big = WasmModule::from_wat(
        r#"(module (memory (export "memory") 10))"#,
        Limits::default().max_memory_pages(4),
    )
    .unwrap();
    assert!(matches!(
        too_big.instantiate(),
        Err(WasmError::Instantiate(_))
    ));
}

/// A module with nothing but a memory of `pages` pages (at most `max`).
fn bare(pages: u32, max: u64, reserved: Option<u32>) -> WasmInstance {
    let mut limits = Limits::default().max_memory_pages(max);
    if let Some(r) = reserved {
        limits = limits.reserved(r);
    }
    WasmModule::from_wat(
        &format!(r#"(module (memory (export "memory") {pages}))"#),
        limits,
    )
    .unwrap()
    .instantiate()
    .unwrap()
}

#[test]
fn reserved_start_is_never_handed_out() {
    // By default the module's initial memory is the guest's.
    let mut g = bare(2, 16, None);
    let p = g.alloc(8, 8).unwrap();
    assert!(u64::from(p.offset()) >= 2 * PAGE);
    // An explicit reservation.
    let mut g = bare(1, 16, Some(4096));
    let p = g.alloc(8, 8).unwrap();
    assert_eq!(p.offset(), 4096);
    // A guest's __heap_base inside its initial memory changes nothing: its
    // own malloc may use what lies above it (see wasm_guests.rs).
    let mut g = WasmModule::from_wat(
        r#"(module (memory (export "memory") 1) (global (export "__heap_base") i32 (i32.const 1000)))"#,
        Limits::default(),
    )
    .unwrap()
    .instantiate()
    .unwrap();
    let p = g.alloc(8, 8).unwrap();
    assert!(u64::from(p.offset()) >= PAGE);
    // A __heap_base past the initial memory: growth starts there, not below.
    let mut g = WasmModule::from_wat(
        r#"(module (memory (export "memory") 1) (global (export "__heap_base") i32 (i32.const 100000)))"#,
        Limits::default(),
    )
    .unwrap()
    .instantiate()
    .unwrap();
    let p = g.alloc(60_000, 8).unwrap();
    assert_eq!(p.offset(), 100_000);
}

#[test]
fn alignment_is_honoured_and_checked() {
    let mut g = bare(1, 64, Some(8));
    for shift in 0..17 {
        let align = 1u32 << shift;
        // A one-byte allocation first, so the next one starts unaligned.
        let _crumb = g.alloc(1, 1).unwrap();
        let p = g.alloc(24, align).unwrap();
        assert_eq!(p.offset() % align, 0, "align {align}");
    }
    for bad in [0, 3, 12, 0x8000_0001] {
        assert_eq!(g.alloc(8, bad).unwrap_err(), WasmError::BadAlignment(bad));
    }
}

#[test]
fn zero_size_allocations_are_distinct_and_not_null() {
    let mut g = bare(1, 4, Some(64));
    let a = g.alloc(0, 1).unwrap();
    let b = g.alloc(0, 1).unwrap();
    assert!(a.offset() != 0 && b.offset() != 0);
    assert_ne!(a.offset(), b.offset());
    assert!(a.is_empty());
    g.write(&a, b"").unwrap();
    assert_eq!(g.read(&a, 0).unwrap(), b"");
    assert_eq!(
        g.write(&a, b"x").unwrap_err(),
        WasmError::OutOfBounds {
            at: 0,
            len: 1,
            allocation: 0
        }
    );
    g.free(&a).unwrap();
    g.free(&b).unwrap();
}

#[test]
fn misuse_is_an_error_and_changes_nothing() {
    let mut g = bare(1, 4, Some(64));
    let mut other = bare(1, 4, Some(64));
    let a = g.alloc(16, 8).unwrap();
    let b = g.alloc(16, 8).unwrap();
    g.write(&b, b"neighbour's data").unwrap();
    // Past the allocation, though well inside the memory.
    assert_eq!(
        g.write(&a, &[0xAA; 17]).unwrap_err(),
        WasmError::OutOfBounds {
            at: 0,
            len: 17,
            allocation: 16
        }
    );
    assert!(matches!(g.read(&a, 17), Err(WasmError::OutOfBounds { .. })));
    assert_eq!(g.read(&b, 16).unwrap(), b"neighbour's data");
    // A pointer of another instance.
    let foreign = other.alloc(16, 8).unwrap();
    assert_eq!(
        g.free(&foreign).unwrap_err(),
        WasmError::UnknownPointer {
            offset: foreign.offset()
        }
    );
    assert!(matches!(
        g.read(&foreign, 1),
        Err(WasmError::UnknownPointer { .. })
    ));
    // Double free, and use after free, even once the place is reused.
    g.free(&a).unwrap();
    assert_eq!(
        g.free(&a).unwrap_err(),
        WasmError::AlreadyFreed { offset: a.offset() }
    );
    let c = g.alloc(16, 8).unwrap();
    assert_eq!(c.offset(), a.offset(), "the place is reused");
    assert!(matches!(
        g.write(&a, b"x"),
        Err(WasmError::AlreadyFreed { .. })
    ));
    assert!(matches!(g.free(&a), Err(WasmError::AlreadyFreed { .. })));
    g.free(&c).unwrap();
    assert_eq!(g.read(&b, 16).unwrap(), b"neighbour's data");
    assert_eq!(g.memory_stats().unwrap().live_allocations, 1);
}

#[test]
fn memory_grows_by_pages_up_to_the_maximum() {
    let mut g = bare(1, 4, Some(1024));
    let first = g.alloc(1000, 8).unwrap();
    g.write(&first, &[7; 1000]).unwrap();
    let big = g.alloc(100_000, 8).unwrap(); // needs a second page at least
    let stats = g.memory_stats().unwrap();
    assert_eq!(stats.growths, 1);
    g.write(&big, &vec![9; 100_000]).unwrap();
    // Four pages in all: 256 KiB; this cannot fit now.
    let err = g.alloc(200_000, 8).unwrap_err();
    assert_eq!(
        err,
        WasmError::OutOfMemory {
            requested: 200_000,
            max_pages: 4
        }
    );
    // Nothing was lost.
    assert_eq!(g.read(&first, 1000).unwrap(), vec![7; 1000]);
    assert_eq!(g.read(&big, 100_000).unwrap(), vec![9; 100_000]);
    // Freed, the space is one block and big enough again.
    g.free(&big).unwrap();
    g.free(&first).unwrap();
    assert_eq!(g.memory_stats().unwrap().free_blocks, 1);
    let again = g.alloc(200_000, 8).unwrap();
    assert!(u64::from(again.offset()) + 200_000 <= 4 * PAGE);
}

/// Random allocations, frees and writes against a model of what each live
/// allocation holds.
#[test]
fn random_sequences_match_a_model() {
    for seed in 0..8u64 {
        let mut rng = fastrand_seed(seed);
        let reserved = 4096;
        let mut g = bare(1, 64, Some(reserved));
        let mut live: Vec<(GuestPtr, Vec<u8>)> = Vec::new();
        for step in 0..3000 {
            let r = rng.next() % 100;
            if r < 55 || live.is_empty() {
                let size = (rng.next() % 3000) as u32;
                let align = 1u32 << (rng.next() % 8);
                let Ok(p) = g.alloc(size, align) else {
                    continue;
                };
                assert_eq!(p.offset() % align, 0);
                assert!(p.offset() >= reserved);
                assert_eq!(p.len(), size);
                let fill: Vec<u8> = (0..size).map(|i| (i as u64 ^ step ^ seed) as u8).collect();
                g.write(&p, &fill).unwrap();
                live.push((p, fill));
            } else if r < 90 {
                let i = (rng.next() % live.len() as u64) as usize;
                let (p, fill) = live.swap_remove(i);
                assert_eq!(g.read(&p, p.len()).unwrap(), fill, "contents kept");
                g.free(&p).unwrap();
            } else {
                // Rewrite part of one allocation; the others must not change.
                let i = (rng.next() % live.len() as u64) as usize;
                let (p, fill) = &mut live[i];
                if !fill.is_empty() {
                    let at = (rng.next() % fill.len() as u64) as usize;
                    fill[at] = fill[at].wrapping_add(1);
                    g.write(p, fill).unwrap();
                }
            }
            if step % 100 == 0 {
                check_model(&g, &live);
            }
        }
        check_model(&g, &live);
        for (p, _) in live.drain(..) {
            g.free(&p).unwrap();
        }
        let stats = g.memory_stats().unwrap();
        assert_eq!(
            stats.free_blocks, 1,
            "seed {seed}: merging leaves one block"
        );
        assert_eq!(stats.allocated_bytes, 0);
        assert_eq!(stats.fragmentation, 0.0);
    }
}

fn check_model(g: &WasmInstance, live: &[(GuestPtr, Vec<u8>)]) {
    let mut spans = BTreeMap::new();
    for (p, fill) in live {
        assert_eq!(&g.read(p, p.len()).unwrap(), fill);
        assert_eq!(g.view(p).unwrap(), &fill[..]);
        spans.insert(p.offset(), p.len().max(1));
    }
    let mut end = 0u64;
    for (offset, len) in spans {
        assert!(u64::from(offset) >= end, "allocations overlap at {offset}");
        end = u64::from(offset) + u64::from(len);
    }
    assert!(end <= 64 * PAGE);
}

/// A small xorshift so the sequences are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn fastrand_seed(seed: u64) -> XorShift {
    XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
}

#[test]
fn memory_counts_are_metrics() {
    let module =
        WasmModule::from_wat(&guest(), Limits::default().metrics("wasm_test_guest")).unwrap();
    let mut a = module.instantiate().unwrap();
    let mut b = module.instantiate().unwrap();
    a.call("upper", b"one").unwrap();
    b.call("upper", b"two").unwrap();
    b.call("twice", b"three").unwrap();
    let text = global().encode(Format::PrometheusText);
    assert!(
        text.contains(r#"cortex_wasm_memory_allocations_total{memory="wasm_test_guest"} 4"#),
        "{text}"
    );
    assert!(text.contains(r#"cortex_wasm_memory_allocated_bytes{memory="wasm_test_guest"} 0"#));
    assert!(text.contains(r#"cortex_wasm_memory_fragmentation_ratio{memory="wasm_test_guest"} 0"#));
    // Counters never go down when an instance goes away.
    drop(b);
    let text = global().encode(Format::PrometheusText);
    assert!(text.contains(r#"cortex_wasm_memory_allocations_total{memory="wasm_test_guest"} 4"#));
    assert!(text.contains(r#"cortex_wasm_memory_frees_total{memory="wasm_test_guest"} 4"#));
    drop(a);
}

#[test]
fn each_worker_owns_an_instance() {
    let module = WasmModule::from_wat(&guest(), Limits::default().fuel(1_000_000)).unwrap();
    let factory = module.clone();
    let pool = WorkerPool::with_state(
        PoolOptions::named("wasm-test").threads(2).without_metrics(),
        move || factory.worker(),
    );
    let mut handles = Vec::new();
    for i in 0..200 {
        let input = format!("request {i}");
        handles.push((
            input.to_uppercase(),
            pool.submit_blocking(move |w: &mut cortex::wasm::WasmWorker| {
                w.call("upper", input.as_bytes())
            })
            .unwrap(),
        ));
    }
    for (want, h) in handles {
        assert_eq!(h.wait().unwrap().unwrap(), want.as_bytes());
    }
    // Two tasks that wait for each other run on both workers at once; each
    // reads the call count of its worker's own instance, and the two add
    // up to the calls made.
    let both = std::sync::Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let both = std::sync::Arc::clone(&both);
            pool.submit_blocking(move |w: &mut cortex::wasm::WasmWorker| {
                both.wait();
                let thread = std::thread::current().name().map(str::to_owned);
                (thread, w.call("calls", b"").unwrap_err())
            })
            .unwrap()
        })
        .collect();
    let mut threads = Vec::new();
    let mut total = 0;
    for h in handles {
        let (thread, err) = h.wait().unwrap();
        threads.push(thread);
        match err {
            WasmError::BadOutput { len, .. } => total += len,
            other => panic!("{other:?}"),
        }
    }
    assert_ne!(threads[0], threads[1]);
    assert_eq!(total, 200);
    // A poisoned instance is replaced on the worker's next call.
    let crashed = pool
        .submit_blocking(|w: &mut cortex::wasm::WasmWorker| {
            let err = w.call("spin", b"").unwrap_err();
            let after = w.call("upper", b"fresh").unwrap();
            (err, after)
        })
        .unwrap()
        .wait()
        .unwrap();
    assert!(matches!(crashed.0, WasmError::FuelExhausted { .. }));
    assert_eq!(crashed.1, b"FRESH");
    pool.shutdown();
}

#[test]
fn a_guest_cannot_grow_a_table_past_its_limit() {
    let module = WasmModule::from_wat(
        r#"(module
          (memory (export "memory") 1)
          (table $t 10 funcref)
          ;; Echoes its input when the grow was refused (-1), else it traps.
          (func (export "grow") (param $ptr i32) (param $len i32) (result i64)
            (if (i32.ne (table.grow $t (ref.null func) (i32.const 100000000)) (i32.const -1))
              (then unreachable))
            (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
                    (i64.extend_i32_u (local.get $len)))))"#,
        Limits::default(),
    )
    .unwrap();
    let mut g = module.instantiate().unwrap();
    assert_eq!(g.call("grow", b"ok").unwrap(), b"ok", "table.grow gave -1");
    // A table declared past the limit does not instantiate.
    let huge = WasmModule::from_wat(
        r#"(module (memory (export "memory") 1) (table 100000000 funcref))"#,
        Limits::default(),
    )
    .unwrap();
    match huge.instantiate() {
        Err(WasmError::Instantiate(message)) => assert!(message.contains("table"), "{message}"),
        other => panic!("expected a refused instantiation, got {other:?}"),
    }
    // Raised on purpose, it fits.
    let roomy = WasmModule::from_wat(
        r#"(module (memory (export "memory") 1) (table 20000 funcref))"#,
        Limits::default().max_table_elements(20_000),
    )
    .unwrap();
    assert!(roomy.instantiate().is_ok());
}

#[test]
fn many_memories_are_refused_unless_asked_for() {
    let wat = r#"(module (memory (export "memory") 1) (memory 1) (memory 1) (memory 1))"#;
    match WasmModule::from_wat(wat, Limits::default()) {
        Err(WasmError::Compile(message)) => assert!(message.contains("memor"), "{message}"),
        other => panic!("multi-memory is off by default, got {other:?}"),
    }
    let two = WasmModule::from_wat(wat, Limits::default().max_memories(2)).unwrap();
    match two.instantiate() {
        Err(WasmError::Instantiate(message)) => assert!(message.contains("memor"), "{message}"),
        other => panic!("four memories past a limit of two, got {other:?}"),
    }
    let four = WasmModule::from_wat(wat, Limits::default().max_memories(4)).unwrap();
    assert!(four.instantiate().is_ok());
}

#[test]
fn by_default_a_looping_guest_is_stopped_and_modules_share_one_ticker() {
    let modules: Vec<WasmModule> = (0..20)
        .map(|_| WasmModule::from_wat(&guest(), Limits::default()).unwrap())
        .collect();
    // Thread names are cut to 15 bytes in `comm`; this one is shorter.
    let tickers = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "cortex-epoch")
        .count();
    assert_eq!(tickers, 1, "one ticker per process, not per module");
    let started = std::time::Instant::now();
    let mut g = modules[0].instantiate().unwrap();
    assert_eq!(
        g.call("spin", b"").unwrap_err(),
        WasmError::DeadlineExceeded {
            function: "spin".into(),
            deadline: cortex::wasm::DEFAULT_DEADLINE
        }
    );
    assert!(started.elapsed() < cortex::wasm::DEFAULT_DEADLINE + Duration::from_secs(2));
}
