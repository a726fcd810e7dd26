//! The table of open HTTP connections: which new connection is admitted, and which old one makes room
//! for it.
//!
//! - At most `max_per_ip` connections from one TCP peer address (what the socket says; proxies and
//!   `X-Forwarded-For` play no part here), and at most `max_total` in all.
//! - A connection is *idle* while it waits for a request head: freshly accepted, trickling a head in
//!   (slowloris), or kept alive between requests. It is *busy* from a complete head until its handler
//!   has answered.
//! - When a cap is reached, the connection idle for longest (of that address, or of all) is evicted:
//!   it is dropped from the table at once and its task closes the socket. Busy connections are never
//!   evicted. An address at its cap with every connection busy has the new one closed; a full table
//!   with every connection busy makes the accept loop wait until one ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// State word bits; the low bits hold the milliseconds (since the table's epoch) the connection has
/// been idle since.
const BUSY: u64 = 1 << 63;
const EVICTED: u64 = 1 << 62;

/// One connection's state, shared by its task, its request handler and the table.
pub(crate) struct ConnState {
    word: AtomicU64,
    evict: Notify,
    epoch: Instant,
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 & !(BUSY | EVICTED)
    }

    /// A request head is complete: the connection may not be evicted until
    /// [`end_request`](Self::end_request).
    pub fn begin_request(&self) {
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w & EVICTED == 0).then_some(w | BUSY)
            });
    }

    /// The handler has answered: idle from now on.
    pub fn end_request(&self) {
        let now = self.now_ms();
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w & EVICTED == 0).then_some(now)
            });
    }

    /// Since when it has been idle, or `None` when busy or already evicted.
    fn idle_since(&self) -> Option<u64> {
        let w = self.word.load(Ordering::Acquire);
        (w & (BUSY | EVICTED) == 0).then_some(w)
    }

    /// Marks it evicted if it is still idle since `since`; wakes its task.
    fn try_evict(&self, since: u64) -> bool {
        let ok = self
            .word
            .compare_exchange(since, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if ok {
            self.evict.notify_one();
        }
        ok
    }

    /// Completes when the table evicted this connection.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

struct Entry {
    ip: IpAddr,
    state: Arc<ConnState>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.open.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&e.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&e.ip);
            }
        }
        Some(e)
    }

    /// Evicts the connection idle for longest among those from `ip` (or all with `None`).
    fn evict_oldest(&mut self, ip: Option<IpAddr>) -> bool {
        loop {
            let victim = self
                .open
                .iter()
                .filter(|(_, e)| ip.is_none_or(|ip| e.ip == ip))
                .filter_map(|(id, e)| e.state.idle_since().map(|since| (since, *id)))
                .min();
            let Some((since, id)) = victim else {
                return false;
            };
            // It may have turned busy since it was looked at: then look again.
            if self.open[&id].state.try_evict(since) {
                self.remove(id);
                return true;
            }
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its address holds `max_per_ip` connections, all busy.
    AddressFull,
}

/// An admitted connection: its id for [`Conns::release`] and its shared state.
pub(crate) struct Admitted {
    pub id: u64,
    pub state: Arc<ConnState>,
}

/// The connection table of one tracker.
pub(crate) struct Conns {
    table: Mutex<Table>,
    /// Signalled whenever a connection leaves the table.
    freed: Notify,
    max_total: usize,
    max_per_ip: usize,
    epoch: Instant,
}

impl Conns {
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Conns {
            table: Mutex::default(),
            freed: Notify::new(),
            max_total: max_total.clamp(1, 1 << 20),
            max_per_ip: max_per_ip.max(1),
            epoch: Instant::now(),
        }
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.table.lock().open.len()
    }

    /// Admits a connection from `ip`, evicting the longest-idle one of that address (at its cap) or of
    /// all (table full). Waits while the table is full of busy connections.
    pub async fn admit(&self, ip: IpAddr) -> Result<Admitted, Refused> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut t = self.table.lock();
                if t.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip
                    && !t.evict_oldest(Some(ip))
                {
                    return Err(Refused::AddressFull);
                }
                if t.open.len() < self.max_total || t.evict_oldest(None) {
                    let state = Arc::new(ConnState {
                        word: AtomicU64::new(0),
                        evict: Notify::new(),
                        epoch: self.epoch,
                    });
                    state.end_request();
                    let id = t.next_id;
                    t.next_id += 1;
                    t.open.insert(
                        id,
                        Entry {
                            ip,
                            state: state.clone(),
                        },
                    );
                    *t.per_ip.entry(ip).or_default() += 1;
                    return Ok(Admitted { id, state });
                }
            }
            freed.await;
        }
    }

    /// The connection ended (or was evicted): its place is free.
    pub fn release(&self, id: u64) {
        self.table.lock().remove(id);
        self.freed.notify_waiters();
    }

    /// Evicted connections leave the table before their tasks end; this waits for the table to be
    /// empty, i.e. for the tasks still in it.
    pub async fn drained(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.table.lock().open.is_empty() {
                return;
            }
            freed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test]
    async fn the_longest_idle_of_the_address_makes_room() {
        let c = Conns::new(10, 2);
        let a = c.admit(ip(1)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let b = c.admit(ip(1)).await.unwrap();
        let d = c.admit(ip(1)).await.unwrap();
        assert_eq!(a.state.word.load(Ordering::Relaxed), EVICTED);
        assert!(b.state.idle_since().is_some());
        assert_eq!(c.len(), 2);
        // Busy connections stay; with both busy the address is refused.
        b.state.begin_request();
        d.state.begin_request();
        assert_eq!(c.admit(ip(1)).await.err(), Some(Refused::AddressFull));
        // Other addresses are not affected.
        c.admit(ip(2)).await.unwrap();
        assert_eq!(c.len(), 3);
    }

    #[tokio::test]
    async fn a_full_table_evicts_the_longest_idle_or_waits_for_a_busy_one() {
        let c = Arc::new(Conns::new(2, 5));
        let a = c.admit(ip(1)).await.unwrap();
        let b = c.admit(ip(2)).await.unwrap();
        b.state.begin_request();
        c.admit(ip(3)).await.unwrap();
        assert!(a.state.idle_since().is_none(), "a was evicted");
        assert!(b.state.idle_since().is_none());
        assert_eq!(c.len(), 2);
        // Everything busy: the next one waits until a connection ends.
        let all = c.table.lock().open.keys().copied().collect::<Vec<_>>();
        for id in &all {
            c.table.lock().open[id].state.begin_request();
        }
        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.admit(ip(4)).await.map(|a| a.id) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        c.release(all[0]);
        let id = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(c.table.lock().open.contains_key(&id));
    }
}
