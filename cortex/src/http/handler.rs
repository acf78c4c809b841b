//! Requests, responses and handlers.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::Body;
use crate::util::{panic_message, CatchUnwind, Panic};

/// A response from a handler.
pub type Response = http::Response<Body>;

/// A request as a handler sees it: the head, the path parameters of the
/// matched route, and the body (already read, within the size limit).
#[derive(Debug)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) params: HashMap<String, String>,
    pub(crate) body: Bytes,
}

impl Request {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URI as sent.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A path parameter of the matched route: for `/orders/{id}` and the
    /// path `/orders/42`, `param("id")` is `Some("42")`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// Turns a handler's return value into a response.
pub trait IntoResponse {
    /// Converts the value.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        text(StatusCode::OK, self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        text(StatusCode::OK, self)
    }
}

impl<B: Into<Body>> IntoResponse for (StatusCode, B) {
    fn into_response(self) -> Response {
        let mut r = http::Response::new(self.1.into());
        *r.status_mut() = self.0;
        r
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(t) => t.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// A `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    with_type(status, "text/plain; charset=utf-8", body)
}

/// An `application/json` response (the body is sent as given).
pub fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    with_type(status, "application/json", body)
}

fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = http::Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;

/// Something that answers requests: any `Fn(Request) -> impl Future` whose
/// output is [`IntoResponse`].
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, request: Request) -> BoxFuture;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, request: Request) -> BoxFuture {
        let fut = self(request);
        Box::pin(async move { fut.await.into_response() })
    }
}

pub(crate) type SharedHandler = Arc<dyn Handler>;

/// Runs a handler, turning a panic (while creating or polling its future)
/// into a 500 response; the connection and the server carry on.
pub(crate) async fn call_guarded(
    handler: &SharedHandler,
    request: Request,
    route: &str,
) -> Response {
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(request))) {
        Ok(fut) => fut,
        Err(payload) => return panicked(route, &payload),
    };
    match CatchUnwind::new(fut).await {
        Ok(response) => response,
        Err(payload) => panicked(route, &payload),
    }
}

fn panicked(route: &str, payload: &Panic) -> Response {
    let message = panic_message(payload);
    tracing::error!(target: "cortex::http", route, %message, "handler panicked; answered 500");
    text(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
}
