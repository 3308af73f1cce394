//! HTTP edge: `/metrics` (Prometheus text, `infer` role), `/healthz` (live) and `/readyz`
//! (models loaded, not draining), the probes open to all.

use crate::serve::Server;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;

async fn metrics(State(s): State<Arc<Server>>) -> impl IntoResponse {
    s.update_memory_metrics();
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

/// Checks the bearer token of every request but the probes.
async fn authenticate(
    State(auth): State<Arc<super::auth::Auth>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(need) = super::auth::http_role(req.uri().path()) {
        let header = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        match auth.check(header, need, "http") {
            Ok(()) => {}
            Err(super::auth::Refusal::Unauthenticated) => {
                return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a valid bearer token is required\n")
                    .into_response()
            }
            Err(super::auth::Refusal::PermissionDenied) => return (StatusCode::FORBIDDEN, "this needs the admin role\n").into_response(),
        }
    }
    next.run(req).await
}

pub fn router(server: Arc<Server>, auth: Arc<super::auth::Auth>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(server)
        .layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

/// Serves HTTP on `listener` until the server shuts down.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    auth: Arc<super::auth::Auth>,
    tls: Option<super::tls::TlsFiles>,
) -> anyhow::Result<()> {
    let mut shutdown = server.shutdown_signal();
    let (max_connections, header_timeout) =
        (server.config.max_connections, std::time::Duration::from_secs_f64(server.config.header_read_timeout_s));
    let app = router(server, auth);
    let stop = async move {
        let _ = shutdown.wait_for(|&draining| draining).await;
    };
    let acceptor = tls.as_ref().map(super::tls::acceptor).transpose()?;
    super::conn::serve_http(listener, acceptor, app, max_connections, header_timeout, stop).await;
    Ok(())
}
