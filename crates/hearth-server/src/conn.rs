//! Connections: accepting them, and the time limits that keep one slow or
//! lying client from holding a connection (and its task) for ever.
//!
//! - **Request head** ([`Timeouts::header`]): hyper's header read timeout.
//!   Its clock starts whenever the connection waits for a request — when it
//!   opens and again after each response — and stops once the whole head
//!   has arrived. So a client that sends its headers a byte a minute is
//!   dropped, and so is a keep-alive connection left idle that long.
//! - **Request body** ([`Timeouts::body`], [`body_deadline`]): the whole
//!   body must arrive within this time of its head; a body that trickles,
//!   or that claims a `Content-Length` it never sends, fails the request
//!   with a 408 and the connection is closed.
//! - **Responses are not timed**: while a response streams (a long
//!   generation, or one that waits in the queue) the connection is not
//!   reading a head, so neither clock runs.

use std::future::Future;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use crate::AppState;

/// Time limits of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From waiting for a request (connection open, or previous response
    /// done) to its complete head; also the keep-alive idle limit.
    pub header: Duration,
    /// From a request's head to the end of its body.
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(30),
            body: Duration::from_secs(60),
        }
    }
}

/// The error a request body fails with when it is late.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} (--body-timeout)")]
pub struct BodyTimeout(pub Duration);

/// Middleware: the request body must be complete within
/// [`Timeouts::body`] of the head; later, reading it fails with
/// [`BodyTimeout`] (which [`crate::params::JsonBody`] answers with 408).
pub async fn body_deadline(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let limit = st.config.timeouts.body;
    let deadline = tokio::time::Instant::now() + limit;
    let req = req.map(|body| {
        let chunks =
            futures_util::stream::unfold(Some(body.into_data_stream()), move |s| async move {
                let mut s = s?;
                match tokio::time::timeout_at(deadline, s.next()).await {
                    Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(s))),
                    Ok(Some(Err(e))) => Some((Err(axum::BoxError::from(e)), None)),
                    Ok(None) => None,
                    Err(_) => Some((Err(axum::BoxError::from(BodyTimeout(limit))), None)),
                }
            });
        axum::body::Body::from_stream(chunks)
    });
    next.run(req).await
}

/// True when `e` (or an error it wraps) is a [`BodyTimeout`].
pub(crate) fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Serves `app` on `listener` over HTTP/1.1 with the head timeout of
/// `timeouts` (the body timeout is the router's [`body_deadline`]) until
/// `shutdown` resolves; then stops accepting, lets each connection finish
/// its response, and returns once all have closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.header)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
            drop(stop);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}
