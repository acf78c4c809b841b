//! A downstream call the demo protects: a simulated inventory service that
//! can be told to fail (`POST /inventory/fail`) and to recover
//! (`POST /inventory/heal`), called through a retry, the `inventory`
//! circuit breaker and a timeout.
//!
//! ```text
//! curl -X POST localhost:3000/inventory/fail
//! for i in $(seq 10); do curl -s localhost:3000/inventory/coffee; done   # 503s; the breaker opens
//! curl -s localhost:3000/cortex/circuitbreakers/inventory               # "state":"OPEN"
//! curl -X POST localhost:3000/inventory/heal
//! curl -X POST -H "Authorization: Bearer $CORTEX_ADMIN_TOKEN" \
//!   -d '{"state":"CLOSED"}' localhost:3000/cortex/circuitbreakers/inventory
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cortex::http::{json, text, Request, Response, StatusCode};

static DOWN: AtomicBool = AtomicBool::new(false);

/// Why a stock lookup failed.
#[derive(Debug)]
pub enum InventoryError {
    /// The inventory service answered with an error.
    Unavailable,
    /// A policy refused or cut the call (breaker open, timeout).
    Rejected(cortex::resilience::Error),
}

impl std::fmt::Display for InventoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InventoryError::Unavailable => f.write_str("the inventory service is unavailable"),
            InventoryError::Rejected(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for InventoryError {}

impl From<cortex::resilience::Error> for InventoryError {
    fn from(e: cortex::resilience::Error) -> Self {
        InventoryError::Rejected(e)
    }
}

/// How many of `item` are in stock, asked of the inventory service: two
/// attempts 20 ms apart, each under a 500 ms timeout, through the
/// `inventory` breaker, which opens when half of the last 10 calls (at
/// least 4) failed and stays open 10 s. Each policy is named `inventory`,
/// so a configuration tunes it as `[retry.inventory]`,
/// `[circuit_breaker.inventory]`, `[timeout.inventory]`.
#[cortex::counted]
#[cortex::retry(name = "inventory", max = 2, delay = "20ms")]
#[cortex::circuit_breaker(
    name = "inventory",
    failure_rate = 50,
    minimum_calls = 4,
    window = 10,
    open_for = "10s"
)]
#[cortex::timeout(after = "500ms", name = "inventory")]
pub async fn stock_of(item: &str) -> Result<u32, InventoryError> {
    // The simulated network round trip.
    tokio::time::sleep(Duration::from_millis(2)).await;
    if DOWN.load(Ordering::Relaxed) {
        return Err(InventoryError::Unavailable);
    }
    Ok(item.bytes().map(u32::from).sum::<u32>() % 100)
}

/// `GET /inventory/{item}`.
pub(crate) async fn get_stock(req: Request) -> Response {
    let item = req.param("item").unwrap_or("").to_owned();
    match stock_of(&item).await {
        Ok(n) => json(
            StatusCode::OK,
            format!(
                "{{\"item\":\"{}\",\"in_stock\":{n}}}\n",
                item.escape_default()
            ),
        ),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

/// `POST /inventory/fail`: the inventory service fails every call.
pub(crate) async fn fail(_req: Request) -> Response {
    DOWN.store(true, Ordering::Relaxed);
    text(StatusCode::OK, "inventory: failing\n")
}

/// `POST /inventory/heal`: it answers again.
pub(crate) async fn heal(_req: Request) -> Response {
    DOWN.store(false, Ordering::Relaxed);
    text(StatusCode::OK, "inventory: healthy\n")
}
