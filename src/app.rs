//! The composition root: a running server with its runtime, bound listeners and edges
//! (`serve` wires the models, batchers and cameras; `api` the gRPC and HTTP edges; this sits
//! above both), with graceful shutdown.

use crate::serve::config::ServerConfig;
use crate::serve::Server;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A server with its gRPC and HTTP edges listening.
#[derive(Debug)]
pub struct Running {
    pub server: Arc<Server>,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    rt: tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl Running {
    /// Loads models, starts cameras, binds both addresses (port 0 picks a free port) and
    /// starts serving.
    pub fn start(config: ServerConfig) -> Result<Running> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("walkout-io")
            .build()
            .context("starting the async runtime")?;
        let mut config = config;
        if let Some(b) = &config.opencl_binary {
            crate::runtime::opencl::use_binary(b)?;
        }
        if config.admin_token.is_none() && config.infer_token.is_none() {
            // no credentials: nobody off this host may reach the server
            config.grpc_addr = loopback_only(&config.grpc_addr)?;
            config.http_addr = loopback_only(&config.http_addr)?;
            tracing::warn!(
                "no admin_token or infer_token is configured (WALKOUT_ADMIN_TOKEN, WALKOUT_INFER_TOKEN): listening on loopback only ({}, {})",
                config.grpc_addr,
                config.http_addr
            );
        }
        let (grpc, http) = rt.block_on(async {
            let g = tokio::net::TcpListener::bind(&config.grpc_addr)
                .await
                .with_context(|| format!("binding gRPC address {}", config.grpc_addr))?;
            let h = tokio::net::TcpListener::bind(&config.http_addr)
                .await
                .with_context(|| format!("binding HTTP address {}", config.http_addr))?;
            anyhow::Ok((g, h))
        })?;
        let grpc_addr = grpc.local_addr()?;
        let http_addr = http.local_addr()?;
        // the edges come up first, so health checks answer (and /readyz says 503) while
        // models load
        let server = Server::new(config)?;
        let task = rt.spawn(crate::api::serve(server.clone(), grpc, http));
        let running = Running { server: server.clone(), grpc_addr, http_addr, rt, task: Some(task) };
        if let Err(e) = server.load_configured() {
            let _ = running.shutdown();
            return Err(e.into());
        }
        tracing::info!("serving gRPC on {grpc_addr}, HTTP on {http_addr}");
        Ok(running)
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    /// Blocks until SIGTERM or SIGINT.
    pub fn wait_for_signal(&self) -> Result<&'static str> {
        self.rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => Ok("SIGTERM"),
                r = tokio::signal::ctrl_c() => r.map(|_| "SIGINT").map_err(Into::into),
            }
        })
    }

    /// Drains: sources stop, queued frames and requests finish, streams end, listeners close.
    pub fn shutdown(mut self) -> Result<()> {
        self.server.shutdown();
        if let Some(task) = self.task.take() {
            self.rt.block_on(async {
                let deadline = Duration::from_secs_f64(self.server.config.drain_timeout_s);
                match tokio::time::timeout(deadline, task).await {
                    Ok(r) => r.context("server task")?,
                    Err(_) => {
                        tracing::warn!("listeners did not close within {:.1} s (drain_timeout_s)", deadline.as_secs_f64());
                        Ok(())
                    }
                }
            })?;
        }
        self.rt.shutdown_timeout(Duration::from_secs(5));
        Ok(())
    }
}

/// The address with its host replaced by the loopback address of its family (the port kept).
fn loopback_only(addr: &str) -> Result<String> {
    let a: SocketAddr = addr.parse().with_context(|| format!("'{addr}' is not an IP address and port"))?;
    let ip: std::net::IpAddr = if a.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
    Ok(SocketAddr::new(ip, a.port()).to_string())
}
