//! `rpc_web_dir`: a Transmission web client's files (Debian's transmission-common installs the 3.00
//! one in /usr/share/transmission/web) served read-only at `/transmission/web/`, from where the page
//! posts to `/transmission/rpc` like it does on Transmission itself. Only plain names below the folder
//! are served (no `..`, no hidden files), and the guard's whitelist and authentication apply.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, Response, StatusCode};

/// Largest file served (the web client's largest is its jQuery, well under this).
const MAX_FILE: u64 = 8 << 20;

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" => "application/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{text}\n")))
        .expect("a valid response")
}

/// The file `rel` (the part of the URL path after `/transmission/web/`) of `dir`; `index.html`
/// for the folder itself.
pub async fn serve(dir: &Path, rel: &str) -> Response<Body> {
    let rel = rel.trim_start_matches('/');
    let decoded = percent_encoding::percent_decode_str(rel).decode_utf8_lossy();
    let rel = if decoded.is_empty() || decoded.ends_with('/') {
        format!("{decoded}index.html")
    } else {
        decoded.to_string()
    };
    let Some(path) = crate::fsutil::confined_web_path(dir, &rel) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    match read(path).await {
        Ok(Some((bytes, ctype))) => Response::builder()
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(bytes))
            .expect("a valid response"),
        Ok(None) => plain(StatusCode::NOT_FOUND, "not found"),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

async fn read(path: PathBuf) -> Result<Option<(Vec<u8>, &'static str)>, String> {
    tokio::task::spawn_blocking(move || {
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(None);
        };
        if !meta.is_file() {
            return Ok(None);
        }
        if meta.len() > MAX_FILE {
            return Err(format!("{} is too large to serve", path.display()));
        }
        std::fs::read(&path)
            .map(|b| Some((b, content_type(&path))))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    })
    .await
    .map_err(|e| e.to_string())?
}
