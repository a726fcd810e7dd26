//! The UDP side of the tracker (BEP 15): connect, announce and scrape packets, answered from the same
//! store, caps, private mode and peer-list sizes as the HTTP side.
//!
//! - Connection ids keep no per-client state: an id is a keyed hash (SipHash with a key drawn at
//!   random when the tracker starts) of the client's IP address and a [`BUCKET_SECS`] time bucket. A
//!   packet is accepted with the id of the current or the previous bucket, so an id lives between one
//!   and two buckets, more than the minute a client may use it.
//! - Never an amplifier: packets that do not decode, and any announce or scrape without a valid
//!   connection id (spoofed, expired, junk) get no reply at all, only a count in the stats. A connect
//!   reply is as long as the connect request; error replies are cut to the length of the request they
//!   answer; only announce replies, which need a connection id and so an address that receives our
//!   packets, carry more (their peers).
//! - Announce replies carry peers of the packet's family only: 6-byte IPv4 peers to a client on IPv4
//!   (an IPv4-mapped address on a dual-stack socket counts as IPv4), 18-byte IPv6 peers to one on
//!   IPv6.
//! - The peer is listed under the packet's source address; the announce's `ip` field is believed by
//!   the same [`IpParamPolicy`](super::IpParamPolicy) as HTTP's `ip=` (proxies do not apply to UDP).
//! - Refusals (private mode, a cap, a malformed announce or scrape with a valid id) are BEP 15 error
//!   packets with the same words as the HTTP `failure reason`.

use std::future::Future;
use std::hash::BuildHasher;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::net::UdpSocket;

use super::announce::{record, refusal_text};
use super::swarm::Family;
use super::{client_addr, scrape, Tracker};
use btorrent_proto::tracker::{AnnounceResponse, ScrapeStats};
use btorrent_proto::udp_tracker::{is_ipv6, Request, Response};

/// Width of the time bucket a connection id is tied to, in seconds.
const BUCKET_SECS: u32 = 60;
/// Largest packet read; larger ones are cut and then fail to decode.
const MAX_PACKET: usize = 2048;
/// Worker threads at most.
const MAX_WORKERS: usize = 8;
/// How often a worker blocked in `recv_from` looks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Tells the workers to stop when dropped (shutdown, or the serving future dropped).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The per-process key of connection ids and the UDP counters.
#[derive(Default)]
pub(crate) struct UdpState {
    key: std::collections::hash_map::RandomState,
    pub connects: AtomicU64,
    pub announces: AtomicU64,
    pub scrapes: AtomicU64,
    /// Packets dropped unanswered: undecodable, or without a valid connection id.
    pub dropped: AtomicU64,
}

impl UdpState {
    fn connection_id(&self, from: &SocketAddr, bucket: u32) -> u64 {
        self.key.hash_one((from.ip().to_canonical(), bucket))
    }
}

impl Tracker {
    /// The connection id handed to `from` now.
    fn udp_connection_id(&self, from: &SocketAddr) -> u64 {
        let bucket = self.now_secs() / BUCKET_SECS;
        self.inner.udp.connection_id(from, bucket)
    }

    /// Whether `id` is the id of `from` in the current or the previous time bucket.
    fn udp_id_valid(&self, from: &SocketAddr, id: u64) -> bool {
        let bucket = self.now_secs() / BUCKET_SECS;
        let udp = &self.inner.udp;
        udp.connection_id(from, bucket) == id
            || (bucket > 0 && udp.connection_id(from, bucket - 1) == id)
    }

    /// Answers one UDP packet from `from`: the reply is written to `out` (cleared first) and `true`
    /// returned, or `false` when the packet gets no reply (junk or no valid connection id). Does no
    /// I/O; [`serve_udp`](Self::serve_udp) calls it for every packet.
    pub fn answer_udp(&self, packet: &[u8], from: SocketAddr, out: &mut Vec<u8>) -> bool {
        out.clear();
        let udp = &self.inner.udp;
        let ipv6 = is_ipv6(&from);
        let request = match Request::decode(packet) {
            Ok(r) => r,
            Err(e) => {
                // A malformed announce or scrape from a client that did connect gets the reason.
                let connected = packet.len() >= 16
                    && packet[8..12] != [0; 4]
                    && self.udp_id_valid(&from, u64_from(&packet[..8]));
                if !connected {
                    udp.dropped.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                self.count_failure();
                let tid = u32_from(&packet[12..16]);
                return error_reply(tid, &e.to_string(), packet.len(), out);
            }
        };
        match request {
            Request::Connect { transaction_id } => {
                udp.connects.fetch_add(1, Ordering::Relaxed);
                Response::Connect {
                    transaction_id,
                    connection_id: self.udp_connection_id(&from),
                }
                .encode(ipv6, out);
                true
            }
            // A BEP 41 URLData (the path and query of the client's URL) selects nothing here:
            // the tracker has one swarm per info-hash, as its HTTP side does.
            Request::Announce {
                connection_id,
                transaction_id,
                announce: a,
                url_data: _,
            } => {
                if !self.udp_id_valid(&from, connection_id) {
                    udp.dropped.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                udp.announces.fetch_add(1, Ordering::Relaxed);
                if a.port == 0 {
                    self.count_failure();
                    return error_reply(transaction_id, "invalid port", packet.len(), out);
                }
                let cfg = &self.inner.cfg;
                let ip =
                    client_addr::peer_ip(from.ip(), &HeaderMap::new(), a.ip, &[], cfg.ip_param);
                let only = if ipv6 { Family::V6 } else { Family::V4 };
                let mut peers = Vec::new();
                match record(self, &a, ip, only, &mut peers) {
                    Ok(counts) => {
                        Response::Announce {
                            transaction_id,
                            reply: AnnounceResponse {
                                interval: cfg.interval,
                                min_interval: None,
                                complete: Some(counts.seeders as u64),
                                incomplete: Some(counts.leechers as u64),
                                downloaded: None,
                                downloaders: None,
                                peers: peers.into_iter().map(|(addr, _)| addr).collect(),
                                warning: None,
                            },
                        }
                        .encode(ipv6, out);
                        true
                    }
                    Err(r) => {
                        self.count_failure();
                        error_reply(transaction_id, refusal_text(r), packet.len(), out)
                    }
                }
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                hashes,
            } => {
                if !self.udp_id_valid(&from, connection_id) {
                    udp.dropped.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                udp.scrapes.fetch_add(1, Ordering::Relaxed);
                // The reply keeps the request's order: an unregistered torrent reads as empty.
                let stats = hashes
                    .iter()
                    .map(|h| {
                        let c = scrape::counts(self, h).unwrap_or_default();
                        ScrapeStats {
                            complete: c.seeders as u64,
                            incomplete: c.leechers as u64,
                            downloaded: c.completed,
                            downloaders: None,
                        }
                    })
                    .collect();
                Response::Scrape {
                    transaction_id,
                    stats,
                }
                .encode(ipv6, out);
                true
            }
        }
    }

    /// Serves BEP 15 on `socket` until `shutdown` completes (or this future is dropped), on one
    /// thread per core (at most 8) blocked in `recv_from` on the one socket: the kernel
    /// hands each packet to one of them, and no packet costs a trip through the async runtime. Expiry
    /// of idle peers is run by [`serve`](Self::serve) (or [`spawn_expiry`](Self::spawn_expiry)), not
    /// here; see [`serve_with_udp`](Self::serve_with_udp) for both sides at once. Returns once every
    /// worker has stopped, so the port is free again.
    pub async fn serve_udp(
        self,
        socket: UdpSocket,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let socket = socket.into_std()?;
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(MAX_WORKERS));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (t, socket, stop) = (self.clone(), socket.try_clone()?, stop.0.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("udp-tracker-{i}"))
                    .spawn(move || t.udp_worker(&socket, &stop))?,
            );
        }
        drop(socket);
        shutdown.await;
        stop.0.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        Ok(())
    }

    fn udp_worker(&self, socket: &std::net::UdpSocket, stop: &AtomicBool) {
        let mut buf = vec![0u8; MAX_PACKET];
        let mut out = Vec::with_capacity(MAX_PACKET);
        while !stop.load(Ordering::Relaxed) {
            let (len, from) = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                // ICMP errors of earlier sends and the like: pause rather than spin, then go on.
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if self.answer_udp(&buf[..len], from, &mut out) {
                // A full send buffer or an unreachable client loses this reply only.
                let _ = socket.send_to(&out, from);
            }
        }
    }

    /// [`serve`](Self::serve) HTTP on `listener` and [`serve_udp`](Self::serve_udp) on `udp` (usually
    /// the same address and port) until `shutdown` completes.
    pub async fn serve_with_udp(
        self,
        listener: tokio::net::TcpListener,
        udp: UdpSocket,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let udp_side = tokio::spawn(self.clone().serve_udp(udp, async move {
            let _ = stop_rx.wait_for(|&s| s).await;
        }));
        let result = self
            .serve(listener, async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        let _ = udp_side.await;
        result
    }
}

/// A BEP 15 error packet, its message cut so the reply is no longer than the request (`request_len`).
fn error_reply(transaction_id: u32, message: &str, request_len: usize, out: &mut Vec<u8>) -> bool {
    let room = request_len.saturating_sub(8);
    let mut cut = message.len().min(room);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    Response::Error {
        transaction_id,
        message: message[..cut].to_string(),
    }
    .encode(false, out);
    true
}

fn u64_from(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    u64::from_be_bytes(x)
}

fn u32_from(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
