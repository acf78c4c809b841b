struct Secret;

#[cortex::traced(attributes(secret = secret))]
fn f(secret: Secret) {
    let _ = secret;
}

fn main() {}
