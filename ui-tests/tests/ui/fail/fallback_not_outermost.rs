async fn cached() -> u32 {
    0
}

#[cortex::timeout("1s")]
#[cortex::bulkhead(fallback = cached)]
async fn call() -> u32 {
    1
}

fn main() {}
