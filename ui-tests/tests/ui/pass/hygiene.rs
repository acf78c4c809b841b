// Names a user writes never collide with the names an expansion binds
// (those all start with `__cortex`, which no user writes: a `let` in the
// expansion would still trip over a user's `static` of that name, whatever
// its hygiene).
#![allow(non_upper_case_globals, dead_code)]

#[derive(Debug)]
pub struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

// Statics and consts a `let` pattern of the expansion would trip over.
static REGISTRY: u8 = 0;
static NAME: &str = "mine";
const result: u8 = 1;
const out: u8 = 2;
const call: u8 = 3;
const reject: u8 = 4;
const permit: u8 = 5;

// Functions named like the runtime's helpers.
fn call_once() {}
fn typed_future() {}
fn clone_for_retry() {}
fn init() {}
fn run() {}

#[cortex::circuit_breaker]
#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::bulkhead]
pub fn guarded(value: u8) -> Result<u8, AppError> {
    Ok(value + REGISTRY + result + out + call + reject + permit)
}

#[cortex::counted]
#[cortex::timed]
#[cortex::traced]
#[cortex::timeout("1s")]
pub async fn observed(value: u8) -> Result<u8, AppError> {
    let _ = NAME;
    Ok(value)
}

// A health check named like the expansion's helpers.
#[cortex::health_check]
fn check() -> bool {
    true
}

mod nested {
    #[cortex::health_check(name = "nested-run")]
    pub(crate) async fn run() -> bool {
        true
    }
}

fn main() {
    call_once();
    typed_future();
    clone_for_retry();
    init();
    run();
    let _ = guarded(1);
    let _ = observed(1);
    let _ = check();
    let _ = nested::run();
}
