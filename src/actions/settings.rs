//! A torrent's own settings: speed limits, bandwidth group, seeding goals, labels and trackers,
//! put in force in the running torrent and recorded.

use super::*;

/// Changes the torrent's own speed limits where it runs (here or in the owner of torrents.toml) and
/// records them.
pub fn set_limits(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    limits: TorrentLimits,
) -> Result<()> {
    let running = live.set_limits(ih, limits);
    torrents.update(|cfg| match cfg.find_mut(ih) {
        Some(e) => {
            e.limits = limits.into();
            Ok(())
        }
        // A torrent run without being managed (`register: false`) has nothing to record.
        None if running => Ok(()),
        None => bail!("{name} is neither running nor a managed torrent"),
    })
}

/// Puts the torrent in the bandwidth group `group` (or in none) where it runs and records it; a
/// group not in the settings yet is added to them, unlimited.
pub fn set_group(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    group: Option<&str>,
) -> Result<()> {
    let running = live.set_group(ih, group);
    torrents.update(|cfg| {
        // A group first named here is kept (unlimited) with the others, as the session keeps it.
        if let Some(g) = group {
            let groups = &mut cfg.settings.bandwidth_groups;
            groups.entry(g.to_string()).or_default();
        }
        match cfg.find_mut(ih) {
            Some(e) => {
                e.group = group.map(str::to_string);
                Ok(())
            }
            None if running => Ok(()),
            None => bail!("{name} is neither running nor a managed torrent"),
        }
    })
}

/// Records the torrent's seeding goals (what `finished` says is kept).
pub fn set_goals(torrents: &Torrents, ih: &InfoHash, name: &str, goals: SeedGoals) -> Result<()> {
    update_entry(torrents, ih, name, |e| {
        e.goals = SeedGoals {
            finished: e.goals.finished,
            ..goals
        };
        Ok(())
    })
}

/// Gives the torrent `labels` (replacing those it had), checked by [`crate::config::checked_labels`],
/// and records them; the labels they came to are returned.
pub fn set_labels<S: AsRef<str>>(
    torrents: &Torrents,
    ih: &InfoHash,
    name: &str,
    labels: impl IntoIterator<Item = S>,
) -> Result<Vec<String>> {
    let labels = crate::config::checked_labels(labels).map_err(|e| anyhow!("{name}: {e}"))?;
    update_entry(torrents, ih, name, |e| {
        e.labels = labels.clone();
        Ok(())
    })?;
    Ok(labels)
}

/// Writes `tiers` (BEP 12) as the trackers of the managed torrent's .torrent (its `info`, so its
/// info-hash, unchanged) and has the running torrent announce to them from now on.
pub fn set_trackers(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    tiers: &[Vec<String>],
) -> Result<()> {
    let cfg = torrents.config()?;
    let Some(e) = cfg.find(ih) else {
        bail!("{name} is not a managed torrent");
    };
    let file = cfg.resolve(&e.file);
    let meta = Metainfo::load(&file).map_err(|e| anyhow!("{e}"))?;
    let bytes = crate::metainfo::set_tracker_tiers(&meta, tiers).map_err(|e| anyhow!("{e}"))?;
    crate::fsutil::write_atomic(&file, &bytes)
        .with_context(|| format!("cannot write {}", file.display()))?;
    let written = Metainfo::from_bytes(&bytes).map_err(|e| anyhow!("{e}"))?;
    live_trackers(live, &written)
}

/// After a managed torrent's .torrent changed its trackers (`meta` is what it holds now): the
/// running torrent announces to them.
pub fn live_trackers(live: &dyn LiveTorrents, meta: &Metainfo) -> Result<()> {
    live.set_trackers(&meta.info_hash, meta.tracker_tiers())?;
    Ok(())
}
