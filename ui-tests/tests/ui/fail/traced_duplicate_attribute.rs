#[cortex::traced(attributes(user.id = id, user.id = id + 1))]
fn f(id: u64) -> u64 {
    id
}

fn main() {}
