//! Bounded HTTP downloads of what a user names by URL (a .torrent, a blocklist): a whole-request
//! timeout, and a size past which the body is refused rather than held in memory.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};

/// GETs `url` and returns its body: an error for a status other than success, a body over `max`
/// bytes, or a request that takes longer than `timeout`.
pub async fn get(url: &str, max: usize, timeout: Duration) -> Result<Vec<u8>> {
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    if !resp.status().is_success() {
        bail!("cannot fetch {url}: HTTP {}", resp.status());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .with_context(|| format!("cannot fetch {url}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            bail!("{url}: larger than {max} bytes");
        }
    }
    Ok(body)
}
