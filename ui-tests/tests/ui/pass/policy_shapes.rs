// Every function shape a service has, under policies (and observers).
use std::future::Future;
use std::marker::PhantomData;

#[derive(Debug, Clone)]
pub enum AppError {
    Backend,
    Policy(cortex::resilience::Error),
}

impl From<cortex::resilience::Error> for AppError {
    fn from(e: cortex::resilience::Error) -> Self {
        AppError::Policy(e)
    }
}

pub struct Conn {
    url: String,
}

impl Conn {
    // `-> Result<Self, E>` on a constructor.
    #[cortex::retry(max = 2, delay = "1ms")]
    #[cortex::circuit_breaker]
    pub fn open(url: &str) -> Result<Self, AppError> {
        Ok(Conn { url: url.to_owned() })
    }

    #[cortex::timeout("1s")]
    #[cortex::bulkhead]
    pub async fn connect(url: String) -> Result<Self, AppError> {
        Ok(Conn { url })
    }

    // A named lifetime in the return type.
    #[cortex::circuit_breaker]
    #[cortex::retry(max = 2, delay = "1ms")]
    pub fn url<'a>(&'a self, _prefix: &'a str) -> Result<&'a str, AppError> {
        Ok(&self.url)
    }

    // An elided one.
    #[cortex::bulkhead]
    pub fn host(&self) -> Result<&str, AppError> {
        Ok(&self.url)
    }

    // `&mut self` under a policy that does not use the arguments again.
    #[cortex::circuit_breaker]
    #[cortex::counted]
    pub fn reset(&mut self) -> Result<&mut String, AppError> {
        self.url.clear();
        Ok(&mut self.url)
    }
}

// Generics and const generics in the return type.
#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::circuit_breaker]
pub fn get<T: Default + Clone>(key: &str) -> Result<T, AppError> {
    let _ = key;
    Ok(T::default())
}

#[cortex::bulkhead]
#[cortex::retry(max = 2, delay = "1ms")]
pub async fn chunk<const N: usize>(fill: u8) -> Result<[u8; N], AppError> {
    Ok([fill; N])
}

pub struct Typed<T>(PhantomData<T>);

impl<T: Send + 'static> Typed<T> {
    #[cortex::circuit_breaker]
    #[cortex::timeout("1s")]
    pub async fn make() -> Result<Self, AppError> {
        Ok(Typed(PhantomData))
    }
}

// `mut` and pattern arguments, raw identifiers and `#[cfg]`'d arguments
// under retry and fallback.
#[cortex::retry(max = 2, delay = "1ms")]
pub fn append(mut buf: Vec<u8>, (a, b): (u8, u8), r#type: String) -> Result<usize, AppError> {
    buf.push(a);
    buf.push(b);
    Ok(buf.len() + r#type.len())
}

pub struct Json<T>(pub T);

impl<T: Clone> Clone for Json<T> {
    fn clone(&self) -> Self {
        Json(self.0.clone())
    }
}

async fn cached_len(_body: Json<String>, r#type: String, _: u8) -> Result<usize, AppError> {
    Ok(r#type.len())
}

#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::circuit_breaker(fallback = cached_len)]
pub async fn body_len(Json(body): Json<String>, r#type: String, _: u8) -> Result<usize, AppError> {
    Ok(body.len() + r#type.len())
}

fn sized(_a: u8, #[cfg(any())] _never: u8, #[cfg(all())] b: u8) -> Result<u8, AppError> {
    Ok(b)
}

#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::bulkhead(fallback = sized)]
pub fn gated(mut a: u8, #[cfg(any())] never: u8, #[cfg(all())] b: u8) -> Result<u8, AppError> {
    a += 1;
    Ok(a + b)
}

// Attributes of a span outside the retry read pattern arguments.
#[cortex::traced(attributes(first = a, body.len = body.len()))]
#[cortex::retry(max = 2, delay = "1ms")]
pub fn traced_pattern((a, mut b): (u8, u8), Json(body): Json<String>) -> Result<u8, AppError> {
    b += 1;
    Ok(a + b + body.len() as u8)
}

// A fn returning `impl Future` from a trailing async block, as in traits.
pub trait Store {
    fn load(&self, id: u32) -> impl Future<Output = Result<u32, AppError>> + Send;
}

pub struct Pg;

impl Store for Pg {
    #[cortex::traced]
    #[cortex::counted]
    #[cortex::retry(max = 2, delay = "1ms")]
    #[cortex::timeout("1s")]
    fn load(&self, id: u32) -> impl Future<Output = Result<u32, AppError>> + Send {
        async move { Ok(id) }
    }
}

// Policies on #[async_trait] methods.
#[async_trait::async_trait]
pub trait Repo {
    async fn fetch(&self, key: String, (a, b): (u8, u8)) -> Result<usize, AppError>;
    async fn hold(&self) -> Result<(), AppError>;
}

pub struct Db;

#[async_trait::async_trait]
impl Repo for Db {
    #[cortex::retry(max = 2, delay = "1ms")]
    #[cortex::circuit_breaker(record_if = is_backend)]
    #[cortex::rate_limit(permits = 10, period = "1s")]
    #[cortex::timeout("1s")]
    #[cortex::bulkhead]
    async fn fetch(&self, key: String, (a, b): (u8, u8)) -> Result<usize, AppError> {
        Ok(key.len() + usize::from(a + b))
    }

    #[cortex::counted]
    #[cortex::circuit_breaker]
    async fn hold(&self) -> Result<(), AppError> {
        Ok(())
    }
}

fn is_backend(e: &AppError) -> bool {
    matches!(e, AppError::Backend)
}

// A plain value under a fallback, also behind an alias the macro cannot
// see into.
pub type Greeting = String;

async fn default_greeting(name: &str) -> Greeting {
    format!("hello, {name}")
}

#[cortex::rate_limit(permits = 1, period = "1s", max_wait = "0ms", fallback = default_greeting)]
#[cortex::timeout("1s")]
pub async fn greet(name: &str) -> Greeting {
    format!("hi, {name}")
}

// A `Result` alias without a fallback.
pub type Res<T> = Result<T, AppError>;

#[cortex::circuit_breaker]
pub async fn aliased(x: u8) -> Res<u8> {
    Ok(x)
}

// Two policies of one kind, with names of their own.
#[cortex::timeout("5s", name = "shapes-total")]
#[cortex::retry(max = 2, delay = "1ms")]
#[cortex::timeout("1s", name = "shapes-attempt")]
pub async fn twice_timed() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = Conn::open("x");
    let _ = Conn::connect("x".into());
    let c = Conn { url: "u".into() };
    let _ = c.url("p");
    let _ = c.host();
    let _ = get::<u8>("k");
    let _ = chunk::<4>(1);
    let _ = Typed::<u8>::make();
    let _ = append(vec![], (1, 2), "t".into());
    let _ = body_len(Json("b".into()), "t".into(), 0);
    let _ = gated(1, 2);
    let _ = traced_pattern((1, 2), Json(String::new()));
    let _ = Pg.load(1);
    let _ = Db.fetch("k".into(), (1, 2));
    let _ = Db.hold();
    let _ = greet("ada");
    let _ = aliased(1);
    let _ = twice_timed();
    let mut c = c;
    let _ = c.reset();
}
