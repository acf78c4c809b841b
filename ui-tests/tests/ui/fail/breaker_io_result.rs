// `io::Result<T>`: its error type cannot carry a rejection; one error, on
// the return type.
#[cortex::circuit_breaker]
fn read() -> std::io::Result<u8> {
    Ok(1)
}

fn main() {}
