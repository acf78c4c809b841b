//! The client observation for `reqwest` (feature `reqwest`), as
//! `reqwest-middleware` middleware.

use reqwest_middleware::{Middleware, Next};

use super::ClientLayer;
use crate::trace::Instrumented;

/// [`ClientLayer`]'s work for a `reqwest` client through
/// `reqwest-middleware`: a `client` span per request, `traceparent` and
/// `tracestate` sent, `cortex_http_client_requests_total{method,host,status}`
/// and the duration histogram.
///
/// ```no_run
/// use cortex::tower::ReqwestMiddleware;
///
/// # async fn run() -> Result<(), reqwest_middleware::Error> {
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(ReqwestMiddleware::new())
///     .build();
/// let response = client.get("http://inventory:8080/stock/7").send().await?;
/// # let _ = response;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReqwestMiddleware {
    layer: ClientLayer,
}

impl ReqwestMiddleware {
    /// Middleware recording into the global registry.
    pub fn new() -> Self {
        ReqwestMiddleware {
            layer: ClientLayer::new(),
        }
    }

    /// Middleware recording as `layer` does (its registry).
    pub fn from_layer(layer: ClientLayer) -> Self {
        ReqwestMiddleware { layer }
    }
}

#[async_trait::async_trait]
impl Middleware for ReqwestMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let url = req.url().clone();
        let method = req.method().clone();
        let call = self.layer.begin(
            &method,
            url.host_str(),
            url.port_or_known_default(),
            &url,
            req.headers_mut(),
        );
        let active = call.active();
        let result = Instrumented::new(next.run(req, extensions), active).await;
        match &result {
            Ok(response) => call.end(Some(response.status()), None),
            Err(e) => call.end(None, Some(e.to_string())),
        }
        result
    }
}
