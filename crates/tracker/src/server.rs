//! The accept loop: HTTP/1.1 with keep-alive over hyper, bounded in what each connection and the whole
//! server may hold.
//!
//! - Connections are admitted through the tracker's [`Conns`] table: at most `max_connections` in
//!   all and `max_connections_per_ip` from one address; at either cap the longest-idle connection (one
//!   trickling its head in, or kept alive between requests) is closed to make room, so slow or idle
//!   sockets cannot keep a new client out.
//! - A request head must arrive within `header_timeout`, which also closes kept-alive connections that
//!   sit idle that long; a head larger than [`MAX_HEAD`] is answered 431 by hyper.
//! - Accept errors (out of file descriptors, a connection reset before it was accepted) pause the loop
//!   briefly instead of ending the server.
//! - On shutdown the listener is closed, every connection is told to finish its current request and
//!   close, and the loop waits up to [`DRAIN`] for them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

use super::conns::{ConnState, Conns};

/// Largest request head (request line and headers) read.
pub(crate) const MAX_HEAD: usize = 16 << 10;
/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    conns: Arc<Conns>,
    header_timeout: Duration,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(_) => {
                    // EMFILE/ENFILE or an aborted handshake: pause rather than spin or exit.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let admitted = tokio::select! {
            a = conns.admit(remote.ip()) => a,
            _ = &mut shutdown => break,
        };
        // An address at its cap with every connection busy: this one is closed unserved.
        let Ok(admitted) = admitted else { continue };
        let _ = stream.set_nodelay(true);
        let state = admitted.state;
        let service = ConnService {
            router: router.clone(),
            remote,
            state: state.clone(),
        };
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let conns = conns.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // Made room for a newer connection: dropping `conn` closes the socket.
                _ = state.evicted() => {}
                _ = async { stop.wait_for(|&s| s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            conns.release(admitted.id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, conns.drained()).await;
    Ok(())
}

/// Hands each request of one connection to the router, tagged with the peer's address, and marks the
/// connection busy (not evictable) until the handler has answered.
#[derive(Clone)]
struct ConnService {
    router: Router,
    remote: SocketAddr,
    state: Arc<ConnState>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.remote));
        self.state.begin_request();
        let state = self.state.clone();
        // A Router is always ready, so it may be called without polling readiness.
        let answer = self.router.clone().call(req.map(axum::body::Body::new));
        Box::pin(async move {
            let resp = answer.await;
            state.end_request();
            resp
        })
    }
}
