//! Accepting connections, plain or TLS, with the limits that keep one client from holding the
//! server: a deadline for each request's header (idle keep-alive connections included), a cap
//! on open connections per client address, a deadline for each TLS handshake, and graceful
//! shutdown.
//!
//! axum's own `serve` has no header deadline, so a connection that sends half a header stays
//! for ever; here every connection is served by hyper's HTTP/1 connection with
//! `header_read_timeout` and upgrades (the stream), one task each.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use crate::metrics::Metrics;

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The header deadline for connections from trusted proxies: longer than a load balancer's
/// idle timeout (the ALB's is 3,600 s), so that the balancer, not MONTI, closes idle ones.
const PROXY_IDLE: Duration = Duration::from_secs(3_700);

/// The per-connection limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// From waiting for a request (a new connection, or the next request on a kept-alive one)
    /// to its whole header.
    pub header_read: Duration,
    /// Open connections from one client address; trusted proxies are not counted.
    pub per_address: usize,
    /// The proxies exempt from `per_address` (their clients are many).
    pub trusted: Arc<Vec<IpNet>>,
}

/// Open connections per client address, and the guard that gives one back.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct Slot {
    counts: Arc<PerAddress>,
    addr: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, addr: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(addr).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: self.clone(),
            addr,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .counts
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

/// Serves `app` on `tcp` (over TLS with `tls`) until `shutdown`, then lets open requests finish
/// (at most 5 s). `tune` sets socket options on each accepted connection.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    tune: impl Fn(&TcpStream),
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    // HTTP/1 only: the stream upgrades an HTTP/1.1 request, and sniffing for HTTP/2 would wait
    // for the first bytes with no deadline.
    let builder = |header_read: Duration| {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_read)
            .keep_alive(true);
        Arc::new(http)
    };
    let http_direct = builder(limits.header_read);
    // A load balancer keeps idle connections to its targets open for its own idle timeout (an
    // ALB's is an hour here) and takes a close in between badly (a 502 for the request it sent
    // just then); it buffers its clients' slow headers itself.
    let http_proxied = builder(PROXY_IDLE);
    let connections = TaskTracker::new();
    let per_address = Arc::new(PerAddress::default());
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, for example: wait rather than spin.
                    tracing::warn!(%err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let addr = peer.ip().to_canonical();
        let trusted = limits.trusted.iter().any(|net| net.contains(&addr));
        let slot = if trusted {
            None
        } else {
            match per_address.take(addr, limits.per_address) {
                Some(slot) => Some(slot),
                None => {
                    metrics.refuse_connection("too_many_from_address");
                    tracing::debug!(%addr, "too many connections from one address");
                    continue;
                }
            }
        };
        tune(&stream);
        let app = app.clone();
        let http = if trusted {
            http_proxied.clone()
        } else {
            http_direct.clone()
        };
        let tls = tls.clone();
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_io(&http, stream, app, stop, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_io(&http, stream, app, stop, peer).await,
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(tcp);
    connections.close();
    if tokio::time::timeout(Duration::from_secs(5), connections.wait())
        .await
        .is_err()
    {
        tracing::debug!("some requests were still open at shutdown");
    }
}

/// Serves one connection from `peer` until it ends; at `stop`, lets the request in progress
/// finish. Handlers read `peer` as `ConnectInfo<SocketAddr>`.
async fn serve_io<I>(
    http: &http1::Builder,
    io: I,
    app: Router,
    stop: CancellationToken,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().call(request.map(axum::body::Body::new))
    });
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "connection ended");
    }
}
