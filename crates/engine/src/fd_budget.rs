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
//! Unset, the budget is what the open-file limit leaves after `max_open_files` and
//! [`RESERVED_FDS`] for everything else, within [`MIN_CONNECTIONS`]..=[`MAX_DEFAULT_CONNECTIONS`].
//! A program embedding the engine may first lift its soft limit to the hard one with
//! [`raise_open_file_limit`] (the btorrent binary does), which is what makes thousands of
//! connections possible on a system whose soft limit is the common 1,024.

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

    #[test]
    fn the_soft_limit_can_be_read_and_is_never_lowered() {
        let (soft, hard) = open_file_limit().expect("RLIMIT_NOFILE");
        assert!(soft <= hard);
        let now = raise_open_file_limit().unwrap();
        assert!(now >= soft && now <= hard.max(soft));
        assert_eq!(open_file_limit().unwrap().0, now);
    }
}
