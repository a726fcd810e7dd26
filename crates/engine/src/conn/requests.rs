//! Our requests to one peer: the blocks it sends (each checked against what we asked), the requests
//! we drop (a choke, a `lt_donthave`, endgame's cancels), and how many we keep in flight.
//!
//! The request window: it starts at [`START_WINDOW`] and grows by one per block received (slow start,
//! doubling per round trip) until the rate stops growing; then it follows the rate (about
//! [`WINDOW_SECONDS`] of data in flight), always within `MIN_WINDOW..=min(reqq, MAX_WINDOW)`, and
//! under a download limit within what the limit lets in over `WINDOW_SECONDS`. Over the limit, the
//! socket is left unread for a while (the peer's TCP window closes); nothing else waits.
//!
//! A peer that goes silent on our requests is *snubbed* (`snub_after`): its requests are cancelled and
//! given back, the other connections are woken to take them, and until it sends a block again it is
//! asked for one block at a time, after a rest of [`SNUB_REST`], and never for a suspect piece (which
//! only one peer may fill, and endgame does not duplicate).

use super::*;

/// How [`Conn::drop_requests`] lets dropped requests go.
#[derive(Clone, Copy)]
pub(super) struct LetGo {
    /// Tell the peer (`cancel`). Not after a choke without the fast extension, which dropped
    /// them at its end already.
    pub(super) cancel: bool,
    /// Give the blocks back to the picker for others to take. Not when the picker took them back
    /// itself (its `cancels`).
    pub(super) release: bool,
}

impl LetGo {
    pub(super) const CANCEL_AND_RELEASE: LetGo = LetGo {
        cancel: true,
        release: true,
    };
}

impl Conn {
    pub(super) fn on_piece(&mut self, index: u32, begin: u32, data: &[u8]) -> anyhow::Result<()> {
        let b = BlockRef {
            index,
            begin,
            length: data.len() as u32,
        };
        let pos = if self.requests.front().is_some_and(|(x, _)| *x == b) {
            Some(0)
        } else {
            self.requests.iter().position(|(x, _)| *x == b)
        };
        match pos {
            Some(p) => {
                if let Some((_, asked)) = self.requests.remove(p) {
                    self.note_answer_time(asked.elapsed());
                }
            }
            None => match self.cancelled.iter().position(|x| *x == b) {
                Some(p) => {
                    self.cancelled.remove(p);
                }
                None => anyhow::bail!("sent a block we never requested ({index}:{begin})"),
            },
        }
        self.sent_us.set(index as usize);
        let n = data.len() as u64;
        self.sh.downloaded.fetch_add(n, Ordering::Relaxed);
        self.t.downloaded.fetch_add(n, Ordering::Relaxed);
        self.last_block_at = Instant::now();
        self.snubbed = false;
        self.got_piece = true;
        if self.slow_start && self.window < self.max_window() {
            self.window += 1;
        }
        let mut c = self.t.core.lock();
        let (cancel, complete) = match c.picker.on_block(self.sh.key, b, data) {
            BlockResult::Stored { cancel } => (cancel, None),
            BlockResult::Complete {
                index,
                buf,
                contributors,
                cancel,
            } => (cancel, Some((index, buf, contributors))),
            BlockResult::NotNeeded => (Vec::new(), None),
        };
        for k in cancel {
            if let Some(p) = c.peers.get(&k) {
                p.cancel(b);
            }
        }
        drop(c);
        if let Some((index, buf, contributors)) = complete {
            crate::verify::spawn(self.t.clone(), index, buf, contributors);
        }
        Ok(())
    }

    /// Drops the requests `which` picks, as `how` says. Each is remembered as cancelled (a block
    /// already on its way is taken, not counted as unasked), within the last `2 * MAX_WINDOW`.
    pub(super) fn drop_requests(&mut self, mut which: impl FnMut(&BlockRef) -> bool, how: LetGo) {
        let mut gone = Vec::new();
        self.requests.retain(|(b, _)| {
            let drop = which(b);
            if drop {
                gone.push(*b);
            }
            !drop
        });
        if gone.is_empty() {
            return;
        }
        if how.release {
            let mut c = self.t.core.lock();
            for &b in &gone {
                c.picker.release(self.sh.key, b);
            }
        }
        for b in gone {
            if how.cancel {
                self.out.push(&Message::Cancel(b));
            }
            self.cancelled.push_back(b);
        }
        while self.cancelled.len() > 2 * MAX_WINDOW {
            self.cancelled.pop_front();
        }
    }

    /// The most requests this peer may have outstanding: its `reqq`, and under a download limit (the
    /// session's or the torrent's, as they are now) no more than that limit lets in in
    /// [`WINDOW_SECONDS`].
    pub(super) fn max_window(&self) -> usize {
        let max = self.reqq.clamp(MIN_WINDOW, MAX_WINDOW);
        match self.t.limits.download_rate(&self.t.ctx) {
            Some(limit) => {
                let blocks = (limit as f64 * WINDOW_SECONDS / BLOCK_SIZE as f64) as usize;
                max.min(blocks).max(MIN_WINDOW)
            }
            None => max,
        }
    }

    /// Records how long a request took to be answered.
    pub(super) fn note_answer_time(&mut self, took: Duration) {
        self.answer_time = Some(match self.answer_time {
            None => (took, took / 2),
            Some((mean, dev)) => {
                let diff = mean.abs_diff(took);
                (
                    mean.mul_f64(0.875) + took.mul_f64(0.125),
                    dev.mul_f64(0.75) + diff.mul_f64(0.25),
                )
            }
        });
    }

    /// How long the peer may go without delivering while requests wait: far longer than its requests
    /// usually take to be answered (mean + 4 deviations, which covers its queue at its rate), within
    /// [`SNUB_FLOOR`]`..=`[`REQUEST_TIMEOUT`]; [`SNUB_UNKNOWN`] before its first block.
    pub(super) fn snub_after(&self) -> Duration {
        match self.answer_time {
            None => SNUB_UNKNOWN,
            Some((mean, dev)) => (mean + dev * 4).clamp(SNUB_FLOOR, REQUEST_TIMEOUT),
        }
    }

    pub(super) fn fill_requests(&mut self) {
        if !self.am_interested {
            return;
        }
        // Choked, only the peer's allowed-fast pieces may be asked for; not in sequential mode,
        // where they would come far ahead of the pieces being played.
        if self.peer_choking
            && (self.allowed_fast.is_empty() || self.t.core.lock().picker.sequential())
        {
            return;
        }
        if self.snubbed && Instant::now() < self.rest_until {
            return;
        }
        let window = if self.snubbed {
            1
        } else {
            self.window.min(self.max_window())
        };
        let free = window.saturating_sub(self.requests.len());
        if free == 0 || (free < (window / 8).max(1) && !self.requests.is_empty()) {
            return;
        }
        let restricted;
        let has = if self.peer_choking {
            let mut bf = Bitfield::new(self.has.len());
            for &i in &self.allowed_fast {
                if self.has.get(i as usize) {
                    bf.set(i as usize);
                }
            }
            restricted = bf;
            &restricted
        } else {
            &self.has
        };
        let mut picked = std::mem::take(&mut self.picked);
        picked.clear();
        let n = self.t.core.lock().picker.pick_paced(
            self.sh.key,
            has,
            self.requests.len(),
            free,
            self.pace,
            !self.snubbed,
            &mut picked,
        );
        if n > 0 {
            if self.requests.is_empty() {
                self.last_block_at = Instant::now();
            }
            let now = Instant::now();
            let mut q = self.out.inner.lock();
            for b in &picked {
                btorrent_proto::wire::message::encode(&Message::Request(*b), &mut q.ctrl);
                self.requests.push_back((*b, now));
            }
        }
        self.picked = picked;
    }

    /// Each second: the window follows the rate just measured (`rate`, bytes/s), the pace of one
    /// block is known from it, and a peer silent on our requests for too long is snubbed.
    pub(super) fn follow_rate(&mut self, rate: u64, now: Instant) {
        let target = (rate as f64 * WINDOW_SECONDS / BLOCK_SIZE as f64) as usize;
        if self.slow_start {
            if self.got_piece && rate > 0 && (rate as f64) < self.last_rate as f64 * 1.1 {
                self.slow_start = false;
                self.window = self.window.max(target);
            }
        } else {
            self.window = target;
        }
        self.window = self.window.clamp(MIN_WINDOW, self.max_window());
        self.last_rate = rate;
        self.pace = if rate > 0 {
            Duration::from_secs_f64(BLOCK_SIZE as f64 / rate as f64)
        } else {
            Duration::ZERO
        };

        if !self.requests.is_empty() && now.duration_since(self.last_block_at) > self.snub_after() {
            // Snubbed: hand its requests to others and ask it for little from now on.
            tracing::debug!(peer = %self.sh.addr, requests = self.requests.len(),
                "snubbed: nothing delivered for {:?}", now.duration_since(self.last_block_at));
            self.drop_requests(|_| true, LetGo::CANCEL_AND_RELEASE);
            self.slow_start = false;
            self.window = MIN_WINDOW;
            self.last_block_at = now;
            self.snubbed = true;
            self.rest_until = now + SNUB_REST;
            // The other connections pick again now, not at their next tick.
            self.t.have_tx.send_modify(|_| {});
        }
    }
}
