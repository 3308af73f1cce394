//! Connection limits on both edges: at most `max_connections` open at once per port (past
//! it, new connections wait in the kernel's backlog), and deadlines so that slow or half-open
//! peers cannot hold the slots: HTTP's TLS handshake and request headers, gRPC's first byte
//! (then HTTP/2 keepalive finds dead peers).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Accepts the next connection once one of `slots` is free; `None` when `stop` fired.
async fn accept_limited(listener: &TcpListener, slots: &Arc<Semaphore>) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let permit = slots.clone().acquire_owned().await.ok()?;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => return Some((tcp, permit)),
            // a peer that reset before we accepted, or a transient fd shortage: go on
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Serves HTTP on `listener` (over TLS when `tls` is given) until `stop` resolves.
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    max_connections: usize,
    header_timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let (tcp, permit) = tokio::select! {
            c = accept_limited(&listener, &slots) => match c {
                Some(c) => c,
                None => break,
            },
            _ = &mut stop => break,
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.header_read_timeout(header_timeout).timer(hyper_util::rt::TokioTimer::new());
            match tls {
                Some(acceptor) => {
                    // a peer that never finishes its handshake is dropped
                    let Ok(Ok(stream)) = tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await else { return };
                    let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                }
                None => {
                    let _ = http.serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await;
                }
            }
        });
    }
}

/// A gRPC connection holding one of the port's slots until it closes.
#[derive(Debug)]
pub struct Limited {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl tonic::transport::server::Connected for Limited {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The gRPC port's connections, at most `max_connections` open at once. A peer that sends
/// nothing within `first_byte` (no HTTP/2 preface, no TLS hello) is dropped before it takes
/// a slot from the others for long.
pub fn grpc_incoming(
    listener: TcpListener,
    max_connections: usize,
    first_byte: Duration,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Limited>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    tokio::spawn(async move {
        while let Some((tcp, permit)) = accept_limited(&listener, &slots).await {
            let conn_tx = tx.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let mut b = [0u8; 1];
                if let Ok(Ok(n)) = tokio::time::timeout(first_byte, tcp.peek(&mut b)).await {
                    if n > 0 {
                        let _ = conn_tx.send(Ok(Limited { inner: tcp, _permit: permit })).await;
                    }
                }
            });
            if tx.is_closed() {
                break;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
