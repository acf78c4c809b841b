//! A service whose configuration is refused does not start: a server with
//! the admin endpoints loads the process's configuration when it binds.

use cortex::http::{Error, Server};

#[tokio::test]
async fn a_refused_configuration_stops_the_server_from_starting() {
    // Before anything reads the environment (this binary's only test).
    std::env::set_var(
        "CORTEX_CIRCUIT_BREAKER__STRICT_PAYMENTS__FAILURE_RATE",
        "60",
    );
    std::env::set_var("CORTEX_RETRY__STRICT_PAYMENTS__MAX", "0");
    cortex::resilience::CircuitBreaker::new("strict-payments", Default::default()).unwrap();
    cortex::resilience::Retry::new("strict-payments", Default::default()).unwrap();
    let refused = Server::new()
        .with_admin()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Config(_)), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        "configuration refused:\nCORTEX_RETRY__STRICT_PAYMENTS__MAX: retry.strict-payments.max: must be at least 1 (it counts the first attempt)"
    );
    assert_eq!(
        cortex::resilience::circuit_breaker("strict-payments")
            .unwrap()
            .config()
            .failure_rate,
        50,
        "the good value beside it was not applied either"
    );
}
