//! Tower layers (feature `http`) that bring Cortex to services that do not
//! run on its own server: [`ObserveLayer`] for a server (an axum `Router`,
//! a tonic or hyper service) and [`ClientLayer`] for the calls it makes.
//!
//! ```
//! use cortex::tower::{ClientLayer, ObserveLayer};
//! use tower::ServiceBuilder;
//!
//! let handler = tower::service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! });
//! // Server side: every request counted, timed and traced.
//! let _server = ServiceBuilder::new().layer(ObserveLayer::new()).service(handler);
//! // Client side: every call traced, with `traceparent` sent along.
//! let send = tower::service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! });
//! let _client = ServiceBuilder::new().layer(ClientLayer::new()).service(send);
//! ```
//!
//! With axum, add the server layer to the router with `Router::layer`
//! (after the routes), so it sees each request's `MatchedPath` and labels
//! the request with its route template (feature `axum`);
//! `examples/examples/axum.rs` is a whole service built that way.

mod client;
mod grpc;
mod observe;
#[cfg(feature = "reqwest")]
mod reqwest;

pub use client::{ClientFuture, ClientLayer, ClientService};
pub use grpc::ObservedBody;
pub use observe::{ObserveFuture, ObserveLayer, ObserveService};
#[cfg(feature = "reqwest")]
pub use reqwest::ReqwestMiddleware;

pub(crate) use observe::Observer;
