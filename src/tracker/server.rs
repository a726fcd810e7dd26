//! The accept loop: HTTP/1.1 with keep-alive over hyper, bounded in what each connection and the whole
//! server may hold.
//!
//! - At most `max_connections` connections are served at once (a semaphore permit per connection);
//!   more wait in the kernel's accept queue rather than costing memory here.
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
use tokio::sync::{watch, Semaphore};
use tower_service::Service;

/// Largest request head (request line and headers) read.
pub(crate) const MAX_HEAD: usize = 16 << 10;
/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);

pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

pub(crate) async fn run(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, 1 << 20);
    let permits = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
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
        let _ = stream.set_nodelay(true);
        let service = ConnService {
            router: router.clone(),
            remote,
        };
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { stop.wait_for(|&s| s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, permits.acquire_many(max as u32)).await;
    Ok(())
}

/// Hands each request of one connection to the router, tagged with the peer's address.
#[derive(Clone)]
struct ConnService {
    router: Router,
    remote: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = axum::routing::future::RouteFuture<std::convert::Infallible>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.remote));
        // A Router is always ready, so it may be called without polling readiness.
        self.router.clone().call(req.map(axum::body::Body::new))
    }
}
