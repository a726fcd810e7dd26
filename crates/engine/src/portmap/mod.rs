//! Port forwarding: the session asks the home router (the gateway) to forward its peer port from
//! outside, as Transmission, qBittorrent and libtorrent do, so peers beyond the NAT can dial in.
//! NAT-PMP ([`natpmp`], RFC 6886) is tried first, at the gateway of the default route
//! ([`default_gateway`]); a gateway that does not answer it is looked for over UPnP IGD
//! ([`upnp`]). How it stands is a [`PortForwarding`] (`status.rs`); how each kind of gateway is
//! asked, and what is then held, is `mapping.rs`.
//!
//! Over IPv6 nothing is translated, but the router's firewall keeps out what comes in unasked: the
//! peer port (TCP and uTP) is opened there for this machine's global address by PCP ([`pcp`],
//! RFC 6887), at the gateway of the IPv6 default route, when the session listens on IPv6 (a
//! "pinhole", reported beside the IPv4 forwarding as [`PortForwarding::ipv6`]).
//!
//! Ports forwarded: the TCP listen port, the UDP port of the same number (uTP), and the DHT
//! node's UDP port when it is another. Each is asked for with the same external number; where
//! the gateway has given that number to another machine behind it, it gives another (NAT-PMP
//! does so itself; over UPnP the gateway is asked for any port), renewals keep the one given, and
//! the peer port outside is what the DHT and trackers beyond the local network are told
//! (`SessionCtx::public_port` in the session).
//!
//! One task per session ([`PortMapper::run`]) owns the mappings, IPv4's and IPv6's each on its own
//! track (`Track`). It maps when switched on, renews
//! at half the lifetime the gateway granted, maps again when a port moves
//! ([`crate::Session::set_listen_port`], the DHT switched on or off), deletes the mappings when
//! switched off and when the session stops (bounded by [`RELEASE_TIMEOUT`]; a stop that comes
//! while the router is being asked ends the asking: a renewal's mappings are deleted all the
//! same, a first mapping's lapse with their lease), and after a failure tries again after
//! [`RETRY`]. With nothing held and nothing to retry it wakes only to look at the ports again
//! (every `PORTS_POLL`, 5 s) or when switched. Nothing is tried for a session that listens on
//! loopback.
//!
//! Invariants: only the task changes the statuses and the mappings; each track's mappings are
//! its own (a stop deletes both tracks' together, a change of ports or address deletes that
//! track's first). The two statuses (IPv4's, the pinholes') each have a lock, never held across an
//! `.await` nor together. [`PortMapper::status`] is a copy of both.

mod exchange;
mod mapping;
pub mod natpmp;
pub mod pcp;
mod route;
mod status;
pub mod upnp;

pub use route::{default_gateway, source_toward};
pub use status::{ForwardState, Forwarded, PortForwarding, Protocol};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use mapping::Held;

/// The wait after a failure before trying again.
pub const RETRY: Duration = Duration::from_secs(600);

/// How often the ports are looked at for a move.
const PORTS_POLL: Duration = Duration::from_secs(5);

/// The most the deletion of the mappings may hold up a session that stops.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a [`Track`] keeps open: ports forwarded over IPv4 (NAT-PMP, else UPnP) or IPv6 pinholes
/// (PCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Forward,
    Pinhole,
}

impl Kind {
    /// How its status is named in the log.
    fn what(self) -> &'static str {
        match self {
            Kind::Forward => "port forwarding",
            Kind::Pinhole => "IPv6 pinholes",
        }
    }
}

/// One kind of mapping between rounds of [`PortMapper::run`]: what is held and when to renew it,
/// the ports it was made for (a gateway may have granted only some of them) and, for pinholes, our
/// address they open to; and when to try again after a failure.
struct Track {
    kind: Kind,
    held: Option<(Held, Instant)>,
    retry_at: Instant,
    asked: Vec<(Protocol, u16)>,
    /// The pinholes' address ([`PortMapper::pinhole_address`]) when they were asked for.
    address: Option<Ipv6Addr>,
}

impl Track {
    fn new(kind: Kind) -> Track {
        Track {
            kind,
            held: None,
            retry_at: Instant::now(),
            asked: Vec::new(),
            address: None,
        }
    }

    /// When it next has work: a renewal, or a retry; `None` while it is asked for nothing (a
    /// round then waits for the next poll of the ports, not for a time already past).
    fn next(&self) -> Option<Instant> {
        match &self.held {
            Some((_, at)) => Some(*at),
            None => (!self.asked.is_empty()).then_some(self.retry_at),
        }
    }
}

/// The session's port forwarding; see the module doc.
pub struct PortMapper {
    /// The gateway named in the settings; `None`: the default route's (NAT-PMP) and whoever
    /// answers SSDP's multicast (UPnP).
    gateway: Option<Ipv4Addr>,
    /// The address the session listens on, when it is a specific one (mappings point there).
    listen_ip: Option<IpAddr>,
    /// The session listens on IPv6 (`::` or an IPv6 address): pinholes are asked for.
    listens_v6: bool,
    on: watch::Sender<bool>,
    status: Mutex<PortForwarding>,
    /// The IPv6 pinholes' status (state `Off` with an `error` when there is nothing to open: no
    /// IPv6 default route or global address).
    pinholes: Mutex<PortForwarding>,
    /// The ports forwarded now (empty while nothing is), for those who act on a change.
    forwarded: watch::Sender<Vec<Forwarded>>,
}

impl PortMapper {
    /// A mapper, switched `on` or not; [`PortMapper::run`] does the work.
    pub fn new(on: bool, gateway: Option<Ipv4Addr>, listen_ip: IpAddr) -> Arc<PortMapper> {
        Arc::new(PortMapper {
            gateway,
            listen_ip: (!listen_ip.is_unspecified()).then_some(listen_ip),
            listens_v6: listen_ip.is_ipv6(),
            on: watch::Sender::new(on),
            status: Mutex::new(PortForwarding::off()),
            pinholes: Mutex::new(PortForwarding::off()),
            forwarded: watch::Sender::new(Vec::new()),
        })
    }

    /// Where port forwarding stands, with the IPv6 pinholes once they were tried.
    pub fn status(&self) -> PortForwarding {
        let mut s = self.status_of(Kind::Forward);
        let holes = self.status_of(Kind::Pinhole);
        let tried = holes.state != ForwardState::Off || holes.error.is_some();
        s.ipv6 = (s.on && tried).then(|| Box::new(holes));
        s
    }

    fn status_of(&self, kind: Kind) -> PortForwarding {
        let mut s = match kind {
            Kind::Forward => self.status.lock().clone(),
            Kind::Pinhole => self.pinholes.lock().clone(),
        };
        s.on = self.is_on();
        s
    }

    /// Whether it is switched on.
    pub fn is_on(&self) -> bool {
        *self.on.borrow()
    }

    /// Switches it on (the ports are mapped at once) or off (the mappings are deleted).
    pub fn switch(&self, on: bool) {
        self.on
            .send_if_modified(|now| std::mem::replace(now, on) != on);
    }

    /// The port outside that the gateway forwards to our `internal` port of `protocol`, while it
    /// does and the number is another (a gateway may grant another when ours is taken there, by
    /// another machine behind it).
    pub fn outside_port(&self, protocol: Protocol, internal: u16) -> Option<u16> {
        let s = self.status.lock();
        if s.state != ForwardState::Forwarded || !self.is_on() {
            return None;
        }
        s.ports
            .iter()
            .find(|p| p.protocol == protocol && p.internal == internal)
            .map(|p| p.external)
            .filter(|&e| e != internal)
    }

    /// Changes each time the ports forwarded do (mapped, let go, or given another number
    /// outside).
    pub fn forwarded(&self) -> watch::Receiver<Vec<Forwarded>> {
        self.forwarded.subscribe()
    }

    fn set_status_of(&self, kind: Kind, s: PortForwarding) {
        match kind {
            Kind::Forward => self.set_status(s),
            Kind::Pinhole => *self.pinholes.lock() = s,
        }
    }

    fn set_status(&self, s: PortForwarding) {
        let ports = if s.state == ForwardState::Forwarded {
            s.ports.clone()
        } else {
            Vec::new()
        };
        *self.status.lock() = s;
        self.forwarded.send_if_modified(|now| {
            let changed = *now != ports;
            *now = ports;
            changed
        });
    }

    /// Maps the ports `ports()` names while switched on, until `stop`; see the module doc.
    pub async fn run(
        self: Arc<Self>,
        ports: impl Fn() -> Vec<Wanted> + Send,
        stop: CancellationToken,
    ) {
        let mut on = self.on.subscribe();
        let mut tracks = [Track::new(Kind::Forward), Track::new(Kind::Pinhole)];
        'rounds: loop {
            // A stop ends the rounds before the ports are looked at again: the DHT stops with
            // the session, and its port gone is no change to act on.
            if stop.is_cancelled() {
                break;
            }
            let wanted = if *on.borrow_and_update() {
                ports()
            } else {
                Vec::new()
            };
            for track in &mut tracks {
                let ipv6 = track.kind == Kind::Pinhole;
                let wanted = if ipv6 && !self.listens_v6 {
                    Vec::new()
                } else {
                    wanted
                        .iter()
                        .filter(|w| w.ipv6 || !ipv6)
                        .map(|w| (w.protocol, w.port))
                        .collect()
                };
                // The address pinholes open to, looked at each round: the one we send from
                // changes (privacy extensions make a new one by the day), and the pinholes
                // follow it at once.
                let address = (ipv6 && !wanted.is_empty())
                    .then(|| self.pinhole_address())
                    .flatten();
                // What the ports changed from is let go of whether or not a stop comes meanwhile
                // (within its bound): a stop deletes what is held, and this was.
                self.let_go_if_changed(track, &wanted, address).await;
                // A stop does not wait for a slow router: a first mapping under way lapses with
                // its lease; a renewal under way leaves the track holding what it renews, which
                // is deleted below with the other track's.
                tokio::select! {
                    () = self.step(track, wanted) => {}
                    _ = stop.cancelled() => break 'rounds,
                }
            }
            let poll = Instant::now() + PORTS_POLL;
            let next = tracks
                .iter()
                .filter_map(Track::next)
                .min()
                .map_or(poll, |at| at.clamp(Instant::now(), poll));
            tokio::select! {
                _ = stop.cancelled() => break,
                r = on.changed() => if r.is_err() { break },
                _ = tokio::time::sleep_until(next) => {}
            }
        }
        // Both tracks' mappings deleted together, within one bound.
        let held = tracks
            .into_iter()
            .filter_map(|t| t.held.map(|(h, _)| h.release()));
        let _ = tokio::time::timeout(RELEASE_TIMEOUT, futures::future::join_all(held)).await;
    }

    /// When the ports `wanted` of `track` changed (switched off, a port moved) or, for
    /// pinholes, the `address` they open to: lets go of what it holds (within
    /// [`RELEASE_TIMEOUT`]) and makes the new ones due at once, whatever the last failure.
    async fn let_go_if_changed(
        &self,
        track: &mut Track,
        wanted: &[(Protocol, u16)],
        address: Option<Ipv6Addr>,
    ) {
        if wanted == track.asked.as_slice() && address == track.address {
            return;
        }
        if let Some((h, _)) = track.held.take() {
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, h.release()).await;
        }
        track.retry_at = Instant::now();
        track.asked = wanted.to_vec();
        track.address = address;
    }

    /// One round of `track` for the ports `wanted` now (as [`PortMapper::let_go_if_changed`]
    /// left it): maps when nothing is held and the retry is due; renews when due. What it holds
    /// stays held until the renewal's answer replaces it; what that answer no longer holds (ports
    /// refused this time, or all of them) is deleted at the gateway.
    async fn step(&self, track: &mut Track, wanted: Vec<(Protocol, u16)>) {
        let kind = track.kind;
        let address = track.address;
        let now = Instant::now();
        let renew = track.held.as_ref().is_some_and(|(_, at)| *at <= now);
        if wanted.is_empty() {
            self.set_status_of(kind, PortForwarding::off());
            return;
        }
        if !renew && (track.held.is_some() || track.retry_at > now) {
            return;
        }
        if track.held.is_none() {
            let mut s = self.status_of(kind);
            s.state = ForwardState::Mapping;
            self.set_status_of(kind, s);
        }
        let previous = track.held.as_ref().map(|(h, _)| h.clone());
        let mapped = match kind {
            Kind::Forward => self.map(&wanted, previous.clone()).await,
            Kind::Pinhole => self.map_pinholes(&wanted, address, previous.clone()).await,
        };
        // What the renewal lost is deleted once the track holds what it gave (a stop meanwhile
        // deletes that).
        let lost = previous
            .as_ref()
            .and_then(|p| p.lost_in(mapped.as_ref().ok().map(|(h, _, _)| h)));
        match mapped {
            Ok((h, status, renew_in)) => {
                if status != self.status_of(kind) {
                    tracing::info!("{}", status.summary_as(kind.what()));
                }
                self.set_status_of(kind, status);
                track.held = Some((h, Instant::now() + renew_in));
            }
            Err(status) => {
                track.held = None;
                let why = status.error.as_deref().unwrap_or("?");
                let minutes = RETRY.as_secs() / 60;
                if status.state == ForwardState::Failed {
                    tracing::info!(
                        "{} failed (trying again in {minutes} min): {why}",
                        kind.what()
                    );
                } else {
                    tracing::debug!("{}: none ({why})", kind.what());
                }
                self.set_status_of(kind, status);
                track.retry_at = Instant::now() + RETRY;
            }
        }
        if let Some(lost) = lost {
            tracing::debug!("{}: deleting what the renewal lost", kind.what());
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, lost.release()).await;
        }
    }
}

/// A port to forward, and whether it is opened over IPv6 too (the DHT speaks IPv4 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub protocol: Protocol,
    pub port: u16,
    pub ipv6: bool,
}

/// The ports of a session to forward: TCP and UDP (uTP) `listen`, the DHT's `dht` when it is
/// another, and TCP and UDP of each port of `also` (the embedded tracker's), each once.
pub fn session_ports(listen: SocketAddr, utp: bool, dht: Option<u16>, also: &[u16]) -> Vec<Wanted> {
    let both = |protocol, port| Wanted {
        protocol,
        port,
        ipv6: true,
    };
    let mut v = vec![both(Protocol::Tcp, listen.port())];
    if utp {
        v.push(both(Protocol::Udp, listen.port()));
    }
    for &port in also {
        v.extend([both(Protocol::Tcp, port), both(Protocol::Udp, port)]);
    }
    if let Some(d) = dht {
        v.push(Wanted {
            protocol: Protocol::Udp,
            port: d,
            ipv6: false,
        });
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|w| seen.insert((w.protocol, w.port)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_of_a_session_are_each_forwarded_once() {
        let l: SocketAddr = "0.0.0.0:6881".parse().unwrap();
        use Protocol::*;
        let shown = |v: Vec<Wanted>| -> Vec<(Protocol, u16, bool)> {
            v.into_iter()
                .map(|w| (w.protocol, w.port, w.ipv6))
                .collect()
        };
        assert_eq!(
            shown(session_ports(l, true, Some(6882), &[])),
            [(Tcp, 6881, true), (Udp, 6881, true), (Udp, 6882, false)]
        );
        assert_eq!(
            shown(session_ports(l, true, Some(6881), &[])),
            [(Tcp, 6881, true), (Udp, 6881, true)]
        );
        assert_eq!(
            shown(session_ports(l, false, Some(6881), &[])),
            [(Tcp, 6881, true), (Udp, 6881, false)]
        );
        assert_eq!(
            shown(session_ports(l, false, None, &[])),
            [(Tcp, 6881, true)]
        );
        // The tracker's port, both protocols, over IPv6 too.
        assert_eq!(
            shown(session_ports(l, true, Some(6881), &[6969])),
            [
                (Tcp, 6881, true),
                (Udp, 6881, true),
                (Tcp, 6969, true),
                (Udp, 6969, true)
            ]
        );
    }

    /// Asked for no port (none wanted, no IPv6 to open), the task waits for the next poll: it
    /// used to take a renewal time long past for "now" and go round without a pause.
    #[tokio::test]
    async fn a_mapper_with_nothing_to_do_looks_at_the_ports_once_a_poll() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let m = PortMapper::new(true, None, "0.0.0.0".parse().unwrap());
        let looks = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let task = tokio::spawn(m.clone().run(
            {
                let looks = looks.clone();
                move || {
                    looks.fetch_add(1, Ordering::SeqCst);
                    Vec::new()
                }
            },
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the task ends at the stop")
            .unwrap();
        let n = looks.load(Ordering::SeqCst);
        assert!(n <= 2, "looked at the ports {n} times in 300 ms");
        assert_eq!(m.status().state, ForwardState::Off);
    }

    #[test]
    fn the_port_outside_is_told_only_when_forwarded_from_another_number() {
        use Protocol::*;
        let m = PortMapper::new(true, None, "0.0.0.0".parse().unwrap());
        let mut changes = m.forwarded();
        assert_eq!(m.outside_port(Tcp, 6881), None, "nothing forwarded yet");
        let gw = "192.168.1.1".parse().unwrap();
        let forward = |internal, external| {
            let tcp = Forwarded {
                protocol: Tcp,
                internal,
                external,
            };
            m.set_status(PortForwarding::forwarded("UPnP", gw, None, vec![tcp], &[]));
        };
        forward(6881, 6881);
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(m.outside_port(Tcp, 6881), None, "the same number");
        forward(6881, 40111);
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(m.outside_port(Tcp, 6881), Some(40111));
        assert_eq!(m.outside_port(Udp, 6881), None);
        assert_eq!(m.outside_port(Tcp, 6882), None, "another port of ours");
        // The same status again changes nothing; switched off, nothing is told.
        forward(6881, 40111);
        assert!(!changes.has_changed().unwrap());
        m.switch(false);
        assert_eq!(m.outside_port(Tcp, 6881), None);
        m.set_status(PortForwarding::off());
        assert!(changes.has_changed().unwrap() && changes.borrow().is_empty());
    }
}
