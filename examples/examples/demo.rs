//! The Cortex demo service.
//!
//! For now it runs a few annotated functions (a small payment flow, with
//! failures, a panic and a cancelled call) and prints what `/metrics` will
//! serve, in the format a Prometheus server would negotiate.
//!
//! ```text
//! cargo run --example demo
//! ```

use std::time::Duration;

use cortex::metrics::{global, negotiate, Format};

#[derive(Debug)]
struct Card {
    number: &'static str,
}

#[derive(Debug)]
enum PaymentError {
    Declined,
}

/// Charges a card; cards ending in 0 are declined.
#[cortex::counted(labels(service = "payments"))]
#[cortex::timed(buckets = [0.001, 0.005, 0.02, 0.1], track_in_flight)]
async fn charge(card: &Card, cents: u64) -> Result<u64, PaymentError> {
    // Simulated network latency to the card processor.
    tokio::time::sleep(Duration::from_millis(2 + cents % 7)).await;
    if card.number.ends_with('0') {
        Err(PaymentError::Declined)
    } else {
        Ok(cents)
    }
}

/// Looks a price up; panics on an unknown product (a bug the metrics reveal).
#[cortex::counted]
#[cortex::timed]
fn price_of(product: &str) -> u64 {
    match product {
        "coffee" => 350,
        "bagel" => 275,
        other => panic!("no price for {other}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cards = [
        Card { number: "4111" },
        Card { number: "4000" },
        Card { number: "5555" },
    ];
    for (i, product) in ["coffee", "bagel", "coffee", "bagel", "coffee"]
        .iter()
        .enumerate()
    {
        let cents = price_of(product);
        match charge(&cards[i % cards.len()], cents).await {
            Ok(c) => println!("charged {c} cents for {product}"),
            Err(e) => println!("charge for {product} failed: {e:?}"),
        }
    }
    // A bug: the panic is recorded as result="panic" and the demo goes on.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = std::panic::catch_unwind(|| price_of("unicorn"));
    std::panic::set_hook(previous_hook);
    println!("price_of(\"unicorn\") panicked: {}", caught.is_err());
    // A caller that gives up: the future is dropped, result="cancelled".
    let gave_up = tokio::time::timeout(Duration::from_micros(10), charge(&cards[0], 999)).await;
    println!("impatient charge timed out: {}", gave_up.is_err());

    // What Prometheus asks for by default.
    let accept =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let format = negotiate(Some(accept));
    println!("\n--- GET /metrics (Accept: {accept}) ---");
    println!("Content-Type: {}\n", format.content_type());
    print!("{}", global().encode(format));
    if format != Format::PrometheusText {
        println!("\n--- the same in the Prometheus text format 0.0.4 ---\n");
        print!("{}", global().encode(Format::PrometheusText));
    }
}
