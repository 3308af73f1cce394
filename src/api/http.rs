//! HTTP edge: `/metrics` (Prometheus text), `/healthz` (live) and `/readyz` (models loaded,
//! not draining).

use crate::serve::Server;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;

async fn metrics(State(s): State<Arc<Server>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render())
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn readyz(State(s): State<Arc<Server>>) -> impl IntoResponse {
    if s.is_ready() {
        (StatusCode::OK, "ready\n".to_string())
    } else if s.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "models not ready\n".to_string())
    }
}

pub fn router(server: Arc<Server>) -> Router {
    Router::new().route("/metrics", get(metrics)).route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(server)
}

/// Serves HTTP on `listener` until the server shuts down.
pub async fn serve(server: Arc<Server>, listener: TcpListener) -> anyhow::Result<()> {
    let mut shutdown = server.shutdown_signal();
    let app = router(server);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await?;
    Ok(())
}
