//! A torrent's lifecycle as one typed value ([`Lifecycle`], stored in `Core::lifecycle`) and its
//! legal moves. The invariant it keeps (who moves it, under which lock, which moves are legal) is
//! written at the top of [`crate::torrent`]; every move goes through a method here, which refuses an
//! illegal one (returns `false`, changes nothing). Front ends see it as a [`TorrentState`].

use super::{EngineError, TorrentState};

/// What a torrent is doing with its data, paused or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The data check is hashing the pieces that resume data could not vouch for.
    Checking,
    /// Fetching wanted pieces.
    Downloading,
    /// Done with every wanted piece (see [`TorrentState`]).
    Seeding,
}

/// Where a torrent is in its life.
#[derive(Debug, Clone)]
pub enum Lifecycle {
    /// Checking, or transferring (connections, dials, announces) in this phase.
    Running(Phase),
    /// No connection, no dial, no announce. The phase is the one a resume goes back to, kept current
    /// while paused: the check still runs and ends, a re-check may withdraw a piece, files may be
    /// chosen.
    Paused(Phase),
    /// Failed: stopped, whatever a pause asks; a resume takes it up again only after a disk error
    /// ([`Lifecycle::recover`]). The first failure is kept.
    Error(EngineError),
}

/// Two failures are the same when they say the same (an error holds no identity of its own).
impl PartialEq for Lifecycle {
    fn eq(&self, other: &Lifecycle) -> bool {
        match (self, other) {
            (Lifecycle::Running(a), Lifecycle::Running(b))
            | (Lifecycle::Paused(a), Lifecycle::Paused(b)) => a == b,
            (Lifecycle::Error(a), Lifecycle::Error(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for Lifecycle {}

impl Lifecycle {
    /// A torrent just added: its data is checked first, paused or not.
    pub fn new(paused: bool) -> Lifecycle {
        if paused {
            Lifecycle::Paused(Phase::Checking)
        } else {
            Lifecycle::Running(Phase::Checking)
        }
    }

    /// The phase, paused or not; `None` once failed.
    pub fn phase(&self) -> Option<Phase> {
        match self {
            Lifecycle::Running(p) | Lifecycle::Paused(p) => Some(*p),
            Lifecycle::Error(_) => None,
        }
    }

    fn phase_mut(&mut self) -> Option<&mut Phase> {
        match self {
            Lifecycle::Running(p) | Lifecycle::Paused(p) => Some(p),
            Lifecycle::Error(_) => None,
        }
    }

    pub fn is_paused(&self) -> bool {
        matches!(self, Lifecycle::Paused(_))
    }

    /// The failure, once failed.
    pub fn failure(&self) -> Option<&EngineError> {
        match self {
            Lifecycle::Error(cause) => Some(cause),
            _ => None,
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Lifecycle::Error(_))
    }

    /// Whether the torrent talks to the world: takes connections, dials, announces. Only running,
    /// with its data checked.
    pub fn transfers(&self) -> bool {
        matches!(
            self,
            Lifecycle::Running(Phase::Downloading | Phase::Seeding)
        )
    }

    /// `Running(p)` → `Paused(p)`. Refused when already paused or failed.
    pub fn pause(&mut self) -> bool {
        match *self {
            Lifecycle::Running(p) => {
                *self = Lifecycle::Paused(p);
                true
            }
            _ => false,
        }
    }

    /// `Paused(p)` → `Running(p)`: a torrent paused during its check goes back to checking. Refused
    /// when running or failed.
    pub fn resume(&mut self) -> bool {
        match *self {
            Lifecycle::Paused(p) => {
                *self = Lifecycle::Running(p);
                true
            }
            _ => false,
        }
    }

    /// The data check ended: `Checking` → `Seeding` when every wanted piece is there, else
    /// `Downloading`, paused or not. Refused unless checking.
    pub fn checked(&mut self, complete: bool) -> bool {
        match self.phase_mut() {
            Some(p @ Phase::Checking) => {
                *p = if complete {
                    Phase::Seeding
                } else {
                    Phase::Downloading
                };
                true
            }
            _ => false,
        }
    }

    /// The last wanted piece arrived, or the pieces still missing are no longer wanted:
    /// `Downloading` → `Seeding`, paused or not. Refused otherwise (checking, seeding, failed).
    pub fn completed(&mut self) -> bool {
        self.step(Phase::Downloading, Phase::Seeding)
    }

    /// A piece was withdrawn, or a file lacking pieces is wanted again: `Seeding` → `Downloading`,
    /// paused or not. Refused otherwise.
    pub fn reopened(&mut self) -> bool {
        self.step(Phase::Seeding, Phase::Downloading)
    }

    fn step(&mut self, from: Phase, to: Phase) -> bool {
        match self.phase_mut() {
            Some(p) if *p == from => {
                *p = to;
                true
            }
            _ => false,
        }
    }

    /// `Error(cause)` → `Running(phase)`: a resume takes up a torrent a disk error stopped (the
    /// disk full, the data gone), once its user has seen to the disk; the phase is the one its
    /// pieces call for, or `Checking` when its data is to be looked at again. Refused unless failed
    /// by the disk ([`EngineError::is_recoverable`]): a broken torrent or a check that broke off
    /// stays failed.
    pub fn recover(&mut self, phase: Phase) -> bool {
        match self {
            Lifecycle::Error(cause) if cause.is_recoverable() => {
                *self = Lifecycle::Running(phase);
                true
            }
            _ => false,
        }
    }

    /// Any state → `Error(cause)`. Refused once failed: the first failure is the one kept.
    pub fn fail(&mut self, cause: EngineError) -> bool {
        if self.is_failed() {
            return false;
        }
        *self = Lifecycle::Error(cause);
        true
    }

    /// What front ends are shown.
    pub fn report(&self) -> TorrentState {
        match self {
            Lifecycle::Running(Phase::Checking) => TorrentState::Checking,
            Lifecycle::Running(Phase::Downloading) => TorrentState::Downloading,
            Lifecycle::Running(Phase::Seeding) => TorrentState::Seeding,
            Lifecycle::Paused(_) => TorrentState::Paused,
            Lifecycle::Error(e) => TorrentState::Error(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
