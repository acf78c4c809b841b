// `-> !` and `#[track_caller]` under the observing attributes.
use std::panic::Location;

#[cortex::counted]
pub fn stop() -> ! {
    panic!("stopped")
}

#[cortex::traced]
pub fn halt(code: i32) -> ! {
    std::process::exit(code)
}

#[cortex::counted]
#[cortex::timed]
pub fn fused_stop() -> ! {
    loop {
        std::thread::park();
    }
}

#[cortex::traced]
#[cortex::counted]
pub async fn serve_forever() -> ! {
    loop {
        std::future::pending::<()>().await;
    }
}

#[cortex::counted]
#[cortex::timed]
#[track_caller]
pub fn located() -> &'static Location<'static> {
    Location::caller()
}

#[cortex::traced]
#[track_caller]
pub fn located_result(ok: bool) -> Result<u32, String> {
    if ok {
        Ok(Location::caller().line())
    } else {
        Err("no".into())
    }
}

#[cortex::timed]
#[track_caller]
pub fn timed_may_return_early(x: Option<u32>) -> Option<u32> {
    let v = x?;
    Some(v + Location::caller().line())
}

fn main() {
    let _ = located();
    let _ = located_result(true);
    let _ = timed_may_return_early(Some(1));
    let _ = serve_forever();
    if std::env::args().count() > 10 {
        stop();
    }
    if std::env::args().count() > 11 {
        halt(1);
    }
    if std::env::args().count() > 12 {
        fused_stop();
    }
}
