//! HTTP edge: `/metrics` (Prometheus text, `infer` role), `/healthz` (live) and `/readyz`
//! (models loaded, not draining; models that failed to load are named), the probes open to
//! all; per model, KServe v2's `/v2/models/{name}[/versions/{version}]/ready` (`infer` role),
//! and the rest of KServe v2 over REST (`kserve_http`).

use crate::serve::Server;
use axum::extract::{Path, State};
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
    // models that failed to load are named; the server is ready with the ones that loaded
    let failed: String = s.load_failures().into_iter().map(|(name, why)| format!("failed to load: {name}: {why}\n")).collect();
    if s.is_ready() {
        (StatusCode::OK, format!("ready\n{failed}"))
    } else if s.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("models not ready\n{failed}"))
    }
}

/// One model's readiness (KServe v2): 200 when it serves, 503 with the reason when it failed
/// to load or is unavailable, 404 when there is no such model or version.
async fn model_ready(s: &Server, name: &str, version: &str) -> (StatusCode, String) {
    use crate::serve::ServeError;
    match s.model_version(name, version) {
        Ok(_) => (StatusCode::OK, "ready\n".into()),
        Err(ServeError::Unavailable(why)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        Err(ServeError::ModelNotFound(_)) => match s.load_failure(name) {
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("failed to load: {why}\n")),
            None => (StatusCode::NOT_FOUND, "no such model\n".into()),
        },
        Err(_) => (StatusCode::NOT_FOUND, "no such model or version\n".into()),
    }
}

async fn model_readyz(State(s): State<Arc<Server>>, Path(name): Path<String>) -> impl IntoResponse {
    model_ready(&s, &name, "").await
}

async fn model_version_readyz(State(s): State<Arc<Server>>, Path((name, version)): Path<(String, String)>) -> impl IntoResponse {
    model_ready(&s, &name, &version).await
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
        .route("/v2/health/ready", get(readyz))
        .route("/v2/health/live", get(healthz))
        .route("/v2/models/{name}/ready", get(model_readyz))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_version_readyz))
        .merge(super::kserve_http::routes(server.config.max_frame_bytes + (1 << 20)))
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
