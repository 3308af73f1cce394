//! Bearer-token authentication with two roles, on both edges.
//!
//! - `infer`: inference, streams and listings;
//! - `admin`: everything that changes the server (repository load and unload, cameras, the
//!   store's device reports) and everything `infer` may do.
//!
//! Tokens come from `admin_token` / `infer_token` in the config, `WALKOUT_ADMIN_TOKEN` /
//! `WALKOUT_INFER_TOKEN`, or `walkout serve --admin-token-file/--infer-token-file`. With no
//! token configured the edges are open, and the composition root binds them to loopback
//! only. Health checks stay open. A refused call changes nothing and is counted in
//! `walkout_auth_failures_total`.

use crate::serve::config::ServerConfig;
use crate::serve::metrics::Metrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Infer,
    Admin,
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or one that matches no role.
    Unauthenticated,
    /// A valid token whose role may not make this call.
    PermissionDenied,
}

/// The configured tokens.
#[derive(Clone, Debug)]
pub struct Auth {
    admin: Option<Vec<u8>>,
    infer: Option<Vec<u8>>,
    metrics: Metrics,
}

/// Equal in time independent of where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub fn new(config: &ServerConfig, metrics: Metrics) -> Auth {
        Auth {
            admin: config.admin_token.as_ref().map(|t| t.0.as_bytes().to_vec()),
            infer: config.infer_token.as_ref().map(|t| t.0.as_bytes().to_vec()),
            metrics,
        }
    }

    /// Whether any token is configured (else every call is allowed).
    pub fn enabled(&self) -> bool {
        self.admin.is_some() || self.infer.is_some()
    }

    /// Checks an `authorization` header value for a call that needs `need`; counts refusals
    /// per edge.
    pub fn check(&self, header: Option<&[u8]>, need: Role, edge: &str) -> Result<(), Refusal> {
        if !self.enabled() {
            return Ok(());
        }
        let token = header.and_then(|h| h.strip_prefix(b"Bearer ").or_else(|| h.strip_prefix(b"bearer ")));
        let role = token.and_then(|t| {
            if self.admin.as_deref().is_some_and(|a| same(a, t)) {
                Some(Role::Admin)
            } else if self.infer.as_deref().is_some_and(|i| same(i, t)) {
                Some(Role::Infer)
            } else {
                None
            }
        });
        let out = match role {
            None => Err(Refusal::Unauthenticated),
            Some(r) if r >= need => Ok(()),
            Some(_) => Err(Refusal::PermissionDenied),
        };
        if let Err(r) = out {
            let reason = if r == Refusal::Unauthenticated { "unauthenticated" } else { "permission_denied" };
            self.metrics.auth_failures.with_label_values(&[edge, reason]).inc();
        }
        out
    }
}

/// The role a gRPC method needs (`None`: open, the health service). Methods not listed need
/// `admin`.
pub fn grpc_role(path: &str) -> Option<Role> {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    match service {
        "grpc.health.v1.Health" => None,
        "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => Some(Role::Infer),
        "walkout.v1.Vision" => match method {
            "PushFrames" | "AnalyzeImage" | "StreamPoses" | "ListCameras" | "StreamTracks" => Some(Role::Infer),
            _ => Some(Role::Admin),
        },
        "inference.GRPCInferenceService" => match method {
            "ServerLive" | "ServerReady" | "ModelReady" | "ServerMetadata" | "ModelMetadata" | "ModelInfer" | "RepositoryIndex"
            | "ModelStatistics" => Some(Role::Infer),
            _ => Some(Role::Admin),
        },
        _ => Some(Role::Admin),
    }
}

/// The role an HTTP path needs (`None`: open, the probes).
pub fn http_role(path: &str) -> Option<Role> {
    match path {
        "/healthz" | "/readyz" | "/v2/health/ready" | "/v2/health/live" => None,
        "/metrics" => Some(Role::Infer),
        // KServe v2 REST: metadata, config, readiness, statistics, inference and the index
        // need `infer`; loading and unloading models need `admin`
        "/v2" | "/v2/repository/index" => Some(Role::Infer),
        p if p.starts_with("/v2/models/") => Some(Role::Infer),
        _ => Some(Role::Admin),
    }
}

/// A tower layer that checks every gRPC call's bearer token before it reaches a service.
#[derive(Clone, Debug)]
pub struct GrpcAuthLayer(pub Arc<Auth>);

impl<S> tower::Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;
    fn layer(&self, inner: S) -> GrpcAuth<S> {
        GrpcAuth { inner, auth: self.0.clone() }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcAuth<S> {
    inner: S,
    auth: Arc<Auth>,
}

type BoxFut<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcAuth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFut<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let outcome = match grpc_role(req.uri().path()) {
            None => Ok(()),
            Some(need) => self.auth.check(req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes()), need, "grpc"),
        };
        match outcome {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(r) => {
                let status = match r {
                    Refusal::Unauthenticated => tonic::Status::unauthenticated("a valid bearer token is required"),
                    Refusal::PermissionDenied => tonic::Status::permission_denied("this call needs the admin role"),
                };
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::config::Secret;

    #[test]
    fn roles_and_tokens() {
        let cfg = ServerConfig {
            admin_token: Some(Secret("admin-token-0123456789".into())),
            infer_token: Some(Secret("infer-token-0123456789".into())),
            ..Default::default()
        };
        let a = Auth::new(&cfg, Metrics::new());
        assert_eq!(a.check(Some(b"Bearer admin-token-0123456789"), Role::Admin, "t"), Ok(()));
        assert_eq!(a.check(Some(b"Bearer admin-token-0123456789"), Role::Infer, "t"), Ok(()));
        assert_eq!(a.check(Some(b"Bearer infer-token-0123456789"), Role::Infer, "t"), Ok(()));
        assert_eq!(a.check(Some(b"Bearer infer-token-0123456789"), Role::Admin, "t"), Err(Refusal::PermissionDenied));
        assert_eq!(a.check(Some(b"Bearer infer-token-012345678"), Role::Infer, "t"), Err(Refusal::Unauthenticated));
        assert_eq!(a.check(None, Role::Infer, "t"), Err(Refusal::Unauthenticated));
        assert_eq!(grpc_role("/walkout.v1.Vision/AddCamera"), Some(Role::Admin));
        assert_eq!(grpc_role("/inference.GRPCInferenceService/RepositoryModelUnload"), Some(Role::Admin));
        assert_eq!(grpc_role("/inference.GRPCInferenceService/ModelInfer"), Some(Role::Infer));
        assert_eq!(grpc_role("/grpc.health.v1.Health/Check"), None);
        assert_eq!(grpc_role("/some.Other/Thing"), Some(Role::Admin));
        let open = Auth::new(&ServerConfig::default(), Metrics::new());
        assert!(!open.enabled() && open.check(None, Role::Admin, "t").is_ok());
    }
}
