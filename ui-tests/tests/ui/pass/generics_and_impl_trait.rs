use std::fmt::Display;

#[cortex::counted]
#[cortex::timed]
fn show<T: Display + ?Sized>(value: &T) -> String {
    value.to_string()
}

#[cortex::counted]
fn pairs<'a, K, V>(items: &'a [(K, V)]) -> impl Iterator<Item = &'a K> + 'a
where
    K: 'a,
    V: 'a,
{
    items.iter().map(|(k, _)| k)
}

#[cortex::timed]
async fn later<T: Send>(value: T) -> impl Send {
    value
}

struct Wrapper<T>(T);

impl<T: Clone> Wrapper<T> {
    #[cortex::counted]
    fn get(&self) -> T {
        self.0.clone()
    }
}

fn main() {
    assert_eq!(show("x"), "x");
    assert_eq!(pairs(&[(1, 'a')]).count(), 1);
    let _ = later(5u8);
    assert_eq!(Wrapper(3).get(), 3);
}
