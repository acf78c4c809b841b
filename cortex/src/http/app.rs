//! What the server does with one request: route it, read its body within
//! the limits, run the handler under its timeout and panic guard, compress,
//! count and trace it.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::handler::{call_guarded, text, Request, Response};
use super::router::{Match, Router};
use super::{Body, Limits};
use crate::tower::Observer;

pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) limits: Limits,
    #[cfg(feature = "compression")]
    pub(crate) compression: Option<super::compression::Compression>,
    /// Counts, times and traces each request, as `ObserveLayer` does.
    pub(crate) observer: Observer,
    /// Request-body bytes the server may hold at once
    /// ([`Limits::max_buffered_body_bytes`]).
    pub(crate) body_budget: Arc<Semaphore>,
}

impl App {
    pub(crate) async fn handle(&self, req: http::Request<Incoming>) -> Response {
        let observation = self.observer.begin(&req);
        let method = req.method().clone();
        #[cfg(feature = "compression")]
        let accept_encoding = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let active = observation.active();
        let mut compress = true;
        let routed = async {
            match self.router.find(&method, req.uri().path()) {
                Match::NotFound => (text(StatusCode::NOT_FOUND, "not found\n"), None),
                Match::BadPath(why) => (text(StatusCode::BAD_REQUEST, format!("{why}\n")), None),
                Match::MethodNotAllowed { route, allow } => {
                    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                    if let Ok(v) = HeaderValue::from_str(&allow) {
                        r.headers_mut().insert(header::ALLOW, v);
                    }
                    (r, Some(route.template.as_str()))
                }
                Match::Found {
                    route,
                    endpoint,
                    params,
                } => {
                    let template = route.template.as_str();
                    compress = endpoint.options.compress;
                    let response = match self.read_body(req).await {
                        Ok((parts, body, _held)) => {
                            let request = Request {
                                method: parts.method,
                                uri: parts.uri,
                                headers: parts.headers,
                                params,
                                body,
                            };
                            let handler = call_guarded(&endpoint.handler, request, template);
                            match endpoint
                                .options
                                .request_timeout
                                .or(self.limits.request_timeout)
                            {
                                None => handler.await,
                                Some(limit) => match tokio::time::timeout(limit, handler).await {
                                    Ok(response) => response,
                                    Err(_) => {
                                        tracing::warn!(target: "cortex::http", route = template, ?limit, "handler timed out; answered 503");
                                        text(
                                            StatusCode::SERVICE_UNAVAILABLE,
                                            "the request took too long\n",
                                        )
                                    }
                                },
                            }
                        }
                        Err(response) => response,
                    };
                    (response, Some(template))
                }
            }
        };
        let (response, route) = crate::trace::Instrumented::new(routed, active).await;
        #[cfg(feature = "compression")]
        let response = match &self.compression {
            Some(c) if compress => c.apply(&method, accept_encoding.as_deref(), response),
            _ => response,
        };
        #[cfg(not(feature = "compression"))]
        let _ = compress;
        let response = if method == Method::HEAD {
            without_body(response)
        } else {
            response
        };
        self.observer
            .end(observation, route, response.status(), None);
        response
    }

    /// Reads the body within the size limit and the body read timeout
    /// (408 past it): 413 past the size (without reading
    /// a body whose declared length is already too large), 503 when the
    /// server already holds [`Limits::max_buffered_body_bytes`] of bodies,
    /// 400 if the client breaks off. The permit holds the body's bytes in
    /// the server's budget until the request is done.
    async fn read_body(
        &self,
        req: http::Request<Incoming>,
    ) -> Result<(http::request::Parts, Bytes, Option<OwnedSemaphorePermit>), Response> {
        let limit = self.limits.max_body_bytes;
        let too_large = || {
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes\n"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let (parts, body) = req.into_parts();
        // Most GETs have no body: no timer, no collecting machinery.
        if http_body::Body::is_end_stream(&body) {
            return Ok((parts, Bytes::new(), None));
        }
        let collect = self.collect(body, &too_large);
        let (collected, held) =
            match tokio::time::timeout(self.limits.body_read_timeout, collect).await {
                Ok(read) => read?,
                Err(_) => {
                    let mut r = text(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body not received in time\n",
                    );
                    r.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return Err(r);
                }
            };
        #[cfg(feature = "compression")]
        if let Some(c) = &self.compression {
            return c
                .decode_request(&parts.headers, collected)
                .map(|body| (parts, body, held))
                .map_err(|e| e.to_response());
        }
        Ok((parts, collected, held))
    }

    /// Reads a body's frames within the size limit and the server's body
    /// budget.
    async fn collect(
        &self,
        mut body: Incoming,
        too_large: &impl Fn() -> Response,
    ) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Response> {
        let limit = self.limits.max_body_bytes;
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::debug!(target: "cortex::http", %error, "request body could not be read");
                    return Err(text(
                        StatusCode::BAD_REQUEST,
                        "request body could not be read\n",
                    ));
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            len += data.len();
            if len > limit {
                return Err(too_large());
            }
            let Ok(n) = u32::try_from(data.len()) else {
                return Err(too_large());
            };
            match Arc::clone(&self.body_budget).try_acquire_many_owned(n) {
                Ok(permit) => match &mut held {
                    Some(all) => all.merge(permit),
                    None => held = Some(permit),
                },
                Err(_) => {
                    tracing::warn!(target: "cortex::http", budget = self.limits.max_buffered_body_bytes, "request bodies held by the server reached max_buffered_body_bytes; answered 503");
                    return Err(text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the server is busy; try again\n",
                    ));
                }
            }
            chunks.push(data);
        }
        let collected = match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().unwrap_or_default(),
            _ => chunks.concat().into(),
        };
        Ok((collected, held))
    }
}

/// A `HEAD` answer: the `GET` answer's head, no body (hyper strips it on
/// HTTP/1 but sends it as DATA frames on HTTP/2). The length of an
/// in-memory body is kept as `Content-Length`, as the `GET` would send it.
fn without_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    if let Some(n) = http_body::Body::size_hint(&body).exact() {
        let bodiless = matches!(
            parts.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
        if !bodiless && !parts.headers.contains_key(header::CONTENT_LENGTH) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    Response::from_parts(parts, Body::empty())
}
