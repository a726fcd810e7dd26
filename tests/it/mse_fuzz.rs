//! The `mse_handshake` fuzz target's properties (`fuzz/src/lib.rs`), checked on stable Rust in
//! every test run: each side of the encrypted handshake facing a peer that computes its keys as a
//! real one does and then says what a mutated input says (pad lengths up to past 512, methods
//! provided and selected, lengths of `PadC`, `IA` and `PadD`, a false key, hash, torrent or
//! verification constant, a stream cut short): 1,500 of them, from a fixed seed so a failure
//! reproduces. `cargo +nightly fuzz run mse_handshake` is the coverage-guided run.

use crate::fuzz_checks as checks;
use crate::metainfo_fuzz::mutation_count;

/// An input for the responder under test (`side` even) that is true and whole: the peer's key
/// (its private part), `PadA`, `crypto_provide`, `PadC`, `IA`.
fn to_responder(side: u8, provide: u32, pad_a: usize, pad_c: usize, ia: &[u8]) -> Vec<u8> {
    let mut v = vec![side, 0];
    v.extend([0x42; 20]);
    v.extend((pad_a as u16).to_be_bytes());
    v.extend(vec![0x99; pad_a]);
    v.extend(provide.to_be_bytes());
    v.extend((pad_c as u16).to_be_bytes());
    v.extend((ia.len() as u16).to_be_bytes());
    v.extend(vec![0x77; pad_c]);
    v.extend(ia);
    v
}

/// An input for the initiator under test (`side` odd) that is true and whole: the peer's key,
/// `PadB`, `crypto_select`, `PadD`, then what it sends after the handshake.
fn to_initiator(side: u8, select: u32, pad_b: usize, pad_d: usize, after: &[u8]) -> Vec<u8> {
    let mut v = vec![side, 0];
    v.extend([0x24; 20]);
    v.extend((pad_b as u16).to_be_bytes());
    v.extend(vec![0x11; pad_b]);
    v.extend(select.to_be_bytes());
    v.extend((pad_d as u16).to_be_bytes());
    v.extend(vec![0x22; pad_d]);
    v.extend(after);
    v
}

#[test]
fn mutated_encrypted_handshakes_keep_both_sides_guarantees() {
    let handshake = b"\x13BitTorrent protocol\0\0\0\0\0\x10\0\x05";
    let seeds = vec![
        // RC4 preferred and provided; plaintext preferred (bit 8) and only it provided.
        to_responder(0, 3, 16, 4, handshake),
        to_responder(8, 1, 0, 0, handshake),
        // RC4 only accepted (bits 1-2 = 1), a pad of exactly 512 each way.
        to_responder(2, 2, 512, 512, b"x"),
        // The initiator offering both, RC4 selected, then a message; plaintext selected.
        to_initiator(1, 2, 8, 3, b"\0\0\0\x01\x02"),
        to_initiator(1, 1, 0, 0, b"hello"),
        to_initiator(3, 2, 512, 512, b""),
    ];
    // The seeds are true and whole handshakes, and they succeed.
    for s in &seeds {
        assert!(checks::mse_handshake(s), "seed {:?}", &s[..2]);
    }
    // Each lie alone is refused.
    for lie in [1u8, 2, 4, 8] {
        let mut s = seeds[0].clone();
        s[1] = lie;
        assert!(
            !checks::mse_handshake(&s),
            "lie {lie} taken by the responder"
        );
    }
    // What the check itself must get right: a `PadA` past 512 bytes leaves the responder no
    // synchronisation (refused, not a true handshake refused), and a false verification constant
    // stays false when the input runs out where it is read (not the zeros of a true one).
    assert!(!checks::mse_handshake(&to_responder(0, 3, 550, 0, b"x")));
    let mut vc_lie_at_the_end = to_responder(0, 3, 0, 0, b"");
    vc_lie_at_the_end[1] = 8;
    assert!(!checks::mse_handshake(&vc_lie_at_the_end));
    let mut no_common = seeds[2].clone();
    no_common[2 + 20 + 2 + 512 + 3] = 1; // provides plaintext to a responder of RC4 alone
    assert!(!checks::mse_handshake(&no_common));

    // A fixed number, not a time budget: each costs a key exchange (about 1.5 ms in a debug build,
    // several on a busy machine).
    let (done, accepted) = mutation_count(&seeds, 1_500, 0x4D53_45F0, checks::mse_handshake);
    eprintln!("{done} mutated encrypted handshakes, {accepted} completed");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}
