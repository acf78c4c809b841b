trait T {
    #[cortex::counted]
    fn f(&self);
}

fn main() {}
