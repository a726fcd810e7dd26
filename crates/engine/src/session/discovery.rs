//! Finding what is not added yet: peers of an info-hash on the DHT, mutable links (BEP 46) published
//! and resolved there, and a magnet link's metadata (see [`crate::metadata`]).

use super::*;

impl Session {
    /// Looks up peers of `info_hash` on the DHT (a torrent not added yet, such as a magnet link's):
    /// addresses arrive as found, each once, and the channel closes when the lookup ends (within
    /// 90 s). `None` without a DHT.
    pub fn dht_peers(
        &self,
        info_hash: InfoHash,
    ) -> Option<tokio::sync::mpsc::Receiver<SocketAddr>> {
        self.0.ctx.running_dht().map(|d| d.lookup(info_hash))
    }

    /// Peers of `info_hash` on the DHT, looked up again and again until the receiver is dropped:
    /// at once, then [`crate::dht::SEEK_FIRST_PAUSE`] after each lookup ends, the pause doubling
    /// up to [`crate::dht::SEEK_MAX_PAUSE`]. For a magnet link's metadata, whose peers may
    /// announce after the first look; an address comes again with each lookup that finds it.
    /// `None` when the session runs no DHT.
    pub fn dht_seek(&self, info_hash: InfoHash) -> Option<tokio::sync::mpsc::Receiver<SocketAddr>> {
        self.0.ctx.running_dht().map(|d| d.seek(info_hash))
    }

    /// Publishes `info_hash` in the DHT under the ed25519 key whose seed is `secret` (and `salt`),
    /// at sequence number `seq`: a mutable torrent (BEP 46), which the key's mutable link then
    /// resolves to ([`crate::mutable_torrent`]).
    pub async fn publish_mutable(
        &self,
        secret: &[u8; 32],
        salt: Option<&[u8]>,
        info_hash: InfoHash,
        seq: i64,
    ) -> Result<()> {
        let dht = self.0.ctx.dht.as_ref().ok_or(EngineError::NoDht)?;
        dht.put_pointer(secret, salt, info_hash, seq).await
    }

    /// What the mutable link `link` points at now (`None`: nothing found in the DHT).
    pub async fn resolve_mutable(
        &self,
        link: &btorrent_proto::mutable_link::MutableLink,
    ) -> Result<Option<crate::mutable_torrent::Resolved>> {
        let dht = self.0.ctx.dht.as_ref().ok_or(EngineError::NoDht)?;
        dht.get_pointer(
            &link.public_key,
            link.salt.as_deref(),
            crate::mutable_torrent::RESOLVE_TIMEOUT,
        )
        .await
    }

    /// Nodes known and lookups in flight; `None` without a DHT, or with it switched off.
    pub async fn dht_stats(&self) -> Option<crate::DhtStats> {
        match self.0.ctx.running_dht() {
            Some(d) => Some(d.stats().await),
            None => None,
        }
    }

    /// Fetches the metadata of a magnet link from its `x.pe` peers, its trackers, `extra`, the local
    /// network (when the session runs local service discovery) and the peers that connect to us for
    /// it (see [`crate::metadata`]), and makes it a .torrent with the link's trackers. The peers that
    /// offered it are the first peers of the torrent [`Session::add`]ed next by its info-hash.
    /// `progress` hears how it goes; `timeout` bounds it.
    pub async fn fetch_metadata(
        &self,
        magnet: &Magnet,
        extra: Option<mpsc::Receiver<SocketAddr>>,
        timeout: Option<Duration>,
        progress: impl Fn(&crate::metadata::FetchProgress) + Send,
        cancel: CancellationToken,
    ) -> Result<Metainfo> {
        let ctx = &self.0.ctx;
        let ih = magnet.info_hash;
        let listed = ctx.fetches.listed(magnet);
        let asked = listed.asked();
        let progress = move |p: &crate::metadata::FetchProgress| {
            listed.update(p);
            progress(p)
        };
        let cfg = crate::metadata::FetchConfig {
            peer_id: ctx.peer_id,
            local: ctx.listen_addr(),
            tracker: ctx.tracker.clone(),
            announce_key: Some(ctx.announce_key),
            announce_ip: ctx.cfg.announce_ip,
            timeout,
            asked,
            session: ctx.clone(),
        };
        // Ends the local announces and the hand-over of incoming peers with the fetch.
        let fetching = cancel.child_token();
        let _done = fetching.clone().drop_guard();
        let mut extra: Vec<_> = extra.into_iter().collect();
        if let Some(lsd) = &ctx.lsd {
            extra.push(lsd.seek(ih, fetching.clone()));
        }
        let sources = crate::metadata::FetchSources {
            peers: crate::metadata::resolve_peers(&magnet.peers).await,
            trackers: magnet.trackers.clone(),
            extra,
            // A second fetch of the same info-hash at once leaves incoming peers to the first.
            incoming: ctx.fetches.take_incoming(ih),
        };
        let fetched = tokio::select! {
            r = crate::metadata::fetch(cfg, ih, sources, progress, fetching.clone()) => r,
            _ = ctx.shutdown.cancelled() => Err(EngineError::ShuttingDown),
        }?;
        let unusable = |e: btorrent_proto::metainfo::MetainfoError| {
            EngineError::MetadataUnusable(e.to_string())
        };
        if let Some(full) = magnet.info_hash_v2 {
            if btorrent_proto::metainfo::v2::sha256(&fetched.info) != full {
                return Err(EngineError::MetadataUnusable(
                    "the info dictionary is not the one the link's btmh names".into(),
                ));
            }
        }
        // A v2 torrent's piece layers come from the peers that gave its dictionary (BEP 52).
        let layers = match btorrent_proto::metainfo::layers_needed(&fetched.info)
            .map_err(unusable)?
        {
            None => None,
            Some(needed) => {
                let asked = crate::metadata::layers::fetch_for(ctx, &fetched, &needed, &fetching);
                tokio::select! {
                    r = asked => r,
                    _ = ctx.shutdown.cancelled() => Err(EngineError::ShuttingDown),
                }?
            }
        };
        let bytes = magnet.torrent_bytes(&fetched.info, layers.as_deref());
        let meta = Metainfo::from_bytes(&bytes).map_err(unusable)?;
        // A hybrid fetched by its v2 swarm is added by its v1 info-hash.
        ctx.fetches.keep_peers(meta.info_hash, fetched.peers);
        Ok(meta)
    }

    /// Asks the trackers of the metadata fetches of `ih` for peers now, or as soon as their
    /// `min interval` allows; whether a fetch of `ih` is under way.
    pub fn reannounce_fetch(&self, ih: &InfoHash) -> bool {
        self.0.ctx.fetches.reannounce(ih)
    }

    /// The metadata fetches under way ([`Session::fetch_metadata`]), the oldest first.
    pub fn fetching(&self) -> Vec<crate::metadata::MetadataFetch> {
        self.0.ctx.fetches.list()
    }
}
