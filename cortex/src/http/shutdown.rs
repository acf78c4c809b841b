//! How a server's shutdown begins: a call or a signal, then readiness
//! `OUT_OF_SERVICE` and the drain delay.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::health::HealthRegistry;

/// What happens when shutdown begins.
pub(super) struct Plan {
    pub(super) readiness: &'static HealthRegistry,
    pub(super) drain_delay: Duration,
}

/// Resolves with the shutdown deadline when [`RunningServer::shutdown`](super::RunningServer::shutdown)
/// asks, or on SIGTERM/SIGINT when `signals` are given; never if neither
/// comes.
pub(super) async fn wait_for_stop(
    asked: oneshot::Receiver<Duration>,
    signals: Option<Signals>,
    on_signal: Duration,
) -> Duration {
    let asked = async move {
        match asked.await {
            Ok(deadline) => deadline,
            Err(_) => std::future::pending().await,
        }
    };
    let Some(signals) = signals else {
        return asked.await;
    };
    tokio::select! {
        deadline = asked => deadline,
        signal = signals.first() => {
            tracing::info!(target: "cortex::http", signal, "shutdown signal received");
            on_signal
        }
    }
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere than Unix), listened for.
pub(super) struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    pub(super) fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Signals {
                    streams: Some((term, int)),
                },
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(target: "cortex::http", %error, "cannot listen for shutdown signals");
                    Signals { streams: None }
                }
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The name of the first signal received.
    async fn first(self) -> &'static str {
        #[cfg(unix)]
        {
            match self.streams {
                Some((mut term, mut int)) => tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                },
                None => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(error) => {
                    tracing::warn!(target: "cortex::http", %error, "cannot listen for Ctrl-C");
                    std::future::pending().await
                }
            }
        }
    }
}

/// Shutdown was asked for: readiness turns `OUT_OF_SERVICE` and the drain
/// timer starts. Returns the deadline for in-flight requests.
pub(super) fn begin_drain(
    plan: &Plan,
    deadline: Duration,
    drain_end: &mut std::pin::Pin<&mut tokio::time::Sleep>,
) -> Duration {
    plan.readiness.set_out_of_service(true);
    tracing::info!(target: "cortex::http", drain_delay = ?plan.drain_delay, "HTTP server shutting down: readiness is OUT_OF_SERVICE");
    drain_end
        .as_mut()
        .reset(tokio::time::Instant::now() + plan.drain_delay);
    deadline
}
