//! A peer's byte stream: a TCP or uTP connection ([`super::transport`]), plain or encrypted by the
//! MSE handshake (`btorrent_proto::wire::mse`), and the session's [`Encryption`] policy that
//! decides which.
//!
//! `open` dials and handshakes (MSE first or plain first, per the policy, trying the other way on a
//! second connection when the first is closed on us: a peer that requires encryption hangs up on a
//! plain handshake, one that knows no MSE on ours), over the transport the dial takes
//! ([`super::Utp`]). `accept` tells an incoming plain handshake from an encrypted one by its first
//! 20 bytes.
//!
//! Halves: the connection's reader and sender tasks each own one (`PeerReader`, `PeerWriter`);
//! each holds its direction's RC4 keystream, if any. A plain stream costs one branch per call.
//! The writer encrypts into a buffer of its own: bytes taken are always sent, in order, before any
//! later bytes, so a caller must `flush` after its last write (the sender does after each batch).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::transport::{Joined, RawRead, RawStream, RawWrite, Transport, Utp, UtpNode};

use btorrent_proto::types::InfoHash;
use btorrent_proto::wire::handshake::{self, read_handshake, Handshake, HandshakeError};
use btorrent_proto::wire::mse::{self, Crypto, Established, Keystream, Methods};

/// Which connections to make and take: message stream encryption (MSE) or plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// Plain only: encrypted handshakes are refused, none is made.
    Off,
    /// Plain dials, an encrypted one after a plain handshake is refused; both taken; an encrypted
    /// connection goes on unencrypted after its handshake when the peer allows it (nothing spent on
    /// RC4 where nobody asks for it).
    #[default]
    Allow,
    /// Encrypted (RC4) dials, a plain one after an encrypted handshake is refused; both taken, RC4
    /// selected whenever the peer provides it.
    Prefer,
    /// RC4 only, both ways: plain handshakes are refused, and so are peers that will not encrypt.
    Require,
}

/// One way of opening a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    Plain,
    Encrypted(Methods),
}

impl Encryption {
    /// The ways to dial, in turn, each on a connection of its own.
    pub(crate) fn dial_ways(self) -> &'static [Way] {
        self.dial_ways_for(false)
    }

    /// The same for an address known to want encryption (`encrypt_first`): `Allow` then tries
    /// the encrypted handshake first.
    pub(crate) fn dial_ways_for(self, encrypt_first: bool) -> &'static [Way] {
        match self {
            Encryption::Off => &[Way::Plain],
            Encryption::Allow if encrypt_first => &[Way::Encrypted(Methods::BOTH), Way::Plain],
            Encryption::Allow => &[Way::Plain, Way::Encrypted(Methods::BOTH)],
            Encryption::Prefer => &[Way::Encrypted(Methods::RC4_ONLY), Way::Plain],
            Encryption::Require => &[Way::Encrypted(Methods::RC4_ONLY)],
        }
    }

    /// What an encrypted incoming handshake may select, and what it prefers; `None`: refused.
    fn responds(self) -> Option<(Methods, Crypto)> {
        match self {
            Encryption::Off => None,
            Encryption::Allow => Some((Methods::BOTH, Crypto::Plaintext)),
            Encryption::Prefer => Some((Methods::BOTH, Crypto::Rc4)),
            Encryption::Require => Some((Methods::RC4_ONLY, Crypto::Rc4)),
        }
    }

    /// The name in settings and the RPC's (`tolerated` / `preferred` / `required` map to the last
    /// three).
    pub fn name(self) -> &'static str {
        match self {
            Encryption::Off => "off",
            Encryption::Allow => "allow",
            Encryption::Prefer => "prefer",
            Encryption::Require => "require",
        }
    }

    pub fn parse(s: &str) -> Option<Encryption> {
        Some(match s {
            "off" | "plaintext" => Encryption::Off,
            "allow" | "tolerated" => Encryption::Allow,
            "prefer" | "preferred" => Encryption::Prefer,
            "require" | "required" => Encryption::Require,
            _ => return None,
        })
    }
}

/// The reading half: bytes the handshake read past its end first, then the socket's, decrypted.
pub(crate) struct PeerReader {
    inner: RawRead,
    decrypt: Option<Keystream>,
    received: Vec<u8>,
    at: usize,
}

/// The writing half: plain writes go straight through; encrypted ones through `pending`.
pub(crate) struct PeerWriter {
    inner: RawWrite,
    encrypt: Option<Keystream>,
    /// Encrypted bytes taken but not yet written (from `at`).
    pending: Vec<u8>,
    at: usize,
}

/// Bytes one encrypted write takes at most (the copy it is encrypted in).
const ENCRYPT_CHUNK: usize = 256 * 1024;

/// A connection after its MSE handshake, if any: both halves.
pub(crate) type PeerStream = Joined<PeerReader, PeerWriter>;

impl Dial {
    /// The transport the address's next dial should take after this one (see [`Utp::learn`]).
    pub fn learn(&self, worked: bool) -> Option<Transport> {
        self.utp
            .learn(self.transport, worked, self.utp_node.is_some())
    }
}

impl PeerStream {
    pub fn plain(raw: RawStream) -> PeerStream {
        PeerStream::new(raw, None, None, Vec::new())
    }

    fn new(
        raw: RawStream,
        encrypt: Option<Keystream>,
        decrypt: Option<Keystream>,
        received: Vec<u8>,
    ) -> PeerStream {
        let (inner_rd, inner_wr) = raw.into_split();
        Joined {
            rd: PeerReader {
                inner: inner_rd,
                decrypt,
                received,
                at: 0,
            },
            wr: PeerWriter {
                inner: inner_wr,
                encrypt,
                pending: Vec::new(),
                at: 0,
            },
        }
    }

    fn established(raw: RawStream, e: Established) -> PeerStream {
        PeerStream::new(raw, e.encrypt, e.decrypt, e.received)
    }

    /// The connection is uTP (not TCP).
    pub fn utp(&self) -> bool {
        self.rd.inner.transport() == Transport::Utp
    }

    /// The stream is RC4 both ways.
    pub fn encrypted(&self) -> bool {
        self.wr.encrypt.is_some()
    }
}

impl AsyncRead for PeerReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.at < me.received.len() {
            let n = (me.received.len() - me.at).min(buf.remaining());
            buf.put_slice(&me.received[me.at..me.at + n]);
            me.at += n;
            if me.at == me.received.len() {
                me.received = Vec::new();
                me.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut me.inner).poll_read(cx, buf))?;
        if let Some(k) = &mut me.decrypt {
            k.apply(&mut buf.filled_mut()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl PeerWriter {
    /// Writes what is pending; ready once nothing is.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.at < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.at += n;
        }
        self.pending.clear();
        self.at = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes up to [`ENCRYPT_CHUNK`] bytes of `bufs` once nothing is pending: encrypts them and
    /// starts writing them.
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        for b in bufs {
            let room = ENCRYPT_CHUNK - self.pending.len();
            self.pending.extend_from_slice(&b[..b.len().min(room)]);
            if self.pending.len() == ENCRYPT_CHUNK {
                break;
            }
        }
        let taken = self.pending.len();
        if let Some(k) = &mut self.encrypt {
            k.apply(&mut self.pending);
        }
        // Taken either way; what the socket does not take now goes out on the next call or flush.
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }
}

impl AsyncWrite for PeerWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.encrypt.is_none() {
            return Pin::new(&mut me.inner).poll_write(cx, buf);
        }
        me.poll_take(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.encrypt.is_none() {
            return Pin::new(&mut me.inner).poll_write_vectored(cx, bufs);
        }
        me.poll_take(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// A dialed connection, handshaken.
pub(crate) struct Opened {
    pub stream: PeerStream,
    pub theirs: Handshake,
    /// It took the encrypted handshake (whatever the stream then is).
    pub encrypted_handshake: bool,
}

/// How to reach a peer: the session's settings and what is known of the address.
pub(crate) struct Dial {
    /// Our listen address: outgoing TCP leaves from its IP when it is a specific one.
    pub local: SocketAddr,
    pub encryption: Encryption,
    /// The address took only the encrypted handshake (see [`Encryption::dial_ways_for`]).
    pub encrypt_first: bool,
    /// The uTP policy, and the transport this dial takes under it ([`Utp::dial_over`]).
    pub utp: Utp,
    pub transport: Transport,
    /// The session's uTP socket, if it has one.
    pub utp_node: Option<std::sync::Arc<UtpNode>>,
    pub timeout: Duration,
}

/// Dials `addr` over `dial.transport` and exchanges handshakes for `ours.info_hash`, each way the
/// encryption policy allows in turn, until one works. A connect that fails ends it (the address
/// does not answer there); so does a peer on another torrent.
pub(crate) async fn open(
    dial: &Dial,
    addr: SocketAddr,
    ours: &Handshake,
) -> anyhow::Result<Opened> {
    let mut last = None;
    for &way in dial.encryption.dial_ways_for(dial.encrypt_first) {
        let raw = connect(dial, addr).await?;
        match handshake_over(raw, ours, way, dial.timeout).await {
            Ok((stream, theirs)) => {
                return Ok(Opened {
                    stream,
                    theirs,
                    encrypted_handshake: matches!(way, Way::Encrypted(_)),
                })
            }
            Err(e) => {
                tracing::debug!(peer = %addr, transport = ?dial.transport, ?way, "handshake failed: {e}");
                if !worth_another_way(&e) {
                    return Err(e.into());
                }
                last = Some(e);
            }
        }
    }
    Err(last.expect("every policy dials at least one way").into())
}

/// A connection to `addr` over the dial's transport.
async fn connect(dial: &Dial, addr: SocketAddr) -> anyhow::Result<RawStream> {
    Ok(match (dial.transport, dial.utp_node.as_deref()) {
        (Transport::Utp, Some(node)) => RawStream::utp(
            node.connect(addr, UTP_CONNECT_TIMEOUT.min(dial.timeout))
                .await?,
        ),
        _ => RawStream::tcp(crate::peer::connect_from(dial.local, addr).await?),
    })
}

/// How long a uTP connect waits for the peer's answer: its SYN goes unanswered, not refused, where
/// nobody listens.
const UTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a failed handshake may work another way: not with a peer on another torrent.
pub(crate) fn worth_another_way(e: &HandshakeError) -> bool {
    !matches!(e, HandshakeError::WrongTorrent(_))
}

/// Exchanges handshakes on `tcp` one way: the encrypted handshake first (carrying ours) or not.
pub(crate) async fn handshake_over(
    mut raw: RawStream,
    ours: &Handshake,
    way: Way,
    timeout: Duration,
) -> Result<(PeerStream, Handshake), HandshakeError> {
    let mut stream = match way {
        Way::Plain => PeerStream::plain(raw),
        Way::Encrypted(offer) => {
            // Our BitTorrent handshake rides in the encrypted one (`IA`).
            let e =
                mse::initiate(&mut raw, &ours.info_hash, offer, &ours.to_bytes(), timeout).await?;
            PeerStream::established(raw, e)
        }
    };
    let theirs = match way {
        Way::Plain => handshake::initiate(&mut stream, ours, timeout).await?,
        Way::Encrypted(_) => {
            let theirs = read_handshake(&mut stream, timeout).await?;
            if theirs.info_hash != ours.info_hash {
                return Err(HandshakeError::WrongTorrent(theirs.info_hash));
            }
            theirs
        }
    };
    Ok((stream, theirs))
}

/// An incoming connection's stream and BitTorrent handshake, plain or under MSE: which, its first
/// 20 bytes tell. `torrents` are the info-hashes an encrypted handshake may name (a responder knows
/// the torrent only by a hash of it).
pub(crate) async fn accept(
    mut raw: RawStream,
    policy: Encryption,
    torrents: impl FnOnce() -> Vec<InfoHash>,
    timeout: Duration,
) -> anyhow::Result<(PeerStream, Handshake)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut first = [0u8; 20];
    tokio::time::timeout_at(deadline, raw.read_exact(&mut first))
        .await
        .map_err(|_| HandshakeError::Timeout)??;
    let plain = first[0] == 19 && first[1..] == handshake::PROTOCOL[..];
    let mut stream = if plain {
        if policy == Encryption::Require {
            anyhow::bail!("a plain handshake, and encryption is required");
        }
        PeerStream::new(raw, None, None, first.to_vec())
    } else {
        let Some((accept, prefer)) = policy.responds() else {
            anyhow::bail!("not a BitTorrent handshake (an encrypted one? encryption is off)");
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let lookup = |key: &[u8; 20]| {
            torrents()
                .into_iter()
                .find(|ih| mse::torrent_key(ih) == *key)
        };
        let (_, e) = mse::respond(&mut raw, &first, lookup, accept, prefer, left).await?;
        PeerStream::established(raw, e)
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let theirs = read_handshake(&mut stream, left).await?;
    Ok((stream, theirs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    const T: Duration = Duration::from_secs(5);

    fn ih() -> InfoHash {
        InfoHash([5; 20])
    }

    /// A listener taking one connection with `policy`, over TCP and uTP on the same port number
    /// (`tcp`, `utp`: which it listens on); returns whether it was encrypted, whether it was uTP
    /// and what it read after the handshakes (it answers with its handshake and `reply`).
    async fn listener_on(
        policy: Encryption,
        reply: &'static [u8],
        tcp: bool,
        utp: bool,
    ) -> (
        SocketAddr,
        tokio::task::JoinHandle<anyhow::Result<(bool, bool, Vec<u8>)>>,
    ) {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let (l, addr, node) = crate::listen::bind_both(any).await.unwrap();
        let node = utp.then(|| node.expect("the UDP port of the TCP one"));
        let l = tcp.then_some(l);
        let task = tokio::spawn(async move {
            loop {
                let raw = tokio::select! {
                    r = async { l.as_ref().unwrap().accept().await }, if l.is_some() => {
                        RawStream::tcp(r?.0)
                    }
                    r = async { node.as_ref().unwrap().accept().await }, if node.is_some() => {
                        RawStream::utp(r?.0)
                    }
                };
                let (mut s, theirs) = match accept(raw, policy, || vec![ih()], T).await {
                    Ok(x) => x,
                    // A refused way: the dialer may come back another way.
                    Err(_) => continue,
                };
                let ours =
                    Handshake::ours(theirs.info_hash, btorrent_proto::types::PeerId([2; 20]));
                s.write_all(&ours.to_bytes()).await?;
                s.write_all(reply).await?;
                s.flush().await?;
                let mut got = vec![0u8; 11];
                s.read_exact(&mut got).await?;
                return Ok((s.encrypted(), s.utp(), got));
            }
        });
        (addr, task)
    }

    async fn listener(
        policy: Encryption,
        reply: &'static [u8],
    ) -> (
        SocketAddr,
        tokio::task::JoinHandle<anyhow::Result<(bool, bool, Vec<u8>)>>,
    ) {
        listener_on(policy, reply, true, false).await
    }

    /// Dials `addr` under `policy` over `transport` (with a uTP socket of its own); whether the
    /// stream is encrypted, and whether it is uTP.
    async fn dial_with(
        addr: SocketAddr,
        policy: Encryption,
        transport: Transport,
    ) -> anyhow::Result<(bool, bool)> {
        let ours = Handshake::ours(ih(), btorrent_proto::types::PeerId([1; 20]));
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let node = UtpNode::try_bind(local).await.ok();
        let d = Dial {
            local,
            encryption: policy,
            encrypt_first: false,
            utp: Utp::Allow,
            transport,
            utp_node: node.map(std::sync::Arc::new),
            timeout: T,
        };
        let Opened {
            stream: mut s,
            theirs,
            ..
        } = open(&d, addr, &ours).await?;
        assert_eq!(theirs.info_hash, ih());
        let mut got = vec![0u8; 5];
        s.read_exact(&mut got).await?;
        assert_eq!(got, b"pong!");
        s.write_all(b"hello there").await?;
        s.flush().await?;
        Ok((s.encrypted(), s.utp()))
    }

    async fn dial(addr: SocketAddr, policy: Encryption) -> anyhow::Result<bool> {
        Ok(dial_with(addr, policy, Transport::Tcp).await?.0)
    }

    #[tokio::test]
    async fn either_transport_carries_either_handshake_and_a_dead_one_fails_the_dial() {
        for (policy, enc) in [(Encryption::Allow, false), (Encryption::Require, true)] {
            for (tcp, utp) in [(false, true), (true, false), (true, true)] {
                for over in [Transport::Tcp, Transport::Utp] {
                    let (addr, task) = listener_on(policy, b"pong!", tcp, utp).await;
                    let r = dial_with(addr, policy, over).await;
                    let listens = if over == Transport::Tcp { tcp } else { utp };
                    if !listens {
                        assert!(r.is_err(), "{over:?} dialed where nothing listens");
                        task.abort();
                        continue;
                    }
                    let over_utp = over == Transport::Utp;
                    assert_eq!(r.unwrap(), (enc, over_utp), "{policy:?} over {over:?}");
                    let (taker_enc, taker_utp, got) = task.await.unwrap().unwrap();
                    assert_eq!((taker_enc, taker_utp), (enc, over_utp));
                    assert_eq!(got, b"hello there");
                }
            }
        }
    }

    #[test]
    fn an_address_known_to_want_encryption_is_dialed_encrypted_first_where_the_policy_allows() {
        use Encryption::*;
        let enc = Way::Encrypted(Methods::BOTH);
        assert_eq!(Allow.dial_ways_for(false), &[Way::Plain, enc]);
        assert_eq!(Allow.dial_ways_for(true), &[enc, Way::Plain]);
        for p in [Off, Prefer, Require] {
            assert_eq!(p.dial_ways_for(true), p.dial_ways_for(false), "{p:?}");
        }
        assert_eq!(Off.dial_ways(), &[Way::Plain]);
    }

    #[tokio::test]
    async fn every_pair_of_policies_that_can_meet_does_and_encrypts_when_either_wants_it() {
        use Encryption::*;
        let cases = [
            (Off, Off, Some(false)),
            (Off, Allow, Some(false)),
            (Off, Prefer, Some(false)),
            (Off, Require, None),
            (Allow, Off, Some(false)),
            (Allow, Allow, Some(false)),
            (Allow, Require, Some(true)),
            (Prefer, Off, Some(false)),
            (Prefer, Allow, Some(true)),
            (Prefer, Require, Some(true)),
            (Require, Off, None),
            (Require, Allow, Some(true)),
            (Require, Prefer, Some(true)),
        ];
        for (dialer, taker, want) in cases {
            let (addr, task) = listener(taker, b"pong!").await;
            let r = dial(addr, dialer).await;
            match want {
                Some(enc) => {
                    assert_eq!(r.unwrap(), enc, "{dialer:?} -> {taker:?}");
                    let (taker_enc, _, got) = task.await.unwrap().unwrap();
                    assert_eq!((taker_enc, &got[..]), (enc, &b"hello there"[..]));
                }
                None => {
                    assert!(r.is_err(), "{dialer:?} -> {taker:?} should not meet");
                    task.abort();
                }
            }
        }
    }

    #[tokio::test]
    async fn an_encrypted_stream_shows_nothing_of_what_it_carries() {
        // A relay between dialer and taker keeps what crosses it.
        let (taker, task) = listener(Encryption::Require, b"pong!").await;
        let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_addr = relay.local_addr().unwrap();
        let seen = tokio::spawn(async move {
            let (mut a, _) = relay.accept().await.unwrap();
            let mut b = TcpStream::connect(taker).await.unwrap();
            let (mut ar, mut aw) = a.split();
            let (mut br, mut bw) = b.split();
            let mut wire = Vec::new();
            let mut ab = [0u8; 4096];
            let mut ba = [0u8; 4096];
            loop {
                tokio::select! {
                    r = ar.read(&mut ab) => match r { Ok(0) | Err(_) => break, Ok(n) => {
                        wire.extend_from_slice(&ab[..n]); bw.write_all(&ab[..n]).await.unwrap(); } },
                    r = br.read(&mut ba) => match r { Ok(0) | Err(_) => break, Ok(n) => {
                        wire.extend_from_slice(&ba[..n]); aw.write_all(&ba[..n]).await.unwrap(); } },
                }
            }
            wire
        });
        assert!(dial(relay_addr, Encryption::Require).await.unwrap());
        let (enc, _, got) = task.await.unwrap().unwrap();
        assert!(enc);
        assert_eq!(got, b"hello there");
        let wire = seen.await.unwrap();
        let shows = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
        assert!(wire.len() > 2 * 96);
        assert!(!shows(b"BitTorrent protocol") && !shows(&ih().0));
        assert!(!shows(b"hello there") && !shows(b"pong!"));
    }
}
