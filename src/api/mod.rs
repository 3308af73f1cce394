//! The network edges: gRPC (walkout.v1 Vision, KServe v2 GRPCInferenceService, health,
//! reflection) on one port and HTTP (/metrics, /healthz, /readyz) on another. Wire types are
//! converted here and nowhere else.

pub mod auth;
pub mod conn;
pub mod grpc;
pub mod http;
pub mod kserve;
pub mod kserve_http;
pub mod proto;
pub mod tls;

use crate::serve::{ServeError, Server};
use std::sync::Arc;
use tokio::net::TcpListener;

pub fn status(e: ServeError) -> tonic::Status {
    use tonic::Status;
    let msg = e.to_string();
    match e {
        ServeError::ModelNotFound(_) | ServeError::VersionNotFound { .. } | ServeError::CameraNotFound(_) => Status::not_found(msg),
        ServeError::InvalidArgument(_) => Status::invalid_argument(msg),
        ServeError::AlreadyExists(_) => Status::already_exists(msg),
        ServeError::PermissionDenied(_) => Status::permission_denied(msg),
        ServeError::QueueFull { .. } | ServeError::ResourceExhausted(_) => Status::resource_exhausted(msg),
        ServeError::Unavailable(_) => Status::unavailable(msg),
        ServeError::Load(_) => Status::failed_precondition(msg),
        ServeError::Internal(_) => Status::internal(msg),
    }
}

/// Serves gRPC and HTTP on the given listeners until the server shuts down.
/// The token checker and the TLS files are made once and shared by both edges.
pub async fn serve(server: Arc<Server>, grpc: TcpListener, http: TcpListener) -> anyhow::Result<()> {
    let auth = Arc::new(auth::Auth::new(&server.config, server.metrics.clone()));
    let tls = tls::load(&server.config)?;
    let g = tokio::spawn(grpc::serve(server.clone(), grpc, auth.clone(), tls.clone()));
    let h = tokio::spawn(http::serve(server.clone(), http, auth, tls));
    let (g, h) = tokio::join!(g, h);
    g??;
    h??;
    Ok(())
}
