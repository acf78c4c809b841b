//! The HTTP server (hyper 1, HTTP/1.1 and HTTP/2) and the admin endpoints
//! `/metrics`, `/health`, `/health/live` and `/health/ready`.
//!
//! ```no_run
//! # async fn run() -> Result<(), cortex::http::Error> {
//! // Only the admin endpoints, on their own port:
//! let admin = cortex::http::serve("127.0.0.1:9090").await?;
//!
//! // Or a service with its own routes and the admin endpoints beside them:
//! use cortex::http::{Method, Request, Server};
//! let server = Server::new()
//!     .route(Method::GET, "/orders/{id}", |req: Request| async move {
//!         format!("order {}\n", req.param("id").unwrap_or("?"))
//!     })?
//!     .with_admin()?
//!     .bind("127.0.0.1:3000")
//!     .await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown(std::time::Duration::from_secs(10)).await;
//! # admin.shutdown(std::time::Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

mod admin;
mod app;
mod body;
#[cfg(feature = "compression")]
pub mod compression;
mod connection;
mod handler;
mod limits;
mod router;
mod server;
mod shutdown;

pub use admin::{Admin, AdminFuture};
pub use body::{Body, BoxError};
pub use handler::{json, text, Handler, IntoResponse, Request, Response};
pub use limits::{AtConnectionLimit, Limits};
pub use router::RouteOptions;
pub use server::{serve, RunningServer, Server, ShutdownReport};

/// The `http` crate's types that handlers use, so a service needs no
/// direct dependency on it.
pub use ::http::{header, HeaderMap, HeaderValue, Method, StatusCode};

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A route template is malformed or ambiguous.
    #[error("bad route `{template}`: {reason}")]
    BadRoute {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same method and template were registered twice.
    #[error("route {method} {template} is registered twice")]
    DuplicateRoute {
        /// The method.
        method: String,
        /// The template.
        template: String,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The server's own metrics could not be registered.
    #[error("cannot register the HTTP metrics: {0}")]
    Metrics(#[from] crate::metrics::Error),
    /// The configuration was refused (strict mode): every problem, one per
    /// line, each with its place.
    #[error("configuration refused:\n{0}")]
    Config(#[from] crate::config::Error),
}
