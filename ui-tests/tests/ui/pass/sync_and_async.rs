#[cortex::counted]
#[cortex::timed]
fn plain(x: u32) -> u32 {
    x + 1
}

#[cortex::counted]
#[cortex::timed]
fn unit() {}

#[cortex::counted]
#[cortex::timed(track_in_flight)]
async fn asynchronous(x: &str) -> Result<usize, std::num::ParseIntError> {
    let n: usize = x.parse()?;
    Ok(n)
}

#[cortex::counted]
fn early_return(x: i32) -> Result<i32, String> {
    if x < 0 {
        return Err("negative".into());
    }
    Ok(x)
}

fn main() {
    assert_eq!(plain(1), 2);
    unit();
    let _ = early_return(-1);
    let _fut = asynchronous("1");
}
