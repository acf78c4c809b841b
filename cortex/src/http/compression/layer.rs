//! Compression as a tower layer, for hyper or axum stacks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header;

use super::Compression;
use crate::http::{Body, BoxError, Response};

/// A tower `Layer` that compresses responses of the wrapped service.
///
/// ```
/// use cortex::http::compression::{Compression, CompressionLayer};
/// let layer = CompressionLayer::new(Compression::default());
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct CompressionLayer {
    config: Arc<Compression>,
}

impl CompressionLayer {
    /// A layer with this configuration.
    pub fn new(config: Compression) -> Self {
        CompressionLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> tower_layer::Layer<S> for CompressionLayer {
    type Service = CompressionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CompressionService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`CompressionLayer`] makes.
#[derive(Debug, Clone)]
pub struct CompressionService<S> {
    inner: S,
    config: Arc<Compression>,
}

impl<S, ReqB, ResB> tower_service::Service<http::Request<ReqB>> for CompressionService<S>
where
    S: tower_service::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
    ResB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let method = req.method().clone();
        let accept = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let config = Arc::clone(&self.config);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let response = fut.await?;
            let (parts, body) = response.into_parts();
            let response = http::Response::from_parts(parts, Body::new(body));
            Ok(config.apply(&method, accept.as_deref(), response))
        })
    }
}
