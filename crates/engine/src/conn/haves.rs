//! What each side of one connection has and wants: the peer's bitfield and `have`s (merged, never
//! trusted to take pieces away), its `lt_donthave` (BEP 54) and `upload_only` (BEP 21), our `have`s
//! the moment a piece verifies, our interest, pieces we withdrew, and super-seeding's offers.
//!
//! A connection neither side needs is closed (`close_if_redundant`): both done with what they
//! want, or the peer wanting nothing (BEP 21 `upload_only`) and holding nothing we want.

use super::*;

impl Conn {
    /// Takes the peer's bitfield, merged with what it told us before.
    pub(super) fn set_has(&mut self, mut bf: Bitfield) {
        for i in self.has.ones() {
            bf.set(i);
        }
        let mut c = self.t.core.lock();
        c.picker.remove_availability(&self.has);
        c.picker.add_availability(&bf);
        let mut wake = false;
        for i in bf.ones() {
            if !self.has.get(i) {
                wake |= self.note_seen(&mut c, i);
            }
        }
        drop(c);
        if wake {
            self.t.have_tx.send_modify(|_| {});
        }
        self.has = bf;
        self.has_known = true;
        self.after_has_changed();
    }

    /// Updates interest and seed status after the peer's pieces changed.
    pub(super) fn after_has_changed(&mut self) {
        let full = self.has.is_full();
        self.sh
            .pieces
            .store(self.has.count() as u32, Ordering::Relaxed);
        self.sh.seed.store(full, Ordering::Relaxed);
        let (interesting, we_done) = {
            let mut c = self.t.core.lock();
            if full {
                c.superseed.note_seed();
            }
            (c.picker.interesting(&self.has), c.picker.is_done())
        };
        self.close_if_redundant(we_done, interesting);
        self.set_interest(interesting);
    }

    /// The peer said (again) whether it wants anything more. Also tells it what changed of ours
    /// since our handshake, now that its ids are known.
    pub(super) fn set_peer_upload_only(&mut self, upload_only: bool) {
        self.peer_upload_only = upload_only;
        self.sh.upload_only.store(upload_only, Ordering::Relaxed);
        let (we_done, interesting) = {
            let c = self.t.core.lock();
            (c.picker.is_done(), c.picker.interesting(&self.has))
        };
        self.tell_upload_only(we_done);
        self.close_if_redundant(we_done, interesting);
    }

    /// Closes the connection once neither side wants anything of the other (as libtorrent's
    /// `close_redundant_connections`, on by default, does):
    ///
    /// - we have every piece we want (`we_done`) and the peer has every piece or says it wants
    ///   nothing more (BEP 21); its address is then not dialed again while we want nothing;
    /// - or we still want pieces, but none it has (not `interesting`), and it says it wants
    ///   nothing more: a partial seed we have taken all we want of. Not dialed again until we want
    ///   more than we did (see `peer::serve` and [`KnownPeer::of_use`]).
    ///
    /// [`KnownPeer::of_use`]: crate::known::KnownPeer::of_use
    pub(super) fn close_if_redundant(&self, we_done: bool, interesting: bool) {
        if we_done {
            if self.has.is_full() {
                self.sh.close("both sides have every piece");
            } else if self.peer_upload_only {
                self.sh
                    .close("neither side wants anything more (upload only)");
            }
        } else if self.peer_upload_only && self.has_known && !interesting {
            self.sh
                .close("it wants nothing more and has nothing we want (upload only)");
        }
    }

    /// Tells the peer when we come to want nothing more, or want pieces again (a file chosen
    /// again): libtorrent's `upload_only` message, when it speaks it. Never while super-seeding it,
    /// as in our handshake (see [`crate::ext::our_handshake`]).
    pub(super) fn tell_upload_only(&mut self, we_done: bool) {
        let now = we_done && self.ss.is_none();
        // Before its extension handshake its id is not known: told once it is.
        let Some(id) = self.ext_state.ids().upload_only else {
            return;
        };
        if now != self.told_upload_only {
            self.told_upload_only = now;
            self.out.push(&Message::Extended {
                id,
                payload: upload_only_payload(now).to_vec().into(),
            });
        }
    }

    pub(super) fn set_interest(&mut self, want: bool) {
        if want != self.am_interested {
            self.am_interested = want;
            self.sh.am_interested.store(want, Ordering::Relaxed);
            self.out.push(if want {
                &Message::Interested
            } else {
                &Message::NotInterested
            });
        }
    }

    /// `lt_donthave` (BEP 54): the peer lost a piece it announced. It leaves the peer's pieces (and
    /// the availability); our requests for it are cancelled and go back to the picker, like those
    /// of a choke without the fast extension (a block already on its way is still taken).
    pub(super) fn on_donthave(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let Some(i) = lt_donthave::decode(payload) else {
            anyhow::bail!("lt_donthave of {} bytes (4 expected)", payload.len());
        };
        if i as usize >= self.has.len() {
            anyhow::bail!("lt_donthave for piece {i} of {}", self.has.len());
        }
        if !self.has.clear(i as usize) {
            return Ok(());
        }
        self.t.core.lock().picker.remove_have(i);
        self.drop_requests(|b| b.index == i, LetGo::CANCEL_AND_RELEASE);
        self.after_has_changed();
        Ok(())
    }

    /// Pieces we withdrew (see `disk_check`): queued requests for them are dropped (rejected to a peer
    /// with the fast extension). A peer that speaks `lt_donthave` (BEP 54) is told we no longer have
    /// them, and stays. Any other that lacks one and may ask for it (it wants our pieces, or it
    /// cannot be sent a reject) is let go: a fast peer told `reject` asks again at once, forever, and
    /// any other would wait on its request; it gets our current bitfield when it comes back. We may
    /// want the pieces from the peers that stay.
    pub(super) fn on_withdrawn(&mut self, pieces: &[u32]) -> anyhow::Result<()> {
        if pieces.is_empty() {
            return Ok(());
        }
        let dropped: VecDeque<BlockRef> = {
            let mut q = self.out.inner.lock();
            let (gone, kept) = q.uploads.drain(..).partition(|b| pieces.contains(&b.index));
            q.uploads = kept;
            gone
        };
        if self.fast {
            for b in dropped {
                self.out.push(&Message::Reject(b));
            }
        }
        if let Some(id) = self.ext_state.ids().lt_donthave {
            for &i in pieces {
                let payload = lt_donthave::encode(i).to_vec();
                self.out.push(&Message::Extended {
                    id,
                    payload: payload.into(),
                });
            }
            self.after_has_changed();
            return Ok(());
        }
        let may_ask = !self.fast || self.sh.peer_interested();
        if let Some(i) = pieces
            .iter()
            .find(|&&i| may_ask && !self.has.get(i as usize))
        {
            anyhow::bail!(
                "we withdrew piece {i}: the peer learns our pieces anew when it reconnects"
            );
        }
        self.after_has_changed();
        Ok(())
    }

    /// Counts piece `i` as seen at a peer for super-seeding; true when super-seeding connections should
    /// look at their offers again (it is on).
    pub(super) fn note_seen(&self, c: &mut crate::torrent::Core, i: usize) -> bool {
        c.superseed.note_have(i);
        c.superseed.active(c.picker.is_complete())
    }

    /// Super-seeding this peer: renews its offers, or ends super-seeding for it (it is a seed, or
    /// super-seeding is over: see [`crate::superseed`]) by announcing every piece it was not offered.
    pub(super) fn super_seed_step(&mut self) {
        let Some(offers) = self.ss.as_mut() else {
            return;
        };
        let declined = offers.declined(&self.has, self.sh.peer_interested(), Instant::now());
        let mut g = self.t.core.lock();
        let c = &mut *g;
        if declined || self.has.is_full() || !c.superseed.active(c.picker.is_complete()) {
            if declined {
                tracing::debug!(peer = %self.sh.addr, "declines its super-seeding offers: shown every piece");
            }
            let ours = c.picker.have().clone();
            let done = c.picker.is_done();
            drop(g);
            let offered = std::mem::replace(&mut offers.offered, Bitfield::new(0));
            self.ss = None;
            for i in ours.ones() {
                if !self.has.get(i) && !offered.get(i) {
                    self.out.push(&Message::Have(i as u32));
                }
            }
            self.tell_upload_only(done);
            return;
        }
        let leechers = c.peers.values().filter(|p| !p.is_seed()).count();
        let limit = crate::superseed::offer_limit(
            leechers,
            self.t.geo.piece_length,
            self.t.geo.piece_count as usize,
        );
        let new = offers.refill(&self.has, limit, &mut c.superseed, &c.picker);
        drop(g);
        for p in new {
            self.out.push(&Message::Have(p));
        }
    }

    /// Announces the pieces we completed since the last call, the moment they verify: to a peer that
    /// lacks them, and to one that sent us blocks of them (a super-seeding peer,
    /// [`crate::superseed`], learns from it that its offer arrived). A peer that has a piece and did
    /// not send it to us is not told: it will never ask us for it, and in a swarm that is most of the
    /// `have`s, each a packet of its own.
    pub(super) fn send_haves(&mut self) -> anyhow::Result<()> {
        let (new, interesting, complete) = {
            let c = self.t.core.lock();
            let new: Vec<u32> = c.have_log[self.cursor.min(c.have_log.len())..].to_vec();
            self.cursor = c.have_log.len();
            (new, c.picker.interesting(&self.has), c.picker.is_done())
        };
        for i in new {
            if !self.has.get(i as usize) || self.sent_us.get(i as usize) {
                self.out.push(&Message::Have(i));
            }
        }
        self.set_interest(interesting);
        self.tell_upload_only(complete);
        self.close_if_redundant(complete, interesting);
        Ok(())
    }
}
