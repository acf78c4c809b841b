// A trait in scope with blanket methods named like the expansion's calls
// (`tracing::Instrument` is one: `instrument` on every type) never takes
// them: the expansion names the types it calls methods of.
#![allow(dead_code)]

#[derive(Debug)]
pub struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

pub trait Everything: Sized {
    fn instrument(self, _span: ()) -> Self {
        self
    }
    fn finish(self, _a: u8, _b: u8) {}
    fn attribute(&mut self) {}
    fn is_recording(&self) -> u8 {
        0
    }
    fn get(&self) -> u8 {
        0
    }
    fn start(&self) {}
    fn call(&self) {}
}

impl<T> Everything for T {}

#[cortex::traced(attributes(id = id))]
pub async fn traced_async(id: u32) -> u32 {
    id
}

#[cortex::traced(attributes(id = id))]
pub fn traced_sync(id: u32) -> u32 {
    id
}

#[cortex::counted]
#[cortex::timed]
pub async fn fused(id: u32) -> Result<u32, AppError> {
    Ok(id)
}

#[cortex::counted]
pub fn counted(id: u32) -> u32 {
    id
}

#[cortex::circuit_breaker]
#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::bulkhead]
#[cortex::rate_limit]
#[cortex::timeout("1s")]
pub async fn guarded(id: u32) -> Result<u32, AppError> {
    Ok(id)
}

#[cortex::circuit_breaker]
#[cortex::retry(max = 2, delay = "1ms")]
pub fn guarded_sync(id: u32) -> Result<u32, AppError> {
    Ok(id)
}

fn main() {}
