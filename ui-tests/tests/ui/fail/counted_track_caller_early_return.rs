// With #[track_caller] the body runs in place, so it cannot leave early.
#[cortex::counted]
#[track_caller]
fn parse(s: &str) -> Result<u16, std::num::ParseIntError> {
    let port: u16 = s.parse()?;
    Ok(port)
}

fn main() {}
