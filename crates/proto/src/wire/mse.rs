//! Message stream encryption (MSE, "protocol encryption"): the obfuscated handshake most clients
//! speak before the BitTorrent one, and the RC4 streams it can set up.
//!
//! The exchange, initiator A and responder B (`HASH` is SHA-1, `SKEY` the info-hash):
//!
//! 1. A → B: `Ya`, `PadA`. B → A: `Yb`, `PadB`. `Y` are 768-bit Diffie-Hellman public keys
//!    (generator 2, the 768-bit prime below), each pad 0-512 random bytes. Both compute the secret `S`.
//! 2. A → B: `HASH("req1", S)`, `HASH("req2", SKEY) xor HASH("req3", S)`, then under RC4 keyed
//!    `HASH("keyA", S, SKEY)`: `VC` (8 zero bytes), `crypto_provide` (4 bytes), `len(PadC)`, `PadC`,
//!    `len(IA)`, `IA` (the initial payload: our BitTorrent handshake). B finds the first hash after
//!    `PadA` to synchronise, and the torrent from the second.
//! 3. B → A, under RC4 keyed `HASH("keyB", S, SKEY)`: `VC`, `crypto_select`, `len(PadD)`, `PadD`. A
//!    finds the encrypted `VC` after `PadB` to synchronise.
//!
//! After that, each direction is RC4 (its stream continuing) when `crypto_select` is RC4, or plain
//! bytes when it is plaintext; either way nothing on the wire shows a BitTorrent handshake. Both
//! keystreams skip their first 1,024 bytes. Everything here works on any `AsyncRead + AsyncWrite`;
//! which methods to offer or accept is the caller's policy.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use num_bigint::BigUint;
use rand::{Rng, RngCore};
use rc4::{consts::U20, KeyInit, Rc4, StreamCipher};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::types::InfoHash;

/// The 768-bit prime of the key exchange, big-endian (MSE's own: not the Oakley group 1 prime it
/// shares its first 720 bits with).
const PRIME: [u8; KEY_LEN] = hex_literal(
    b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
);
/// Bytes of a public key (and of the secret): 768 bits.
pub const KEY_LEN: usize = 96;
/// Most bytes of any pad.
pub const MAX_PAD: usize = 512;
/// The verification constant.
const VC: [u8; 8] = [0; 8];
/// `crypto_provide` / `crypto_select` bits.
const PLAINTEXT_BIT: u32 = 0x01;
const RC4_BIT: u32 = 0x02;
/// Keystream bytes thrown away before use (the weak start of RC4).
const DISCARD: usize = 1024;
/// Bits of our private keys (the spec asks for at least 128).
const PRIVATE_BYTES: usize = 20;

const fn hex_literal(s: &[u8; 2 * KEY_LEN]) -> [u8; KEY_LEN] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let mut out = [0u8; KEY_LEN];
    let mut i = 0;
    while i < KEY_LEN {
        out[i] = nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

/// What the stream carries after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crypto {
    Plaintext,
    Rc4,
}

impl Crypto {
    const ALL: [Crypto; 2] = [Crypto::Plaintext, Crypto::Rc4];

    /// Its bit in `crypto_provide` and `crypto_select`.
    fn bit(self) -> u32 {
        match self {
            Crypto::Plaintext => PLAINTEXT_BIT,
            Crypto::Rc4 => RC4_BIT,
        }
    }
}

/// A set of methods: what an initiator provides, or what a responder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    pub plaintext: bool,
    pub rc4: bool,
}

impl Methods {
    pub const RC4_ONLY: Methods = Methods {
        plaintext: false,
        rc4: true,
    };
    pub const BOTH: Methods = Methods {
        plaintext: true,
        rc4: true,
    };

    fn bits(self) -> u32 {
        Crypto::ALL
            .into_iter()
            .filter(|&c| self.has(c))
            .map(Crypto::bit)
            .sum()
    }

    fn from_bits(bits: u32) -> Methods {
        Methods {
            plaintext: bits & PLAINTEXT_BIT != 0,
            rc4: bits & RC4_BIT != 0,
        }
    }

    fn has(self, c: Crypto) -> bool {
        match c {
            Crypto::Plaintext => self.plaintext,
            Crypto::Rc4 => self.rc4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MseError {
    #[error("encrypted handshake timed out")]
    Timeout,
    #[error("connection closed during the encrypted handshake: {0}")]
    Io(#[from] io::Error),
    #[error("the peer's public key is out of range")]
    BadKey,
    #[error("no synchronisation within the pad: the peer does not speak the encrypted handshake")]
    NoSync,
    #[error("the peer asks for a torrent we do not have")]
    UnknownTorrent,
    #[error("bad verification constant")]
    BadVc,
    #[error("pad longer than 512 bytes")]
    BadPad,
    #[error("no method in common: the peer provides {0:#x}")]
    NoCommonMethod(u32),
    #[error("the peer selected {0:#x}, which we did not provide")]
    BadSelect(u32),
}

/// One direction's RC4 keystream, its first 1,024 bytes already skipped.
pub struct Keystream(Rc4<U20>);

impl Keystream {
    fn new(name: &[u8; 4], secret: &[u8; KEY_LEN], skey: &InfoHash) -> Keystream {
        let key = hash(&[name, secret, &skey.0]);
        let mut rc4 = Rc4::<U20>::new(&key.into());
        rc4.apply_keystream(&mut [0u8; DISCARD]);
        Keystream(rc4)
    }

    /// Encrypts or decrypts `data` in place, continuing the stream.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

impl std::fmt::Debug for Keystream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keystream")
    }
}

/// A finished handshake: the method, the keystreams of the two directions (`None` when plaintext
/// was selected), and the stream bytes that were read past the handshake (already decrypted; for
/// the responder, the initiator's `IA` first).
#[derive(Debug)]
pub struct Established {
    pub crypto: Crypto,
    pub encrypt: Option<Keystream>,
    pub decrypt: Option<Keystream>,
    pub received: Vec<u8>,
}

fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn xor(a: [u8; 20], b: [u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// `HASH("req2", SKEY)`: what a responder looks its torrents up by.
pub fn torrent_key(info_hash: &InfoHash) -> [u8; 20] {
    hash(&[b"req2", &info_hash.0])
}

fn prime() -> &'static BigUint {
    static P: OnceLock<BigUint> = OnceLock::new();
    P.get_or_init(|| BigUint::from_bytes_be(&PRIME))
}

fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let b = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    out[KEY_LEN - b.len()..].copy_from_slice(&b);
    out
}

/// A Diffie-Hellman key pair.
struct KeyPair {
    private: BigUint,
    public: [u8; KEY_LEN],
}

impl KeyPair {
    fn generate() -> KeyPair {
        let mut x = [0u8; PRIVATE_BYTES];
        rand::thread_rng().fill_bytes(&mut x);
        let private = BigUint::from_bytes_be(&x);
        let public = to_key_bytes(&BigUint::from(2u8).modpow(&private, prime()));
        KeyPair { private, public }
    }

    /// The shared secret with the peer's public key; keys of 0, 1 or p - 1 and up are refused.
    fn secret(&self, theirs: &[u8]) -> Result<[u8; KEY_LEN], MseError> {
        let y = BigUint::from_bytes_be(theirs);
        let one = BigUint::from(1u8);
        if y <= one || y >= prime() - &one {
            return Err(MseError::BadKey);
        }
        Ok(to_key_bytes(&y.modpow(&self.private, prime())))
    }
}

fn random_pad(out: &mut Vec<u8>) {
    let mut rng = rand::thread_rng();
    let mut pad = vec![0u8; rng.gen_range(0..=MAX_PAD)];
    rng.fill_bytes(&mut pad);
    out.extend_from_slice(&pad);
}

/// Reads until `inbox` holds at least `n` bytes.
async fn fill<S: AsyncRead + Unpin>(s: &mut S, inbox: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let mut chunk = [0u8; 1024];
    while inbox.len() < n {
        let k = s.read(&mut chunk).await?;
        if k == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        inbox.extend_from_slice(&chunk[..k]);
    }
    Ok(())
}

/// Reads until `pattern` shows in `inbox[from..]`, no further than `from + MAX_PAD + pattern.len()`;
/// returns the index just past it.
async fn sync<S: AsyncRead + Unpin>(
    s: &mut S,
    inbox: &mut Vec<u8>,
    from: usize,
    pattern: &[u8],
) -> Result<usize, MseError> {
    let limit = from + MAX_PAD + pattern.len();
    loop {
        let end = inbox.len().min(limit);
        if let Some(i) = inbox[from..end]
            .windows(pattern.len())
            .position(|w| w == pattern)
        {
            return Ok(from + i + pattern.len());
        }
        if inbox.len() >= limit {
            return Err(MseError::NoSync);
        }
        let want = inbox.len() + 1;
        fill(s, inbox, want).await?;
    }
}

async fn within<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T, MseError>>,
) -> Result<T, MseError> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| MseError::Timeout)?
}

/// The initiator's side, for the torrent `skey`: provides `offer`, sends `initial` (our BitTorrent
/// handshake) as `IA`, and returns once the responder's selection is read.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    skey: &InfoHash,
    offer: Methods,
    initial: &[u8],
    timeout: Duration,
) -> Result<Established, MseError> {
    within(timeout, async {
        let keys = KeyPair::generate();
        let mut out = keys.public.to_vec();
        random_pad(&mut out);
        s.write_all(&out).await?;
        let mut inbox = Vec::with_capacity(KEY_LEN + MAX_PAD + 64);
        fill(s, &mut inbox, KEY_LEN).await?;
        let secret = keys.secret(&inbox[..KEY_LEN])?;
        let mut encrypt = Keystream::new(b"keyA", &secret, skey);
        let mut decrypt = Keystream::new(b"keyB", &secret, skey);

        out.clear();
        out.extend_from_slice(&hash(&[b"req1", &secret]));
        out.extend_from_slice(&xor(torrent_key(skey), hash(&[b"req3", &secret])));
        let sealed = out.len();
        out.extend_from_slice(&VC);
        out.extend_from_slice(&offer.bits().to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes()); // no PadC
        let ia_len = u16::try_from(initial.len()).expect("IA under 64 KiB");
        out.extend_from_slice(&ia_len.to_be_bytes());
        out.extend_from_slice(initial);
        encrypt.apply(&mut out[sealed..]);
        s.write_all(&out).await?;

        // B's VC, as it shows on the wire: the first 8 bytes of its keystream.
        let mut vc = VC;
        Keystream::new(b"keyB", &secret, skey).apply(&mut vc);
        let mut at = sync(s, &mut inbox, KEY_LEN, &vc).await?;
        decrypt.apply(&mut [0u8; 8]);
        fill(s, &mut inbox, at + 6).await?;
        decrypt.apply(&mut inbox[at..at + 6]);
        let select = u32::from_be_bytes(inbox[at..at + 4].try_into().unwrap());
        let pad = u16::from_be_bytes([inbox[at + 4], inbox[at + 5]]) as usize;
        at += 6;
        if pad > MAX_PAD {
            return Err(MseError::BadPad);
        }
        fill(s, &mut inbox, at + pad).await?;
        decrypt.apply(&mut inbox[at..at + pad]);
        at += pad;
        let crypto = Crypto::ALL
            .into_iter()
            .find(|&c| c.bit() == select && offer.has(c))
            .ok_or(MseError::BadSelect(select))?;
        Ok(finish(crypto, encrypt, decrypt, inbox.split_off(at)))
    })
    .await
}

fn finish(
    crypto: Crypto,
    encrypt: Keystream,
    mut decrypt: Keystream,
    mut received: Vec<u8>,
) -> Established {
    match crypto {
        Crypto::Plaintext => Established {
            crypto,
            encrypt: None,
            decrypt: None,
            received,
        },
        Crypto::Rc4 => {
            decrypt.apply(&mut received);
            Established {
                crypto,
                encrypt: Some(encrypt),
                decrypt: Some(decrypt),
                received,
            }
        }
    }
}

/// The responder's side. `first` holds the bytes of the stream already read (the start of `Ya`);
/// `lookup` names the torrent whose [`torrent_key`] the initiator sent; of the methods the
/// initiator provides and `accept` allows, `prefer` is selected when it can be. Returns the
/// torrent and the stream, whose `received` starts with the initiator's `IA`.
pub async fn respond<S, F>(
    s: &mut S,
    first: &[u8],
    lookup: F,
    accept: Methods,
    prefer: Crypto,
    timeout: Duration,
) -> Result<(InfoHash, Established), MseError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&[u8; 20]) -> Option<InfoHash>,
{
    within(timeout, async {
        let mut inbox = first.to_vec();
        fill(s, &mut inbox, KEY_LEN).await?;
        let keys = KeyPair::generate();
        let secret = keys.secret(&inbox[..KEY_LEN])?;
        let mut out = keys.public.to_vec();
        random_pad(&mut out);
        s.write_all(&out).await?;

        let mut at = sync(s, &mut inbox, KEY_LEN, &hash(&[b"req1", &secret])).await?;
        fill(s, &mut inbox, at + 20).await?;
        let theirs: [u8; 20] = inbox[at..at + 20].try_into().unwrap();
        let skey =
            lookup(&xor(theirs, hash(&[b"req3", &secret]))).ok_or(MseError::UnknownTorrent)?;
        at += 20;
        let mut decrypt = Keystream::new(b"keyA", &secret, &skey);
        let mut encrypt = Keystream::new(b"keyB", &secret, &skey);

        fill(s, &mut inbox, at + 14).await?;
        decrypt.apply(&mut inbox[at..at + 14]);
        if inbox[at..at + 8] != VC {
            return Err(MseError::BadVc);
        }
        let provide = u32::from_be_bytes(inbox[at + 8..at + 12].try_into().unwrap());
        let pad = u16::from_be_bytes([inbox[at + 12], inbox[at + 13]]) as usize;
        at += 14;
        if pad > MAX_PAD {
            return Err(MseError::BadPad);
        }
        fill(s, &mut inbox, at + pad + 2).await?;
        decrypt.apply(&mut inbox[at..at + pad + 2]);
        at += pad;
        let ia_len = u16::from_be_bytes([inbox[at], inbox[at + 1]]) as usize;
        at += 2;
        fill(s, &mut inbox, at + ia_len).await?;
        decrypt.apply(&mut inbox[at..at + ia_len]);

        let provided = Methods::from_bits(provide);
        let other = match prefer {
            Crypto::Plaintext => Crypto::Rc4,
            Crypto::Rc4 => Crypto::Plaintext,
        };
        let crypto = [prefer, other]
            .into_iter()
            .find(|&c| provided.has(c) && accept.has(c))
            .ok_or(MseError::NoCommonMethod(provide))?;

        let mut reply = VC.to_vec();
        reply.extend_from_slice(&crypto.bit().to_be_bytes());
        reply.extend_from_slice(&0u16.to_be_bytes()); // no PadD
        encrypt.apply(&mut reply);
        s.write_all(&reply).await?;

        // IA was under RC4 whatever is selected; what follows it is in the selected method.
        let ia = inbox[at..at + ia_len].to_vec();
        let mut done = finish(crypto, encrypt, decrypt, inbox.split_off(at + ia_len));
        done.received.splice(0..0, ia);
        Ok((skey, done))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn ih() -> InfoHash {
        InfoHash([7; 20])
    }

    /// Runs both sides over an in-memory pipe (B's end closed when it is done, as a socket would
    /// be); returns A's and B's results.
    async fn pair(
        offer: Methods,
        accept: Methods,
        prefer: Crypto,
    ) -> (
        Result<Established, MseError>,
        Result<(InfoHash, Established), MseError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let responder = tokio::spawn(async move {
            let r = respond(
                &mut b,
                &[],
                |k| (*k == torrent_key(&ih())).then(ih),
                accept,
                prefer,
                T,
            )
            .await;
            drop(b);
            r
        });
        let r = initiate(&mut a, &ih(), offer, b"hello, B", T).await;
        let rb = responder.await.unwrap();
        (r, rb)
    }

    #[test]
    fn the_prime_is_mse_s_768_bit_one() {
        assert_eq!(prime().bits(), 768);
        assert_eq!(&PRIME[..8], &[0xFF; 8]);
        assert_eq!(&PRIME[87..], &[0x21, 0, 0, 0, 0, 0, 0x09, 0x05, 0x63]);
    }

    #[test]
    fn both_sides_reach_the_same_secret_and_bad_keys_are_refused() {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        assert_eq!(a.secret(&b.public).unwrap(), b.secret(&a.public).unwrap());
        assert!(matches!(a.secret(&[0u8; KEY_LEN]), Err(MseError::BadKey)));
        let mut one = [0u8; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        assert!(matches!(a.secret(&one), Err(MseError::BadKey)));
        assert!(matches!(a.secret(&PRIME), Err(MseError::BadKey)));
    }

    #[tokio::test]
    async fn rc4_is_selected_when_preferred_and_both_directions_decrypt() {
        let (a, b) = pair(Methods::BOTH, Methods::BOTH, Crypto::Rc4).await;
        let mut a = a.unwrap();
        let (skey, mut b) = b.unwrap();
        assert_eq!(skey, ih());
        assert_eq!((a.crypto, b.crypto), (Crypto::Rc4, Crypto::Rc4));
        assert_eq!(b.received, b"hello, B", "IA reaches B in the clear");
        assert!(a.received.is_empty());
        // Each side's encryption is the other's decryption, in both directions and continuing.
        for msg in [&b"a piece of data"[..], b"and another"] {
            let mut wire = msg.to_vec();
            a.encrypt.as_mut().unwrap().apply(&mut wire);
            assert_ne!(wire, msg);
            b.decrypt.as_mut().unwrap().apply(&mut wire);
            assert_eq!(wire, msg);
            b.encrypt.as_mut().unwrap().apply(&mut wire);
            a.decrypt.as_mut().unwrap().apply(&mut wire);
            assert_eq!(wire, msg);
        }
    }

    #[tokio::test]
    async fn plaintext_is_selected_when_both_sides_allow_it_and_the_responder_prefers_it() {
        let (a, b) = pair(Methods::BOTH, Methods::BOTH, Crypto::Plaintext).await;
        let (a, (_, b)) = (a.unwrap(), b.unwrap());
        assert_eq!((a.crypto, b.crypto), (Crypto::Plaintext, Crypto::Plaintext));
        assert!(a.encrypt.is_none() && b.decrypt.is_none());
        assert_eq!(b.received, b"hello, B");
        // Preferred plaintext, but A provides RC4 alone: RC4.
        let (a, _) = pair(Methods::RC4_ONLY, Methods::BOTH, Crypto::Plaintext).await;
        assert_eq!(a.unwrap().crypto, Crypto::Rc4);
    }

    #[tokio::test]
    async fn a_responder_that_requires_rc4_refuses_plaintext_only() {
        let offer = Methods {
            plaintext: true,
            rc4: false,
        };
        let (a, b) = pair(offer, Methods::RC4_ONLY, Crypto::Rc4).await;
        assert!(matches!(b, Err(MseError::NoCommonMethod(1))), "{b:?}");
        assert!(a.is_err(), "A learns by the connection closing");
    }

    #[tokio::test]
    async fn an_unknown_torrent_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let responder = tokio::spawn(async move {
            respond(&mut b, &[], |_| None, Methods::BOTH, Crypto::Rc4, T).await
        });
        let r = initiate(&mut a, &ih(), Methods::BOTH, b"x", T).await;
        assert!(matches!(
            responder.await.unwrap(),
            Err(MseError::UnknownTorrent)
        ));
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn a_plain_handshake_finds_no_synchronisation() {
        // A peer sending a plain BitTorrent handshake and then waiting: no req1 hash within the pad.
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let plain = crate::wire::Handshake::ours(ih(), crate::types::PeerId([1; 20])).to_bytes();
        a.write_all(&plain).await.unwrap();
        a.write_all(&[0u8; 600]).await.unwrap();
        let r = respond(&mut b, &[], |_| Some(ih()), Methods::BOTH, Crypto::Rc4, T).await;
        assert!(matches!(r, Err(MseError::NoSync)), "{r:?}");
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (mut a, _b) = tokio::io::duplex(64 * 1024);
        let r = initiate(&mut a, &ih(), Methods::BOTH, b"", Duration::from_millis(50)).await;
        assert!(matches!(r, Err(MseError::Timeout)));
    }

    /// What a hostile initiator puts after the synchronisation hashes (encrypted as it should be).
    enum Lie {
        Vc,
        PadC(u16),
        Provide(u32),
        /// `len(IA)` says this much, then the connection closes.
        IaLen(u16),
    }

    /// A hostile initiator: the key exchange and hashes as they should be, then `lie`.
    async fn lying_initiator(s: &mut tokio::io::DuplexStream, lie: Lie) {
        let keys = KeyPair::generate();
        s.write_all(&keys.public).await.unwrap();
        let mut inbox = Vec::new();
        fill(s, &mut inbox, KEY_LEN).await.unwrap();
        let secret = keys.secret(&inbox[..KEY_LEN]).unwrap();
        let mut encrypt = Keystream::new(b"keyA", &secret, &ih());
        let mut out = hash(&[b"req1", &secret]).to_vec();
        out.extend_from_slice(&xor(torrent_key(&ih()), hash(&[b"req3", &secret])));
        let mut sealed = match lie {
            Lie::Vc => vec![1u8; 8],
            _ => VC.to_vec(),
        };
        let provide = if let Lie::Provide(p) = lie {
            p
        } else {
            RC4_BIT
        };
        sealed.extend_from_slice(&provide.to_be_bytes());
        let pad = if let Lie::PadC(n) = lie { n } else { 0 };
        sealed.extend_from_slice(&pad.to_be_bytes());
        sealed.extend(std::iter::repeat_n(0u8, usize::from(pad).min(2048)));
        let ia = if let Lie::IaLen(n) = lie { n } else { 0 };
        sealed.extend_from_slice(&ia.to_be_bytes());
        encrypt.apply(&mut sealed);
        out.extend_from_slice(&sealed);
        let _ = s.write_all(&out).await;
    }

    #[tokio::test]
    async fn a_responder_refuses_a_hostile_initiator_s_fields() {
        for (lie, what) in [
            (Lie::Vc, "bad verification constant"),
            (Lie::PadC(513), "pad longer than 512 bytes"),
            (Lie::Provide(0), "no method in common"),
            (Lie::Provide(0x0c), "no method in common"),
            (Lie::IaLen(u16::MAX), "connection closed"),
        ] {
            let (mut a, mut b) = tokio::io::duplex(64 * 1024);
            let liar = tokio::spawn(async move {
                lying_initiator(&mut a, lie).await;
                // Its end closes (the IA it announced never comes).
            });
            let r = respond(&mut b, &[], |_| Some(ih()), Methods::BOTH, Crypto::Rc4, T).await;
            let e = r.expect_err(what).to_string();
            assert!(e.contains(what), "{e}");
            liar.await.unwrap();
        }
    }

    /// A hostile responder: the key exchange as it should be, then `select` and `pad` as `PadD`'s
    /// length, or (`vc: false`) 600 bytes of noise and no VC.
    async fn lying_responder(s: &mut tokio::io::DuplexStream, select: u32, pad: u16, vc: bool) {
        let keys = KeyPair::generate();
        let mut inbox = Vec::new();
        fill(s, &mut inbox, KEY_LEN).await.unwrap();
        s.write_all(&keys.public).await.unwrap();
        let secret = keys.secret(&inbox[..KEY_LEN]).unwrap();
        if !vc {
            let _ = s.write_all(&[7u8; 600]).await;
            return;
        }
        let mut reply = VC.to_vec();
        reply.extend_from_slice(&select.to_be_bytes());
        reply.extend_from_slice(&pad.to_be_bytes());
        Keystream::new(b"keyB", &secret, &ih()).apply(&mut reply);
        let _ = s.write_all(&reply).await;
    }

    #[tokio::test]
    async fn an_initiator_refuses_a_hostile_responder_s_fields() {
        for (select, pad, vc, what) in [
            (PLAINTEXT_BIT, 0, true, "which we did not provide"),
            (PLAINTEXT_BIT | RC4_BIT, 0, true, "which we did not provide"),
            (RC4_BIT, 600, true, "pad longer than 512 bytes"),
            (RC4_BIT, 0, false, "no synchronisation"),
        ] {
            let (mut a, mut b) = tokio::io::duplex(64 * 1024);
            let liar = tokio::spawn(async move {
                lying_responder(&mut b, select, pad, vc).await;
                b
            });
            let r = initiate(&mut a, &ih(), Methods::RC4_ONLY, b"hi", T).await;
            let e = r.expect_err(what).to_string();
            assert!(e.contains(what), "{e}");
            drop(liar.await.unwrap());
        }
    }

    #[tokio::test]
    async fn noise_is_refused_without_a_panic_whatever_its_length() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let len = rng.gen_range(0..1500);
            let noise: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let (mut a, mut b) = tokio::io::duplex(64 * 1024);
            a.write_all(&noise).await.unwrap();
            drop(a);
            let r = respond(&mut b, &[], |_| Some(ih()), Methods::BOTH, Crypto::Rc4, T).await;
            assert!(r.is_err(), "{len} bytes of noise accepted");
        }
    }
}
