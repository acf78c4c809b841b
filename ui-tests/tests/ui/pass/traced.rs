//! Every function shape `#[traced]` supports, alone and stacked.

use std::fmt::Display;

/// Kept: docs, visibility, attributes.
#[cortex::traced]
#[inline]
pub fn plain(a: u32) -> u32 {
    a
}

#[cortex::traced(name = "custom", kind = "server", attributes(a = a, "b.c" = b, d.e.f = a + 1))]
fn with_options(a: u32, b: &str) -> Result<u32, String> {
    Ok(a + b.len() as u32)
}

#[cortex::traced(kind = "producer")]
async fn asynchronous(s: String) -> Result<String, std::io::Error> {
    Ok(s)
}

#[cortex::traced(kind = "consumer")]
fn generic<T: Display + ?Sized>(value: &T) -> String {
    value.to_string()
}

#[cortex::traced]
fn pairs<'a, K, V>(items: &'a [(K, V)]) -> impl Iterator<Item = &'a K> + 'a
where
    K: 'a,
    V: 'a,
{
    items.iter().map(|(k, _)| k)
}

#[cortex::traced]
async fn later<T: Send>(value: T) -> impl Send {
    value
}

#[cortex::traced]
unsafe fn dangerous(p: *const u8) -> u8 {
    unsafe { *p }
}

#[cortex::traced]
fn nothing() {}

struct Service {
    name: String,
}

impl Service {
    #[cortex::traced(attributes(service = self.name.as_str()))]
    fn get(&self) -> &str {
        &self.name
    }

    #[cortex::traced]
    fn set(&mut self, name: String) {
        self.name = name;
    }

    #[cortex::traced(kind = "client")]
    async fn fetch(&self, id: u64) -> Result<u64, String> {
        Ok(id)
    }

    #[cortex::traced]
    fn consume(self) -> String {
        self.name
    }
}

#[async_trait::async_trait]
trait Repo {
    async fn load(&self, id: u32) -> Result<String, String>;
}

struct Db;

#[async_trait::async_trait]
impl Repo for Db {
    #[cortex::traced(attributes(id = id))]
    async fn load(&self, id: u32) -> Result<String, String> {
        Ok(id.to_string())
    }
}

#[derive(Debug)]
struct PolicyError;

impl From<cortex::resilience::Error> for PolicyError {
    fn from(_: cortex::resilience::Error) -> Self {
        PolicyError
    }
}

#[cortex::counted]
#[cortex::timed]
#[cortex::traced]
#[cortex::retry(max = 2)]
async fn stacked(x: u32) -> Result<u32, PolicyError> {
    Ok(x)
}

#[cortex::traced(crate = ::cortex)]
fn with_crate_path() {}

fn main() {
    let _ = plain(1);
    let _ = with_options(1, "x");
    let _ = asynchronous(String::new());
    let _ = generic("x");
    let _ = pairs::<u8, u8>(&[]).count();
    let _ = later(1);
    let _ = unsafe { dangerous(&1) };
    nothing();
    let mut s = Service { name: "a".into() };
    s.set("b".into());
    let _ = s.get();
    let _ = s.fetch(1);
    let _ = s.consume();
    let _ = Db.load(1);
    let _ = stacked(1);
    with_crate_path();
}
