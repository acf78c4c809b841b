//! The policies as tower layers (feature `http`), for axum and tonic
//! services and for HTTP clients. Each layer wraps the same policy instance
//! the attributes use, so state, metrics, events and `/health` are shared:
//!
//! ```
//! use cortex::resilience::tower::{BulkheadLayer, CircuitBreakerLayer, RetryLayer, TimeoutLayer};
//! use cortex::resilience::{Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, Retry, RetryConfig, Timeout};
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let send = tower::service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! });
//! // Resilience4j's order: retry outside the breaker, the breaker outside
//! // the time limit, the bulkhead innermost.
//! let _client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(Retry::new("doc-tower-payments", RetryConfig::default())?))
//!     .layer(CircuitBreakerLayer::new(CircuitBreaker::new("doc-tower-payments", CircuitBreakerConfig::default())?))
//!     .layer(TimeoutLayer::new(Timeout::new("doc-tower-payments", Duration::from_secs(2))?))
//!     .layer(BulkheadLayer::new(Bulkhead::new("doc-tower-payments", BulkheadConfig::default())?))
//!     .service(send);
//! # Ok(()) }
//! ```
//!
//! Errors are [`BoxError`]s; a policy's refusal is a [`Error`] inside
//! (found with [`rejection_in`](super::rejection_in)), which
//! [`rejection_response`] turns into the HTTP answer a server should give
//! (503 with `Retry-After` for an open breaker or a full bulkhead, 504 for
//! a timeout, 429 for the rate limiter), for axum's `HandleErrorLayer`.
//!
//! A response is a failure for the breaker and the retry when the
//! classifier says so: [`HttpFailures`] (the default: a 5xx answer or an
//! error) or [`GrpcFailures`] (a non-OK `grpc-status` in the response
//! headers, or an error), or any `Fn(&Result<Response, BoxError>) -> bool`.
//! Each call boxes its future (one allocation), as tower's own retry does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tower_layer::Layer;
use tower_service::Service;

use super::{Bulkhead, CircuitBreaker, Error, RateLimiter, Retry, RetryDecision, Timeout};

/// The error of a policy layer: the service's own, or a policy's
/// [`Error`], boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Says whether a call's result is a failure (for the breaker's failure
/// rate and the retry's decision).
pub trait Classify<Res>: Clone + Send + Sync + 'static {
    /// Whether `result` is a failure.
    fn is_failure(&self, result: &Result<Res, BoxError>) -> bool;
}

/// HTTP: a 5xx answer or an error is a failure; 4xx answers are the
/// caller's mistakes, not the service's.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFailures;

impl<B> Classify<http::Response<B>> for HttpFailures {
    fn is_failure(&self, result: &Result<http::Response<B>, BoxError>) -> bool {
        match result {
            Ok(r) => r.status().is_server_error(),
            Err(_) => true,
        }
    }
}

/// gRPC: a `grpc-status` other than 0 (OK) in the response headers (a
/// trailers-only answer, as servers send for errors), a 5xx, or an error.
/// A status sent in trailers after a streamed body is not seen here.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcFailures;

impl<B> Classify<http::Response<B>> for GrpcFailures {
    fn is_failure(&self, result: &Result<http::Response<B>, BoxError>) -> bool {
        match result {
            Ok(r) => {
                r.status().is_server_error()
                    || r.headers()
                        .get("grpc-status")
                        .is_some_and(|v| v.as_bytes() != b"0")
            }
            Err(_) => true,
        }
    }
}

impl<Res, F> Classify<Res> for F
where
    F: Fn(&Result<Res, BoxError>) -> bool + Clone + Send + Sync + 'static,
{
    fn is_failure(&self, result: &Result<Res, BoxError>) -> bool {
        self(result)
    }
}

/// The answer a server gives for a policy's refusal found in `error`
/// (`None` when `error` holds none: a failure of the service itself):
/// 503 with `Retry-After` (whole seconds, rounded up) for an open breaker,
/// 503 for a full bulkhead, 504 for a timeout, 429 for the rate limiter.
///
/// ```
/// use cortex::resilience::tower::{rejection_response, BoxError};
/// use cortex::resilience::Error;
///
/// let error: BoxError = Box::new(Error::timeout("payments", std::time::Duration::from_secs(2)));
/// let response: http::Response<String> = rejection_response(&error).unwrap();
/// assert_eq!(response.status(), 504);
/// ```
pub fn rejection_response<B: From<String>>(error: &BoxError) -> Option<http::Response<B>> {
    let rejection = super::rejection_in(&**error)?;
    let (status, retry_after) = match rejection {
        Error::CircuitOpen { retry_after, .. } => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            (*retry_after != Duration::MAX).then_some(*retry_after),
        ),
        Error::BulkheadFull { .. } => (http::StatusCode::SERVICE_UNAVAILABLE, None),
        Error::Timeout { .. } => (http::StatusCode::GATEWAY_TIMEOUT, None),
        Error::RateLimited { .. } => (http::StatusCode::TOO_MANY_REQUESTS, None),
    };
    let mut response = http::Response::new(B::from(format!("{rejection}\n")));
    *response.status_mut() = status;
    if let Some(after) = retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    Some(response)
}

/// The service after `poll_ready` said yes, and a fresh clone left in its
/// place (tower's rule for services moved into a future).
fn take_ready<S: Clone>(slot: &mut S) -> S {
    let clone = slot.clone();
    std::mem::replace(slot, clone)
}

fn poll_ready_boxed<S, Req>(inner: &mut S, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    inner.poll_ready(cx).map_err(Into::into)
}

/// A layer and its service around a policy that classifies results.
macro_rules! classified_layer {
    ($(#[$doc:meta])* $layer:ident, $service:ident, $policy:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $layer<C = HttpFailures> {
            policy: $policy,
            classify: C,
        }

        impl $layer {
            /// A layer around `policy` (the same instance the attributes
            /// and `/health` see), with [`HttpFailures`].
            pub fn new(policy: $policy) -> Self {
                $layer {
                    policy,
                    classify: HttpFailures,
                }
            }
        }

        impl<C> $layer<C> {
            /// Says what a failure is with `classify` instead
            /// ([`GrpcFailures`], or a closure).
            pub fn classify<C2>(self, classify: C2) -> $layer<C2> {
                $layer {
                    policy: self.policy,
                    classify,
                }
            }
        }

        impl<S, C: Clone> Layer<S> for $layer<C> {
            type Service = $service<S, C>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    policy: self.policy.clone(),
                    classify: self.classify.clone(),
                }
            }
        }

        /// The service its layer makes.
        #[derive(Debug, Clone)]
        pub struct $service<S, C = HttpFailures> {
            inner: S,
            policy: $policy,
            classify: C,
        }
    };
}

/// A layer and its service around a policy that does not look at results:
/// the service runs `$around` with the policy bound to `$bound` and the
/// inner call (a future of `Result<Response, BoxError>`) to `$call`.
macro_rules! policy_layer {
    ($(#[$doc:meta])* $layer:ident, $service:ident, $policy:ty, |$bound:ident, $call:ident| $around:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $layer {
            policy: $policy,
        }

        impl $layer {
            /// A layer around `policy` (the same instance the attributes
            /// see).
            pub fn new(policy: $policy) -> Self {
                $layer { policy }
            }
        }

        impl<S> Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    policy: self.policy.clone(),
                }
            }
        }

        /// The service its layer makes.
        #[derive(Debug, Clone)]
        pub struct $service<S> {
            inner: S,
            policy: $policy,
        }

        impl<S, Req> Service<Req> for $service<S>
        where
            S: Service<Req> + Clone + Send + 'static,
            S::Future: Send,
            S::Error: Into<BoxError>,
            S::Response: Send + 'static,
            Req: Send + 'static,
        {
            type Response = S::Response;
            type Error = BoxError;
            type Future = BoxFuture<Result<S::Response, BoxError>>;

            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
                poll_ready_boxed(&mut self.inner, cx)
            }

            fn call(&mut self, req: Req) -> Self::Future {
                let mut inner = take_ready(&mut self.inner);
                let $bound = self.policy.clone();
                let $call = async move { inner.call(req).await.map_err(Into::into) };
                Box::pin(async move { $around })
            }
        }
    };
}

classified_layer!(
    /// Calls through a [`CircuitBreaker`]: refused at once with
    /// [`Error::CircuitOpen`] while it is open; each result recorded as a
    /// success or a failure by the classifier.
    CircuitBreakerLayer,
    CircuitBreakerService,
    CircuitBreaker
);

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    Req: Send + 'static,
    C: Classify<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        poll_ready_boxed(&mut self.inner, cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let permit = match self.policy.acquire_owned() {
            Ok(p) => p,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let mut inner = take_ready(&mut self.inner);
        let classify = self.classify.clone();
        Box::pin(async move {
            let result = inner.call(req).await.map_err(Into::into);
            if classify.is_failure(&result) {
                permit.failure();
            } else {
                permit.success();
            }
            result
        })
    }
}

policy_layer!(
    /// Calls in a place of a [`Bulkhead`], waiting up to its `max_wait`
    /// for one; [`Error::BulkheadFull`] when none came.
    BulkheadLayer,
    BulkheadService,
    Bulkhead,
    |bulkhead, call| {
        let _place = bulkhead.acquire_owned().await?;
        call.await
    }
);

policy_layer!(
    /// Calls once a [`RateLimiter`] gives a permit (waiting up to its
    /// timeout); [`Error::RateLimited`] otherwise.
    RateLimitLayer,
    RateLimitService,
    RateLimiter,
    |limiter, call| {
        limiter.acquire().await?;
        call.await
    }
);

policy_layer!(
    /// Drops a call that takes longer than its [`Timeout`], with
    /// [`Error::Timeout`].
    TimeoutLayer,
    TimeoutService,
    Timeout,
    |timeout, call| timeout.call(call).await
);

classified_layer!(
    /// Tries a call again, as its [`Retry`] says, when the classifier calls
    /// the result a failure. The request must be `Clone` (each attempt
    /// sends a copy; with hyper, a `Full`/`Bytes` body is), as tower's
    /// retry asks. An answer's `Retry-After` (seconds or an HTTP date) is
    /// honoured: the next attempt waits at least that long, and is not made
    /// when the remaining attempts would not wait as long. A policy's
    /// refusal is retried only when waiting can help (see
    /// [`RetryDecision::for_rejection`]). When the attempts run out, the
    /// last answer is returned as it is.
    RetryLayer,
    RetryService,
    Retry
);

/// The wait an answer asks for in its `Retry-After` header.
fn retry_after<B>(response: &http::Response<B>) -> Option<Duration> {
    let value = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    crate::otlp::http::retry_after(value.trim(), SystemTime::now())
}

impl<S, C, B, Req> Service<Req> for RetryService<S, C>
where
    S: Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    Req: Clone + Send + 'static,
    C: Classify<http::Response<B>>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        poll_ready_boxed(&mut self.inner, cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let first = take_ready(&mut self.inner);
        // Later attempts ready a clone of their own first.
        let template = self.inner.clone();
        let retry = self.policy.clone();
        let classify = self.classify.clone();
        Box::pin(async move {
            let mut first = Some(first);
            retry
                .call_when(
                    move || {
                        let req = req.clone();
                        let (mut service, readied) = match first.take() {
                            Some(s) => (s, true),
                            None => (template.clone(), false),
                        };
                        async move {
                            if !readied {
                                std::future::poll_fn(|cx| service.poll_ready(cx))
                                    .await
                                    .map_err(Into::into)?;
                            }
                            service.call(req).await.map_err(Into::into)
                        }
                    },
                    move |result| {
                        if !classify.is_failure(result) {
                            return RetryDecision::Done;
                        }
                        match result {
                            Ok(response) => match retry_after(response) {
                                Some(after) => RetryDecision::RetryAfter(after),
                                None => RetryDecision::Retry,
                            },
                            Err(e) => match super::rejection_in(&**e) {
                                Some(rejection) => RetryDecision::for_rejection(rejection),
                                None => RetryDecision::Retry,
                            },
                        }
                    },
                )
                .await
        })
    }
}
