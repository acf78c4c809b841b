trait Greeter {
    fn greet(&self) -> String;
    fn default_greet(&self) -> String {
        "hi".into()
    }
    async fn greet_later(&self) -> String;
}

struct English;

impl Greeter for English {
    #[cortex::counted]
    #[cortex::timed]
    fn greet(&self) -> String {
        "hello".into()
    }

    #[cortex::counted]
    async fn greet_later(&self) -> String {
        self.greet()
    }
}

trait WithDefault {
    #[cortex::counted]
    fn provided(&self) -> u8 {
        1
    }
}

impl WithDefault for English {}

#[async_trait::async_trait]
trait Repo {
    async fn load(&self, id: u32) -> Result<String, String>;
    async fn touch(&mut self);
}

struct Db {
    touched: u32,
}

#[async_trait::async_trait]
impl Repo for Db {
    #[cortex::counted]
    #[cortex::timed(track_in_flight)]
    async fn load(&self, id: u32) -> Result<String, String> {
        if id == 0 {
            return Err("no such id".into());
        }
        Ok(id.to_string())
    }

    #[cortex::timed]
    async fn touch(&mut self) {
        self.touched += 1;
    }
}

fn main() {
    assert_eq!(English.greet(), "hello");
    assert_eq!(English.default_greet(), "hi");
    assert_eq!(English.provided(), 1);
    let db = Db { touched: 0 };
    let _fut = db.load(1);
}
