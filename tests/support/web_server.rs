//! A web seed for the tests (BEP 19): files of a folder served over HTTP on loopback, with `Range`
//! requests answered `206` as nginx does, every request counted (and those answered at once), a
//! switch that makes it send corrupted bytes and a delay before each answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
pub struct Served {
    /// Requests answered so far.
    pub requests: AtomicUsize,
    /// Every byte sent is flipped.
    pub corrupt: AtomicBool,
    /// `Range` is ignored: the whole file is sent, `200`, as a server without ranges does.
    pub ignore_range: AtomicBool,
    /// A range is answered with other bytes than asked, within the file: one further on, or one
    /// back at its end (and says so in `Content-Range`).
    pub shift_range: AtomicBool,
    /// Each answer waits this long first (milliseconds).
    pub delay_ms: std::sync::atomic::AtomicU64,
    /// Requests being answered now, and the most there were at once.
    pub in_flight: AtomicUsize,
    pub most_in_flight: AtomicUsize,
}

/// Counts a request in `in_flight` while it is answered.
struct Answering<'a>(&'a Served);

impl<'a> Answering<'a> {
    fn new(s: &'a Served) -> Self {
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.most_in_flight.fetch_max(now, Ordering::SeqCst);
        Answering(s)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct WebServer {
    /// `http://127.0.0.1:port/`: the served folder's root.
    pub url: String,
    pub served: Arc<Served>,
}

struct Ctx {
    root: PathBuf,
    served: Arc<Served>,
}

impl WebServer {
    /// Serves `root` until the test ends.
    pub async fn start(root: PathBuf) -> WebServer {
        let served = Arc::new(Served::default());
        let ctx = Arc::new(Ctx {
            root,
            served: served.clone(),
        });
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::get(file))
            .with_state(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebServer {
            url: format!("http://{addr}/"),
            served,
        }
    }
}

/// `bytes=a-b` (both ends given, as web seeds ask).
fn range(headers: &HeaderMap) -> Option<(usize, usize)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

async fn file(
    State(ctx): State<Arc<Ctx>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    ctx.served.requests.fetch_add(1, Ordering::SeqCst);
    let _answering = Answering::new(&ctx.served);
    let delay = ctx.served.delay_ms.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    if path.split('/').any(|p| p == "..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(data) = std::fs::read(ctx.root.join(&path)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let flip = |mut b: Vec<u8>| {
        if ctx.served.corrupt.load(Ordering::SeqCst) {
            b.iter_mut().for_each(|x| *x ^= 0xff);
        }
        b
    };
    let shift = ctx.served.shift_range.load(Ordering::SeqCst);
    let len = data.len();
    let asked = range(&headers)
        .filter(|_| !ctx.served.ignore_range.load(Ordering::SeqCst))
        .map(|(a, b)| match (shift, a, b) {
            (false, ..) => (a, b),
            // Other bytes than asked, always within the file (a range past its end would be
            // answered 416 instead, which is another failure).
            (true, a, b) if b + 1 < len => (a + 1, b + 1),
            (true, a, b) if a > 0 => (a - 1, b - 1),
            (true, a, b) => (a, b.saturating_sub(1)),
        });
    match asked {
        Some((a, b)) if a <= b && b < data.len() => (
            StatusCode::PARTIAL_CONTENT,
            [(
                header::CONTENT_RANGE,
                format!("bytes {a}-{b}/{}", data.len()),
            )],
            flip(data[a..=b].to_vec()),
        )
            .into_response(),
        Some(_) => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        None => flip(data).into_response(),
    }
}
