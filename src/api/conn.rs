//! Connection limits on both edges: at most `max_connections` open at once per port, and
//! deadlines so that slow or half-open peers cannot hold the slots: HTTP's TLS handshake and
//! request headers, gRPC's first byte (then HTTP/2 keepalive finds dead peers).
//!
//! When every slot is taken, a new connection evicts the one that has been quiet longest
//! (nothing read from it for at least `MIN_QUIET`): a silent or half-open peer, or an idle
//! keep-alive one. So a flood of silent connections, more than the port's slots and even
//! more than the process's file descriptors, cannot keep a health check or a scrape out;
//! connections that are sending are never evicted, and when all of them are, new ones wait
//! in the kernel's backlog.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A connection quiet for less than this is not evicted.
const MIN_QUIET: Duration = Duration::from_secs(1);

/// The open connections of one port.
#[derive(Debug)]
struct Slots {
    max: usize,
    epoch: Instant,
    open: Mutex<BTreeMap<u64, Arc<Activity>>>,
    next: AtomicU64,
    freed: Notify,
}

/// What the port knows of one connection: when it last read, and whether it was evicted.
#[derive(Debug, Default)]
struct Activity {
    last_read_ms: AtomicU64,
    evicted: AtomicBool,
    /// A read waiting on the socket, woken by an eviction.
    waker: Mutex<Option<Waker>>,
    /// Whoever else waits for an eviction (the gRPC first-byte wait).
    gone: Notify,
}

impl Activity {
    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().ok().and_then(|mut w| w.take()) {
            w.wake();
        }
        self.gone.notify_waiters();
    }
}

/// One slot, given back when the connection closes.
#[derive(Debug)]
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.slots.open.lock() {
            open.remove(&self.id);
        }
        self.slots.freed.notify_one();
    }
}

impl Slots {
    fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots { max: max.max(1), epoch: Instant::now(), open: Mutex::default(), next: AtomicU64::new(0), freed: Notify::new() })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Waits until a connection may be accepted: a slot is free, or the quietest connection
    /// has been quiet for `MIN_QUIET` and is evicted to make one.
    async fn room(&self) {
        loop {
            let freed = self.freed.notified();
            {
                let Ok(mut open) = self.open.lock() else { return };
                if open.len() < self.max {
                    return;
                }
                let now = self.now_ms();
                let quietest = open.iter().min_by_key(|(_, a)| a.last_read_ms.load(Ordering::Relaxed)).map(|(&id, a)| (id, a.clone()));
                if let Some((id, a)) = quietest {
                    if now.saturating_sub(a.last_read_ms.load(Ordering::Relaxed)) >= MIN_QUIET.as_millis() as u64 {
                        open.remove(&id);
                        a.evict();
                        return;
                    }
                }
            }
            // a slot freed, or check the quiet ones again shortly
            let _ = tokio::time::timeout(Duration::from_millis(100), freed).await;
        }
    }

    fn take(self: &Arc<Self>) -> Slot {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::default());
        activity.last_read_ms.store(self.now_ms(), Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, activity.clone());
        }
        Slot { slots: self.clone(), id, activity }
    }

    /// Accepts the next connection once there is room for it.
    async fn accept(self: &Arc<Self>, listener: &TcpListener) -> Tracked {
        self.room().await;
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    return Tracked { inner: tcp, slot: self.take() };
                }
                // a peer that reset before we accepted, or a transient fd shortage: go on
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

/// A connection holding one of the port's slots until it closes: reads note the time, and
/// an evicted connection fails its next read (and wakes a read that is waiting), so the
/// server drops it.
#[derive(Debug)]
pub struct Tracked {
    inner: TcpStream,
    slot: Slot,
}

impl Tracked {
    fn evicted(&self) -> bool {
        self.slot.activity.evicted.load(Ordering::SeqCst)
    }
}

impl tonic::transport::server::Connected for Tracked {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.evicted() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "evicted: quiet while the port was full")));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                let now = self.slot.slots.now_ms();
                self.slot.activity.last_read_ms.store(now, Ordering::Relaxed);
            }
            Poll::Pending => {
                if let Ok(mut w) = self.slot.activity.waker.lock() {
                    *w = Some(cx.waker().clone());
                }
                // evicted between the check and the registration
                if self.evicted() {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "evicted")));
                }
            }
            _ => {}
        }
        r
    }
}

impl AsyncWrite for Tracked {
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
    let slots = Slots::new(max_connections);
    loop {
        let conn = tokio::select! {
            c = slots.accept(&listener) => c,
            _ = &mut stop => break,
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.header_read_timeout(header_timeout).timer(hyper_util::rt::TokioTimer::new());
            match tls {
                Some(acceptor) => {
                    // a peer that never finishes its handshake is dropped
                    let Ok(Ok(stream)) = tokio::time::timeout(header_timeout, acceptor.accept(conn)).await else { return };
                    let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                }
                None => {
                    let _ = http.serve_connection(hyper_util::rt::TokioIo::new(conn), svc).await;
                }
            }
        });
    }
}

/// The gRPC port's connections, at most `max_connections` open at once. A peer that sends
/// nothing within `first_byte` (no HTTP/2 preface, no TLS hello) is dropped before it takes
/// a slot from the others for long.
pub fn grpc_incoming(
    listener: TcpListener,
    max_connections: usize,
    first_byte: Duration,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Tracked>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let slots = Slots::new(max_connections);
    tokio::spawn(async move {
        loop {
            let conn = slots.accept(&listener).await;
            let conn_tx = tx.clone();
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                let waited = tokio::time::timeout(first_byte, async {
                    // an eviction ends the wait too
                    tokio::select! {
                        r = conn.inner.peek(&mut b) => r.ok(),
                        _ = evicted(&conn) => None,
                    }
                });
                if let Ok(Some(n)) = waited.await {
                    if n > 0 && !conn.evicted() {
                        let _ = conn_tx.send(Ok(conn)).await;
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

/// Resolves once `conn` is evicted.
async fn evicted(conn: &Tracked) {
    let gone = conn.slot.activity.gone.notified();
    tokio::pin!(gone);
    gone.as_mut().enable();
    if !conn.evicted() {
        gone.await;
    }
}
