//! The UDP side of the tracker client (BEP 15): `udp://host:port[/path]` trackers, announced to and
//! scraped through the packets of [`btorrent_proto::udp_tracker`].
//!
//! - A connection id is asked for once and reused for [`CONNECTION_ID_LIFETIME`] by every call of the
//!   client (and its clones) to the same tracker; one that goes unanswered is forgotten, so the next
//!   try connects afresh (the tracker may have restarted and no longer know it).
//! - Each packet waits `first x 2^n` for its answer, n counting the timeouts of the call (BEP 15's
//!   15 s x 2^n with `first` = 15 s by default); after `attempts` timeouts the call fails as a
//!   transient transport error, so the engine's back-off takes over. `n` stops at 8, as in the BEP.
//! - A reply counts only when it comes from the tracker's address and carries the transaction id of
//!   the packet it answers (a fresh random one per packet); anything else is ignored. A reply with the
//!   right id that cannot be decoded is [`TrackerError::BadResponse`]; an error packet is
//!   [`TrackerError::Failure`] with the tracker's words.
//! - An announce carries its URL's path and query (BEP 41), so a tracker that tells torrents or users
//!   apart by them (a passkey) can over UDP too.
//! - IPv4 and IPv6: the tracker's host is resolved (an address of the client's own family when it
//!   announces from a fixed address), and announce replies are read with 6- or 18-byte peers to match.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::Url;
use tokio::net::UdpSocket;

use super::family::{Family, FamilyResolver, NoAddressOfFamily};
use super::{AnnounceRequest, AnnounceResponse, ScrapeStats, TrackerError};
use btorrent_proto::types::InfoHash;
use btorrent_proto::udp_tracker::{
    is_ipv6, Request, Response, CONNECTION_ID_LIFETIME, MAX_SCRAPE_HASHES,
};

/// Largest datagram read.
const MAX_DATAGRAM: usize = 64 << 10;
/// BEP 15 stops doubling the timeout at 2^8.
const MAX_EXPONENT: u32 = 8;

/// Connection ids handed out by trackers, by tracker address, with when they were obtained.
#[derive(Default)]
pub(super) struct ConnectionIds(Mutex<HashMap<SocketAddr, (u64, Instant)>>);

impl ConnectionIds {
    fn get(&self, tracker: &SocketAddr) -> Option<u64> {
        let mut map = self.0.lock();
        match map.get(tracker) {
            Some(&(id, at)) if at.elapsed() < CONNECTION_ID_LIFETIME => Some(id),
            Some(_) => {
                map.remove(tracker);
                None
            }
            None => None,
        }
    }

    fn put(&self, tracker: SocketAddr, id: u64) {
        let mut map = self.0.lock();
        map.retain(|_, (_, at)| at.elapsed() < CONNECTION_ID_LIFETIME);
        map.insert(tracker, (id, Instant::now()));
    }

    fn forget(&self, tracker: &SocketAddr) {
        self.0.lock().remove(tracker);
    }
}

/// How long to wait for answers: `first`, doubling after each timeout, `attempts` timeouts in all.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub first: Duration,
    pub attempts: u32,
}

/// One call's socket, talking to one tracker address.
pub(super) struct Exchange<'a> {
    ids: &'a ConnectionIds,
    timing: Timing,
    sock: UdpSocket,
    tracker: SocketAddr,
    shown: String,
    timeouts: u32,
    buf: Vec<u8>,
}

impl<'a> Exchange<'a> {
    /// Resolves the tracker of `url` (to an address of `family` when given) and opens a socket of
    /// its family (from `local` when given).
    pub(super) async fn open(
        ids: &'a ConnectionIds,
        timing: Timing,
        local: Option<IpAddr>,
        family: Option<Family>,
        url: &Url,
    ) -> Result<Exchange<'a>, TrackerError> {
        let shown = super::display_url(url);
        let transport = |detail: String| TrackerError::Transport {
            url: shown.clone(),
            detail,
            timed_out: false,
        };
        let host = url.host_str().unwrap_or("");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port().ok_or_else(|| TrackerError::BadUrl {
            url: shown.clone(),
            reason: "a udp:// tracker needs a port".into(),
        })?;
        let addrs: Vec<SocketAddr> = match family {
            // Only that family's addresses (and `localhost` its loopback one).
            Some(family) if host.parse::<IpAddr>().is_err() => FamilyResolver { family }
                .lookup(host)
                .await
                .map_err(|e| {
                    if e.get_ref().is_some_and(|i| i.is::<NoAddressOfFamily>()) {
                        TrackerError::NoAddress {
                            url: shown.clone(),
                            detail: e.to_string(),
                        }
                    } else {
                        transport(format!("cannot resolve {host}: {e}"))
                    }
                })?
                .into_iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect(),
            _ => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| transport(format!("cannot resolve {host}: {e}")))?
                .collect(),
        };
        let tracker = addrs
            .iter()
            .find(|a| local.is_none_or(|l| l.is_ipv6() == a.is_ipv6()))
            .or(addrs.first())
            .copied()
            .ok_or_else(|| transport(format!("{host} has no address")))?;
        let bind_ip = match local {
            Some(ip) if ip.is_ipv6() == tracker.is_ipv6() => ip,
            _ if tracker.is_ipv6() => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let sock = UdpSocket::bind((bind_ip, 0))
            .await
            .map_err(|e| transport(format!("cannot open a UDP socket: {e}")))?;
        Ok(Exchange {
            ids,
            timing,
            sock,
            tracker,
            shown,
            timeouts: 0,
            buf: vec![0; MAX_DATAGRAM],
        })
    }

    /// Sends the request `make` builds from a connection id and a transaction id (connecting first
    /// when no id is known), retransmitting on the schedule, and returns the tracker's answer.
    pub(super) async fn call(
        &mut self,
        make: impl Fn(u64, u32) -> Request,
    ) -> Result<Response, TrackerError> {
        loop {
            let connection_id = match self.ids.get(&self.tracker) {
                Some(id) => id,
                None => match self
                    .round_trip(|tid| Request::Connect {
                        transaction_id: tid,
                    })
                    .await?
                {
                    Some(Response::Connect { connection_id, .. }) => {
                        self.ids.put(self.tracker, connection_id);
                        connection_id
                    }
                    Some(other) => return Err(self.unexpected(&other, "connect")),
                    None => continue,
                },
            };
            match self.round_trip(|tid| make(connection_id, tid)).await? {
                Some(resp) => return Ok(resp),
                // Perhaps the tracker no longer knows the id: the next try connects again.
                None => self.ids.forget(&self.tracker),
            }
        }
    }

    /// One packet and its answer: `Ok(None)` after a timeout that leaves attempts for another try.
    async fn round_trip(
        &mut self,
        make: impl FnOnce(u32) -> Request,
    ) -> Result<Option<Response>, TrackerError> {
        let tid: u32 = rand::random();
        let mut packet = Vec::with_capacity(128);
        make(tid).encode(&mut packet);
        self.sock
            .send_to(&packet, self.tracker)
            .await
            .map_err(|e| self.transport(format!("cannot send: {e}"), false))?;
        let wait = self
            .timing
            .first
            .saturating_mul(1 << self.timeouts.min(MAX_EXPONENT));
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut self.buf)).await;
            let (len, from) = match got {
                Err(_) => {
                    self.timeouts += 1;
                    if self.timeouts >= self.timing.attempts.max(1) {
                        let detail = format!(
                            "no answer after {} tr{} (timed out)",
                            self.timeouts,
                            if self.timeouts == 1 { "y" } else { "ies" }
                        );
                        return Err(self.transport(detail, true));
                    }
                    return Ok(None);
                }
                // An ICMP "port unreachable" surfaces as a receive error on some systems.
                Ok(Err(e)) => return Err(self.transport(format!("cannot receive: {e}"), false)),
                Ok(Ok(got)) => got,
            };
            let data = &self.buf[..len];
            if !same_endpoint(&from, &self.tracker)
                || data.len() < 8
                || data[4..8] != tid.to_be_bytes()
            {
                tracing::debug!(%from, len, "ignored a UDP packet that answers none of ours");
                continue;
            }
            return match Response::decode(data, is_ipv6(&self.tracker)) {
                Ok(Response::Error { message, .. }) => Err(TrackerError::Failure(message)),
                Ok(resp) => Ok(Some(resp)),
                Err(e) => Err(TrackerError::BadResponse(format!("{}: {e}", self.shown))),
            };
        }
    }

    fn transport(&self, detail: String, timed_out: bool) -> TrackerError {
        TrackerError::Transport {
            url: self.shown.clone(),
            detail,
            timed_out,
        }
    }

    pub(super) fn unexpected(&self, resp: &Response, asked: &str) -> TrackerError {
        let got = match resp {
            Response::Connect { .. } => "connect",
            Response::Announce { .. } => "announce",
            Response::Scrape { .. } => "scrape",
            Response::Error { .. } => "error",
        };
        TrackerError::BadResponse(format!(
            "{} answered a {asked} request with a {got} reply",
            self.shown
        ))
    }
}

/// What an announce tells the tracker of its URL (BEP 41's URLData): the path and query as the URL
/// writes them (`/announce?passkey=x`), as libtorrent sends them; nothing for a URL without either.
fn url_data(url: &Url) -> Vec<u8> {
    let mut data = match url.path() {
        "/" => String::new(),
        path => path.to_string(),
    };
    if let Some(query) = url.query() {
        if data.is_empty() {
            data.push('/');
        }
        data.push('?');
        data.push_str(query);
    }
    data.into_bytes()
}

/// The same address and port, an IPv4-mapped IPv6 address being its IPv4 address.
fn same_endpoint(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

impl super::TrackerClient {
    fn udp_timing(&self) -> Timing {
        Timing {
            first: self.udp_timeout,
            attempts: self.retry.attempts,
        }
    }

    /// [`announce`](super::TrackerClient::announce) to a `udp://` tracker.
    pub(super) async fn udp_announce(
        &self,
        url: &Url,
        req: &AnnounceRequest,
        family: Option<Family>,
    ) -> Result<AnnounceResponse, TrackerError> {
        let timing = self.udp_timing();
        let mut ex = Exchange::open(&self.udp_ids, timing, self.local, family, url).await?;
        let url_data = url_data(url);
        let resp = ex
            .call(|connection_id, transaction_id| Request::Announce {
                connection_id,
                transaction_id,
                announce: req.clone(),
                url_data: url_data.clone(),
            })
            .await?;
        match resp {
            Response::Announce { reply, .. } => Ok(reply),
            other => Err(ex.unexpected(&other, "announce")),
        }
    }

    /// [`scrape`](super::TrackerClient::scrape) of a `udp://` tracker, [`MAX_SCRAPE_HASHES`] per
    /// packet.
    pub(super) async fn udp_scrape(
        &self,
        url: &Url,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>, TrackerError> {
        let mut out = HashMap::with_capacity(hashes.len());
        if hashes.is_empty() {
            return Ok(out);
        }
        let timing = self.udp_timing();
        let mut ex = Exchange::open(&self.udp_ids, timing, self.local, self.family, url).await?;
        for batch in hashes.chunks(MAX_SCRAPE_HASHES) {
            let resp = ex
                .call(|connection_id, transaction_id| Request::Scrape {
                    connection_id,
                    transaction_id,
                    hashes: batch.to_vec(),
                })
                .await?;
            let Response::Scrape { stats, .. } = resp else {
                return Err(ex.unexpected(&resp, "scrape"));
            };
            if stats.len() != batch.len() {
                return Err(TrackerError::BadResponse(format!(
                    "{} answered a scrape of {} torrents with {} counts",
                    ex.shown,
                    batch.len(),
                    stats.len()
                )));
            }
            out.extend(batch.iter().copied().zip(stats));
        }
        Ok(out)
    }
}
