//! The session's budget of peer sockets. Every peer connection (a dial under way, an incoming one
//! being handshaken, a connected peer) is a file descriptor, as is every open data file; past the
//! process's open-file limit each new one fails with `EMFILE`, and then so do data files, resume
//! saves and the control socket. So the session hands out at most
//! [`SessionConfig::max_connections`](crate::SessionConfig::max_connections) permits for peer
//! sockets, one per socket for as long as it is open: a dial takes one before it starts (none left:
//! no dial), an incoming connection takes one as it is accepted (none left: it is closed at once).
//! Data files have their own bound (`max_open_files`), so the two never compete. A magnet link's
//! metadata fetch, before its torrent exists, dials on its own (at most
//! [`MAX_FETCH_PEERS`](crate::metadata::MAX_FETCH_PEERS) sockets) within the reserve.
//!
//! The budget can change while the session runs ([`SocketBudget::resize`]): a larger one hands out
//! the extra permits at once; a smaller one takes permits back as sockets close, so no connection is
//! cut and none is made or taken until the session is under the new budget.
//!
//! Unset, the budget is what the open-file limit leaves after `max_open_files` and
//! [`RESERVED_FDS`] for everything else, within [`MIN_CONNECTIONS`]..=[`MAX_DEFAULT_CONNECTIONS`].
//! A program embedding the engine may first lift its soft limit to the hard one with
//! [`raise_open_file_limit`] (the btorrent binary does), which is what makes thousands of
//! connections possible on a system whose soft limit is the common 1,024.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The largest budget: the kernel's default ceiling on one process's descriptors (`nr_open`), so
/// more sockets than this can never be open. A larger budget asked for (a setting or a request
/// of any number) is this one.
pub const MAX_SOCKETS: usize = 1 << 20;

/// The session's permits for peer sockets: one per open socket, at most [`SocketBudget::max`].
///
/// Invariants: `issued` is the number of permits the semaphore holds in all (handed out or
/// available): `max` plus the permits a shrink has yet to take back. Only [`SocketBudget::resize`]
/// and the shrink task it spawns change `max` and `issued`. No permit is handed out while
/// [`SocketBudget::in_use`] would pass `max` (the free permits past it wait for the shrink).
pub struct SocketBudget {
    permits: Arc<Semaphore>,
    max: AtomicUsize,
    issued: Arc<AtomicUsize>,
}

impl SocketBudget {
    /// A budget of `max` sockets (1 to [`MAX_SOCKETS`]).
    pub fn new(max: usize) -> SocketBudget {
        let max = max.clamp(1, MAX_SOCKETS);
        SocketBudget {
            permits: Arc::new(Semaphore::new(max)),
            max: AtomicUsize::new(max),
            issued: Arc::new(AtomicUsize::new(max)),
        }
    }

    /// A permit if one is free now within the budget.
    pub fn try_take(&self) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        let p = self.permits.clone().try_acquire_owned()?;
        if self.in_use() > self.max() {
            // A permit a shrink has yet to take back.
            return Err(TryAcquireError::NoPermits);
        }
        Ok(p)
    }

    /// A permit, once one is free within the budget.
    pub async fn take(&self) -> Result<OwnedSemaphorePermit, AcquireError> {
        loop {
            let p = self.permits.clone().acquire_owned().await?;
            if self.in_use() <= self.max() {
                return Ok(p);
            }
            // Handed on to the shrink that waits for it.
            drop(p);
            tokio::task::yield_now().await;
        }
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// The budget in force.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Sockets open now (which may exceed [`Self::max`] for a while after it was lowered).
    pub fn in_use(&self) -> usize {
        self.issued
            .load(Ordering::Relaxed)
            .saturating_sub(self.available())
    }

    /// Makes the budget `max` sockets (1 to [`MAX_SOCKETS`]): more permits at once, or fewer as
    /// open sockets close (a task of the current tokio runtime takes them back).
    pub fn resize(&self, max: usize) {
        let max = max.clamp(1, MAX_SOCKETS);
        let old = self.max.swap(max, Ordering::Relaxed);
        if max > old {
            // Added after `issued` grows, so `in_use` never counts them as handed out.
            self.issued.fetch_add(max - old, Ordering::Relaxed);
            self.permits.add_permits(max - old);
        } else if old > max {
            // The free ones at once; the rest as sockets close.
            let now = self.permits.forget_permits(old - max);
            self.issued.fetch_sub(now, Ordering::Relaxed);
            let later = old - max - now;
            if later == 0 {
                return;
            }
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                // No runtime to wait in: the budget holds (`try_take`, `take`), the surplus
                // permits stay in the semaphore unused.
                tracing::warn!("socket budget lowered outside the runtime: {later} permits kept");
                return;
            };
            let (permits, issued) = (self.permits.clone(), self.issued.clone());
            rt.spawn(async move {
                // Permits go to waiters first, in order: every socket that closes feeds this
                // task until it has its count, and a later grow pays it back first. Till then
                // `try_take` and `take` hand out none past the budget.
                for _ in 0..later {
                    let Ok(p) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    p.forget();
                    issued.fetch_sub(1, Ordering::Relaxed);
                }
            });
        }
    }
}

/// Descriptors kept for what is not a peer socket nor a data file: listeners, the DHT's socket,
/// tracker connections, resume files being saved, the RPC and control sockets, standard streams.
pub const RESERVED_FDS: u64 = 256;
/// The budget when the open-file limit leaves less (or cannot be read).
pub const MIN_CONNECTIONS: usize = 32;
/// The budget when the limit allows more: past that, memory and CPU per peer bound a session first.
pub const MAX_DEFAULT_CONNECTIONS: usize = 4096;

/// The process's open-file limits (soft, hard), if they can be read.
pub fn open_file_limit() -> Option<(u64, u64)> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return None;
    }
    Some((l.rlim_cur, l.rlim_max))
}

/// Lifts the soft open-file limit to the hard one (at most 1,048,576); returns the soft limit in
/// force afterwards. Nothing changes when it cannot be read or set.
pub fn raise_open_file_limit() -> Option<u64> {
    let (soft, hard) = open_file_limit()?;
    let want = hard.min(1 << 20);
    if want <= soft {
        return Some(soft);
    }
    let l = libc::rlimit {
        rlim_cur: want,
        rlim_max: hard,
    };
    // SAFETY: `l` is a valid rlimit; raising the soft limit up to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
        return Some(soft);
    }
    Some(want)
}

/// The default budget of peer sockets of a session in this process, keeping up to
/// `max_open_files` data files open, under the process's soft open-file limit now.
pub fn for_this_process(max_open_files: usize) -> usize {
    default_max_connections(open_file_limit().map(|l| l.0), max_open_files)
}

/// The default budget of peer sockets for a session keeping up to `max_open_files` data files
/// open, under the soft open-file limit `soft` (`None`: unknown).
pub fn default_max_connections(soft: Option<u64>, max_open_files: usize) -> usize {
    let Some(soft) = soft else {
        return MIN_CONNECTIONS;
    };
    let left = soft.saturating_sub(max_open_files as u64 + RESERVED_FDS);
    (left.min(MAX_DEFAULT_CONNECTIONS as u64) as usize).max(MIN_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_leaves_room_for_files_and_the_rest() {
        assert_eq!(default_max_connections(Some(1024), 256), 512);
        assert_eq!(default_max_connections(Some(524_288), 256), 4096);
        assert_eq!(default_max_connections(Some(300), 256), MIN_CONNECTIONS);
        assert_eq!(default_max_connections(None, 256), MIN_CONNECTIONS);
    }

    #[tokio::test]
    async fn a_budget_grows_at_once_and_shrinks_as_sockets_close() {
        let b = SocketBudget::new(3);
        let mut held: Vec<_> = (0..3).map(|_| b.try_take().unwrap()).collect();
        assert!(b.try_take().is_err());
        assert_eq!((b.max(), b.in_use()), (3, 3));
        b.resize(4);
        let fourth = b
            .try_take()
            .expect("a grown budget hands out its permit at once");
        assert_eq!((b.max(), b.in_use()), (4, 4));
        // Lowered to 2 with 4 open: nothing is cut, nothing new is let in until 2 have closed.
        b.resize(2);
        assert_eq!((b.max(), b.in_use()), (2, 4));
        drop(fourth);
        held.truncate(1);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while b.in_use() != 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "in use {}",
                b.in_use()
            );
            tokio::task::yield_now().await;
        }
        let second = b.try_take().expect("under the new budget again");
        assert!(b.try_take().is_err(), "two at most");
        assert_eq!(b.in_use(), 2);
        drop(second);
        // A grow while a shrink waits pays the shrink first.
        b.resize(1);
        b.resize(2);
        assert_eq!(b.max(), 2);
    }

    #[tokio::test]
    async fn any_budget_asked_for_is_one_the_semaphore_can_hold() {
        let b = SocketBudget::new(usize::MAX);
        assert_eq!(b.max(), MAX_SOCKETS);
        b.resize(0);
        assert_eq!(b.max(), 1);
        b.resize(usize::MAX);
        assert_eq!((b.max(), b.available()), (MAX_SOCKETS, MAX_SOCKETS));
    }

    #[test]
    fn the_soft_limit_can_be_read_and_is_never_lowered() {
        let (soft, hard) = open_file_limit().expect("RLIMIT_NOFILE");
        assert!(soft <= hard);
        let now = raise_open_file_limit().unwrap();
        assert!(now >= soft && now <= hard.max(soft));
        assert_eq!(open_file_limit().unwrap().0, now);
    }
}
