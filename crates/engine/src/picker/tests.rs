//! The picker's unit tests: piece states, endgame, suspect pieces, the memory budget, ranks and
//! sequential mode.

use super::pick::Asking;
use super::*;

// 4 pieces of 2 blocks, the last piece one short block.
fn geo() -> Geometry {
    Geometry::new(4, 32768, 32768 * 3 + 1000)
}

fn all() -> Bitfield {
    Bitfield::full(4)
}

/// One range of blocks, as the padding map lists them.
fn one(r: std::ops::Range<u32>) -> Vec<std::ops::Range<u32>> {
    vec![r]
}

fn data(b: &BlockRef) -> Vec<u8> {
    vec![b.index as u8; b.length as usize]
}

#[test]
fn picks_every_block_once_then_completes() {
    let mut p = Picker::new(geo(), 1 << 30);
    let mut out = Vec::new();
    assert_eq!(p.pick(1, &all(), 0, 100, &mut out), 7);
    let mut seen = out.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);
    assert!(out.iter().any(|b| b.index == 3 && b.length == 1000));
    let mut done = Vec::new();
    for b in &out {
        if let BlockResult::Complete { index, buf, .. } = p.on_block(1, *b, &data(b)) {
            let len = p.geometry().piece_len(index) as usize;
            assert!(buf[..len].iter().all(|&x| x == index as u8));
            assert_eq!(
                p.on_hash_done(index, true, Some(buf), &[1]),
                HashVerdict::Good
            );
            done.push(index);
        }
    }
    done.sort();
    assert_eq!(done, vec![0, 1, 2, 3]);
    assert!(p.is_complete());
}

#[test]
fn a_withdrawn_piece_is_missing_again_and_picked() {
    let mut p = Picker::new(geo(), 1 << 30);
    for i in 0..4 {
        p.mark_have(i);
    }
    assert!(p.is_complete());
    assert!(p.withdraw(2));
    assert!(!p.withdraw(2), "only a piece we have is withdrawn");
    assert!(!p.is_complete() && !p.have().get(2));
    assert_eq!(p.state(2), PieceState::Missing);
    assert!(p.interesting(&all()));
    let mut out = Vec::new();
    assert_eq!(p.pick(1, &all(), 0, 100, &mut out), 2);
    assert!(out.iter().all(|b| b.index == 2));
}

#[test]
fn rarest_first_after_random_start() {
    let mut p = Picker::new(Geometry::new(8, 16384, 16384 * 8), 1 << 30);
    // Past the random phase.
    for i in 0..RANDOM_FIRST as u32 {
        p.mark_have(i);
    }
    let mut common = Bitfield::full(8);
    common.clear(0);
    p.add_availability(&common);
    p.add_availability(&common);
    let mut rare = Bitfield::new(8);
    rare.set(6);
    p.add_availability(&rare);
    // Piece 6 is held by 3 peers, 4, 5, 7 by 2: one of those comes first.
    let mut out = Vec::new();
    p.pick(9, &Bitfield::full(8), 0, 1, &mut out);
    assert_ne!(out[0].index, 6);
    assert!(out[0].index >= 4);
}

#[test]
fn released_blocks_go_to_another_peer() {
    let mut p = Picker::new(geo(), 1 << 30);
    let mut a = Vec::new();
    p.pick(1, &all(), 0, 3, &mut a);
    for b in &a {
        p.release(1, *b);
    }
    let mut b = Vec::new();
    p.pick(2, &all(), 0, 3, &mut b);
    assert_eq!(a, b);
}

#[test]
fn endgame_duplicates_and_cancels() {
    let mut p = Picker::new(geo(), 1 << 30);
    p.set_endgame_late(Duration::ZERO);
    p.add_availability(&all());
    let mut a = Vec::new();
    p.pick(1, &all(), 0, 100, &mut a);
    let mut b = Vec::new();
    assert_eq!(
        p.pick(2, &all(), 0, 100, &mut b),
        1,
        "one duplicate per call"
    );
    let blk = b[0];
    assert_eq!(blk, a[0], "the longest outstanding block");
    match p.on_block(2, blk, &data(&blk)) {
        BlockResult::Stored { cancel } | BlockResult::Complete { cancel, .. } => {
            assert_eq!(cancel, vec![1])
        }
        BlockResult::NotNeeded => panic!("should store"),
    }
    assert!(matches!(
        p.on_block(1, blk, &data(&blk)),
        BlockResult::NotNeeded
    ));
}

#[test]
fn endgame_waits_until_every_block_is_requested() {
    let mut p = Picker::new(geo(), 1 << 30);
    p.set_endgame_late(Duration::ZERO);
    p.add_availability(&all());
    let mut only0 = Bitfield::new(4);
    only0.set(0);
    // Peer 1 requests piece 0 whole; pieces 1-3 are still to start, by peers that have them.
    let mut a = Vec::new();
    assert_eq!(p.pick(1, &only0, 0, 100, &mut a), 2);
    let mut b = Vec::new();
    assert_eq!(
        p.pick(2, &only0, 0, 100, &mut b),
        0,
        "not endgame: pieces left"
    );
    // Peer 3 starts another piece with one block of it: free blocks remain, still no endgame.
    let mut c = Vec::new();
    let mut rest = all();
    rest.clear(0);
    assert_eq!(p.pick(3, &rest, 0, 1, &mut c), 1);
    assert_eq!(
        p.pick(2, &only0, 0, 100, &mut b),
        0,
        "not endgame: free blocks"
    );
    p.pick(3, &rest, 1, 100, &mut c);
    // Every block requested now: an idle peer duplicates one, a busy one does not.
    assert_eq!(p.pick(4, &all(), ENDGAME_IDLE, 100, &mut b), 0);
    assert_eq!(p.pick(2, &only0, 0, 100, &mut b), 1);
    assert_eq!(p.pick(2, &only0, 1, 100, &mut b), 1);
    // Each block has at most ENDGAME_DUPLICATES extra requesters.
    let mut d = Vec::new();
    for peer in 10..20 {
        p.pick(peer, &only0, 0, 100, &mut d);
    }
    assert_eq!(d.len(), 2 * (ENDGAME_DUPLICATES - 1));
}

#[test]
fn endgame_leaves_young_requests_alone() {
    let mut p = Picker::new(geo(), 1 << 30);
    p.add_availability(&all());
    let mut a = Vec::new();
    p.pick(1, &all(), 0, 100, &mut a);
    let mut b = Vec::new();
    assert_eq!(p.pick(2, &all(), 0, 100, &mut b), 0, "requested just now");
    p.set_endgame_late(Duration::ZERO);
    assert_eq!(p.pick(2, &all(), 0, 100, &mut b), 1);
}

#[test]
fn endgame_counts_only_pieces_someone_has() {
    let mut p = Picker::new(geo(), 1 << 30);
    p.set_endgame_late(Duration::ZERO);
    let mut only0 = Bitfield::new(4);
    only0.set(0);
    p.add_availability(&only0);
    let mut a = Vec::new();
    p.pick(1, &only0, 0, 100, &mut a);
    // Pieces 1-3 are missing but no connected peer has them: piece 0 is the whole endgame.
    let mut b = Vec::new();
    assert_eq!(p.pick(2, &only0, 0, 100, &mut b), 1);
}

#[test]
fn bad_piece_from_one_peer_names_it_and_mixed_makes_suspect() {
    let mut p = Picker::new(geo(), 1 << 30);
    let mut only0 = Bitfield::new(4);
    only0.set(0);
    let mut a = Vec::new();
    p.pick(1, &only0, 0, 1, &mut a);
    let mut b = Vec::new();
    p.pick(2, &only0, 0, 1, &mut b);
    p.on_block(1, a[0], &data(&a[0]));
    let BlockResult::Complete {
        index,
        buf,
        contributors,
        ..
    } = p.on_block(2, b[0], &data(&b[0]))
    else {
        panic!("complete")
    };
    assert_eq!(
        p.on_hash_done(index, false, Some(buf), &contributors),
        HashVerdict::BadMixed
    );
    // Suspect now: never given to a snubbed peer; the first other peer to take it gets it alone.
    let mut snubbed = Vec::new();
    let none = Duration::ZERO;
    assert_eq!(p.pick_paced(5, &only0, 0, 1, none, false, &mut snubbed), 0);
    let mut c = Vec::new();
    assert_eq!(p.pick(3, &only0, 0, 1, &mut c), 1);
    let mut d = Vec::new();
    assert_eq!(p.pick(4, &only0, 0, 5, &mut d), 0);
    let mut e = Vec::new();
    p.pick(3, &only0, 0, 5, &mut e);
    c.extend(e);
    let mut last = None;
    for blk in &c {
        if let BlockResult::Complete {
            index,
            buf,
            contributors,
            ..
        } = p.on_block(3, *blk, &data(blk))
        {
            last = Some(p.on_hash_done(index, false, Some(buf), &contributors));
        }
    }
    assert_eq!(last, Some(HashVerdict::BadFrom(3)));
}

#[test]
fn a_write_failure_leaves_the_piece_open_to_every_peer() {
    let mut p = Picker::new(geo(), 1 << 30);
    let mut only0 = Bitfield::new(4);
    only0.set(0);
    let mut a = Vec::new();
    p.pick(1, &only0, 0, 1, &mut a);
    let mut b = Vec::new();
    p.pick(2, &only0, 0, 1, &mut b);
    p.on_block(1, a[0], &data(&a[0]));
    let BlockResult::Complete { index, buf, .. } = p.on_block(2, b[0], &data(&b[0])) else {
        panic!("complete")
    };
    p.on_write_failed(index, buf);
    // Missing again and not suspect: two peers share it as before.
    let mut c = Vec::new();
    assert_eq!(p.pick(3, &only0, 0, 1, &mut c), 1);
    let mut d = Vec::new();
    assert_eq!(p.pick(4, &only0, 0, 1, &mut d), 1);
}

#[test]
fn ranks_order_the_pieces_and_rank_zero_is_never_picked() {
    let g = Geometry::new(8, 16384, 16384 * 8);
    let mut p = Picker::new(g, 1 << 30);
    p.set_ranks(vec![0, 1, 2, 3, 0, 2, 3, 1]);
    p.add_availability(&Bitfield::full(8));
    let mut order = Vec::new();
    loop {
        let mut out = Vec::new();
        if p.pick(1, &Bitfield::full(8), 0, 1, &mut out) == 0 {
            break;
        }
        order.push(out[0].index);
        let BlockResult::Complete { index, buf, .. } = p.on_block(1, out[0], &[0; 16384]) else {
            panic!("one block per piece")
        };
        p.on_hash_done(index, true, Some(buf), &[1]);
    }
    let ranks: Vec<u8> = order.iter().map(|&i| p.rank(i)).collect();
    assert_eq!(ranks, [3, 3, 2, 2, 1, 1], "{order:?}");
    assert!(p.is_done() && !p.is_complete());
    assert!(!p.interesting(&Bitfield::full(8)));
    assert_eq!(p.wanted_bytes(), (6 * 16384, 0));
    // Wanting piece 0 again: not done, interesting, and it is picked.
    p.set_ranks(vec![2; 8]);
    assert!(!p.is_done() && p.interesting(&Bitfield::full(8)));
    assert_eq!(p.wanted_bytes(), (8 * 16384, 2 * 16384));
}

#[test]
fn sequential_mode_starts_pieces_in_order() {
    let g = Geometry::new(16, 16384, 16384 * 16);
    let mut p = Picker::new(g, 1 << 30);
    p.set_sequential(true);
    let mut out = Vec::new();
    p.pick(1, &Bitfield::full(16), 0, 16, &mut out);
    let order: Vec<u32> = out.iter().map(|b| b.index).collect();
    assert_eq!(order, (0..16).collect::<Vec<u32>>());
}

#[test]
fn sequential_mode_can_start_at_a_later_piece_and_wrap_round() {
    let g = Geometry::new(16, 16384, 16384 * 16);
    let mut p = Picker::new(g, 1 << 30);
    p.set_sequential(true);
    p.set_sequential_from(11);
    // A skipped piece keeps no place: the sequence goes on past it.
    let mut ranks = vec![2; 16];
    ranks[13] = 0;
    p.set_ranks(ranks);
    let mut out = Vec::new();
    p.pick(1, &Bitfield::full(16), 0, 16, &mut out);
    let order: Vec<u32> = out.iter().map(|b| b.index).collect();
    let want: Vec<u32> = (11..16).chain(0..11).filter(|&i| i != 13).collect();
    assert_eq!(order, want);
    // Off, the start is kept for when it is on again; rarest first meanwhile.
    p.set_sequential(false);
    assert_eq!(p.sequential_from(), 11);
}

#[test]
fn memory_budget_bounds_pieces_in_flight() {
    let g = Geometry::new(100, 32768, 32768 * 100);
    let mut p = Picker::new(g, 4 * 32768);
    let mut out = Vec::new();
    p.pick(1, &Bitfield::full(100), 0, 1000, &mut out);
    assert_eq!(p.buffered_pieces(), 4);
    assert_eq!(out.len(), 8);
}

#[test]
fn rarest_first_matches_a_scan_of_every_piece() {
    // Peers come and go, send haves, pieces start, fail and complete: each new piece the picker
    // chooses must be one a full scan would choose (highest rank, then fewest peers having it).
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n = 300u32;
    let g = Geometry::new(n as usize, 16384, 16384 * n as u64);
    let mut p = Picker::new(g, 1 << 40);
    p.set_ranks((0..n).map(|i| [0, 1, 2, 2, 3][i as usize % 5]).collect());
    let mut peers: Vec<Bitfield> = Vec::new();
    for round in 0..3000 {
        match rng.gen_range(0..10) {
            0 | 1 if peers.len() < 40 => {
                let mut bf = Bitfield::new(n as usize);
                for i in 0..n as usize {
                    if rng.gen_bool(0.3) {
                        bf.set(i);
                    }
                }
                p.add_availability(&bf);
                peers.push(bf);
            }
            2 if !peers.is_empty() => {
                let bf = peers.swap_remove(rng.gen_range(0..peers.len()));
                p.remove_availability(&bf);
            }
            3 | 4 if !peers.is_empty() => {
                let k = rng.gen_range(0..peers.len());
                let i = rng.gen_range(0..n as usize);
                if peers[k].set(i) {
                    p.add_have(i as u32);
                }
            }
            _ if !peers.is_empty() => {
                let k = rng.gen_range(0..peers.len());
                let has = &peers[k];
                let best = (0..n as usize)
                    .filter(|&i| has.get(i) && p.states[i] == PieceState::Missing && p.ranks[i] > 0)
                    .map(|i| (3 - p.ranks[i], p.availability[i]))
                    .min();
                let mut out = Vec::new();
                let picked = p.pick(k as u64, has, 0, 1, &mut out);
                match best {
                    Some(key) if p.have.count() >= RANDOM_FIRST && p.in_flight.is_empty() => {
                        assert_eq!(picked, 1, "round {round}");
                        let i = out[0].index as usize;
                        assert_eq!((3 - p.ranks[i], p.availability[i]), key, "round {round}");
                    }
                    None if p.in_flight.is_empty() => assert_eq!(picked, 0, "round {round}"),
                    _ => {}
                }
                // Finish whatever was started: good, or now and then a bad hash (missing again).
                for b in out {
                    let BlockResult::Complete { index, buf, .. } =
                        p.on_block(k as u64, b, &[0; 16384])
                    else {
                        panic!("one block per piece")
                    };
                    p.on_hash_done(index, !rng.gen_bool(0.2), Some(buf), &[k as u64]);
                }
            }
            _ => {}
        }
        for o in &p.by_rank {
            o.check(&p.availability);
        }
    }
    assert!(
        p.have.count() > 50,
        "the run completed pieces: {}",
        p.have.count()
    );
}

#[test]
fn endgame_leaves_blocks_a_peer_is_sending_on_pace_alone() {
    let mut p = Picker::new(geo(), 1 << 30);
    p.set_endgame_late(Duration::ZERO);
    p.add_availability(&all());
    let mut only0 = Bitfield::new(4);
    only0.set(0);
    let mut rest = all();
    rest.clear(0);
    // Peer 1 sends a block an hour: piece 0's blocks are queued behind 10 others of its own.
    let hour = Duration::from_secs(3600);
    let mut a = Vec::new();
    assert_eq!(p.pick_paced(1, &only0, 10, 100, hour, true, &mut a), 2);
    // Peer 2, pace unknown, takes every other block: the whole torrent is requested.
    let mut b = Vec::new();
    assert_eq!(p.pick(2, &rest, 0, 100, &mut b), 5);
    // Idle peer 3 may duplicate peer 2's blocks, never those peer 1 is not yet due to send
    // (each waits at most ENDGAME_DUE_MOST, far off here).
    let mut d = Vec::new();
    for _ in 0..20 {
        p.pick(3, &all(), 0, 100, &mut d);
    }
    assert_eq!(d.len(), 5, "duplicated: {d:?}");
    assert!(d.iter().all(|x| x.index != 0), "duplicated: {d:?}");
}

#[test]
fn a_blocks_due_time_is_bounded() {
    let a = Asking {
        now: Instant::now(),
        pace: Duration::from_secs(3600),
        queued: 7,
        suspect_ok: true,
    };
    assert_eq!(a.due(0) - a.now, ENDGAME_DUE_MOST);
    let a = Asking {
        pace: Duration::from_millis(10),
        ..a
    };
    assert_eq!(a.due(2) - a.now, Duration::from_millis(100));
}

/// The pieces of `blocks`, in order, each once.
fn pieces_of(blocks: &[BlockRef]) -> Vec<u32> {
    let mut v: Vec<u32> = blocks.iter().map(|b| b.index).collect();
    v.dedup();
    v
}

#[test]
fn a_run_goes_on_through_the_pieces_after_its_first() {
    // 32 pieces of 2 blocks, every one counted at one peer (a web seed).
    let g = Geometry::new(32, 32768, 32 * 32768);
    let seed = Bitfield::full(32);
    let mut p = Picker::new(g, 1 << 30);
    p.add_availability(&seed);
    // Past the random first pieces: rarest first, all equally rare.
    for i in [0, 9, 10, 20] {
        p.mark_have(i);
    }
    let mut out = Vec::new();
    assert_eq!(p.pick_run(7, &seed, 0, 12, &mut out), 12);
    let run = pieces_of(&out);
    assert_eq!(run.len(), 6, "{run:?}");
    assert!(run.windows(2).all(|w| w[1] == w[0] + 1), "{run:?}");
    // Blocks in byte order: one range.
    assert!(out
        .windows(2)
        .all(|w| (w[0].index, w[0].begin) < (w[1].index, w[1].begin)));

    // A run stops before a piece it may not start: one we have, one in flight, a skipped one.
    let mut p = Picker::new(g, 1 << 30);
    p.add_availability(&seed);
    for i in [0, 1, 2, 3, 5] {
        p.mark_have(i);
    }
    let mut ranks = vec![1u8; 32];
    ranks[8] = 0;
    p.set_ranks(ranks);
    let mut first = Vec::new();
    // Whatever it starts at, no run crosses piece 5 (have) or 8 (skipped).
    for _ in 0..32 {
        first.clear();
        if p.pick_run(7, &seed, 0, 64, &mut first) == 0 {
            break;
        }
        let run = pieces_of(&first);
        assert!(run.windows(2).all(|w| w[1] == w[0] + 1), "{run:?}");
        assert!(!run.contains(&5) && !run.contains(&8), "{run:?}");
        let crosses = |x: u32| run.first() < Some(&x) && run.last() > Some(&x);
        assert!(!crosses(5) && !crosses(8), "{run:?}");
        // Wherever it starts, a run covers the whole stretch it lies in (64 blocks reach).
        let stretches: [Vec<u32>; 3] = [vec![4], vec![6, 7], (9..32).collect()];
        assert!(stretches.contains(&run), "{run:?}");
    }
    // Nothing left to start: the free blocks of pieces in flight, as any pick.
    assert!((0..32).all(|i| i == 8 || p.state(i) != PieceState::Missing));
}

#[test]
fn availability_counts_the_peers_of_each_missing_piece_and_what_is_wanted_of_them() {
    let mut p = Picker::new(geo(), 1 << 30);
    let mut one = Bitfield::new(4);
    one.set(0);
    one.set(3);
    p.add_availability(&one);
    p.add_availability(&all());
    p.mark_have(0);
    assert_eq!(p.availability_list(), [-1, 1, 1, 2]);
    // Pieces 1 and 2 (32 KiB each) and the short last one (1,000 bytes), all wanted.
    assert_eq!(p.desired_available(), 32768 * 2 + 1000);
    p.set_ranks(vec![1, 0, 1, 1]);
    assert_eq!(p.desired_available(), 32768 + 1000, "piece 1 is not wanted");
    p.remove_availability(&all());
    assert_eq!(p.availability_list(), [-1, 0, 0, 1]);
    assert_eq!(p.desired_available(), 1000);
}

#[test]
fn wants_generation_moves_only_when_we_come_to_want_more() {
    let mut p = Picker::new(geo(), 1 << 30);
    let g0 = p.wants_generation();
    p.mark_have(0);
    assert_eq!(
        p.wants_generation(),
        g0,
        "a piece had is wanting less, not more"
    );
    let only_0 = {
        let mut b = Bitfield::new(4);
        b.set(0);
        b
    };
    assert!(!p.interesting(&only_0));
    // A piece found damaged is wanted again.
    assert!(p.withdraw(0));
    let g1 = p.wants_generation();
    assert_ne!(g1, g0);
    assert!(p.interesting(&only_0));
    // New ranks (a file chosen) may want more.
    p.set_ranks(vec![2, 2, 0, 2]);
    let g2 = p.wants_generation();
    assert_ne!(g2, g1);
    // A withdrawn piece nobody wants changes nothing we want.
    p.mark_have(2);
    assert!(p.withdraw(2));
    assert_eq!(p.wants_generation(), g2);
}

/// Padding: the blocks wholly inside pad files are never asked for, read as zeros in the piece
/// (over a recycled buffer's old bytes), and a piece filled by one peer beside its padding still
/// names that peer when its hash fails; a block partly in padding is asked for whole.
#[test]
fn blocks_wholly_in_padding_are_never_asked_for() {
    use btorrent_proto::metainfo::{create_torrent, CreateOptions, Format};
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("set");
    std::fs::create_dir_all(&top).unwrap();
    // Pieces of 4 blocks: a.bin fills 1.5 blocks of piece 0 (2 blocks wholly padding, one partly),
    // b.bin one piece and a bit.
    std::fs::write(top.join("a.bin"), vec![1u8; 24 * 1024]).unwrap();
    std::fs::write(top.join("b.bin"), vec![2u8; 64 * 1024 + 100]).unwrap();
    for format in [Format::V2, Format::Hybrid] {
        let o = CreateOptions {
            piece_length: Some(64 * 1024),
            ..Default::default()
        }
        .with_format(format);
        let meta = create_torrent(&top, &o, &|_, _| {}).unwrap();
        let pad = padding_blocks(&meta.info);
        let mut want = HashMap::new();
        want.insert(0, one(2..4));
        want.insert(2, one(1..4));
        assert_eq!(pad, want, "{format:?}");
        let geo = Geometry::from_info(&meta.info);
        let mut p = Picker::new(geo, 1 << 30);
        p.set_padding(pad);
        // Dirty recycled buffers: the padding must still read as zeros.
        for _ in 0..3 {
            let mut b = PieceBuf::zeroed(64 * 1024);
            b.fill(0xee);
            p.pool.push(b);
        }
        let every = Bitfield::full(geo.piece_count as usize);
        let mut out = Vec::new();
        p.pick(1, &every, 0, 100, &mut out);
        let mut asked: Vec<(u32, u32)> = out
            .iter()
            .map(|b| (b.index, b.begin / BLOCK_SIZE))
            .collect();
        asked.sort();
        assert_eq!(
            asked,
            [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0)],
            "{format:?}"
        );
        assert!(
            out.iter().all(|b| b.length == BLOCK_SIZE),
            "partly padded: whole"
        );
        let mut verdicts = Vec::new();
        for b in &out {
            if let BlockResult::Complete {
                index,
                buf,
                contributors,
                ..
            } = p.on_block(1, *b, &data(b))
            {
                assert_eq!(
                    contributors.len(),
                    p.geometry().blocks_in(index) as usize
                        - p.padding
                            .get(&index)
                            .map_or(0, |r| r.iter().map(|r| r.len()).sum::<usize>())
                );
                if index == 0 {
                    assert!(buf[2 * BLOCK_SIZE as usize..].iter().all(|&x| x == 0));
                    verdicts.push(p.on_hash_done(index, false, Some(buf), &contributors));
                } else {
                    verdicts.push(p.on_hash_done(index, true, Some(buf), &contributors));
                }
            }
        }
        assert_eq!(
            verdicts.len(),
            3,
            "every piece complete without its padding"
        );
        assert!(verdicts.contains(&HashVerdict::BadFrom(1)), "{verdicts:?}");
    }
}

/// A hostile torrent's pad file of 128 TiB (a 10 MB torrent can describe it in pieces of 256 MiB)
/// costs what a small one does: only the pieces it starts and ends in are looked at, their blocks
/// kept as ranges.
#[test]
fn a_huge_pad_file_is_looked_at_only_where_it_starts_and_ends() {
    use btorrent_proto::metainfo::Info;
    let plen: u64 = 256 << 20;
    let huge = 128u64 << 40;
    let files = [
        ("t/a", 100, false),
        ("t/.pad/huge", huge, true),
        ("t/b", 50_000, false),
    ];
    let info = Info::laid_out("t", plen, files.map(|(p, len, pad)| (p.into(), len, pad)));
    let started = std::time::Instant::now();
    let pad = padding_blocks(&info);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let last = ((100 + huge) / plen) as u32;
    let mut want = HashMap::new();
    // The first piece: all but its first block (100 bytes of a, the rest padding).
    want.insert(0, one(1..(plen / u64::from(BLOCK_SIZE)) as u32));
    // The last piece: 100 bytes of padding, then b; no block of it wholly padding.
    assert_eq!(
        last as usize + 1,
        Geometry::from_info(&info).piece_count as usize
    );
    assert_eq!(pad, want);
}
