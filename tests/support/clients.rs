//! The real BitTorrent programs of the interop tests (Debian packages), configured for loopback only:
//! aria2c, python3-libtorrent (through `lt_client.py`), transmission-cli, qbittorrent-nox (driven
//! through its Web API) and opentracker; and waiting until a tracker lists one of them. Each command
//! is started by the test as a [`Proc`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use btorrent::announce::{PeerListing, TrackerClient};
use btorrent::InfoHash;

use super::process::{free_port, Proc};

/// The libtorrent seeder/leecher script, run by Debian's /usr/bin/python3.
pub const LT_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_client.py");

/// aria2c with the loopback-friendly flags of the interop harness: a seeder checks its data and seeds
/// for 5 minutes, a leecher exits when its download completes.
pub fn aria2(dir: &Path, port: u16, torrent: &Path, seed: bool) -> Command {
    let mut cmd = Command::new("aria2c");
    cmd.arg(format!("--dir={}", dir.display()))
        .arg(format!("--listen-port={port}"))
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--file-allocation=none",
            "--bt-tracker-connect-timeout=5",
            "--bt-tracker-timeout=5",
            "--bt-max-peers=0",
            "--disable-ipv6=true",
            "--interface=127.0.0.1",
            "--summary-interval=0",
            "--console-log-level=notice",
        ]);
    if seed {
        cmd.args([
            "--check-integrity=true",
            "--bt-hash-check-seed=true",
            "--seed-ratio=0.0",
            "--seed-time=5",
        ]);
    } else {
        cmd.arg("--seed-time=0");
    }
    cmd.arg(torrent);
    cmd
}

/// python3-libtorrent as a seeder (`mode` "seed") or leecher ("leech") of `torrent` in `folder`.
pub fn libtorrent(mode: &str, torrent: &Path, folder: &Path, port: u16) -> Command {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(LT_CLIENT)
        .arg(mode)
        .arg(torrent)
        .arg(folder)
        .arg(port.to_string());
    cmd
}

/// [`libtorrent`] on a loopback DHT whose nodes are `dht_nodes` (`ip:port`), and no tracker.
pub fn libtorrent_dht(
    mode: &str,
    torrent: &Path,
    folder: &Path,
    port: u16,
    dht_nodes: &[String],
) -> Command {
    let mut cmd = libtorrent(mode, torrent, folder, port);
    cmd.arg(dht_nodes.join(","));
    cmd
}

/// transmission-cli with a loopback-only configuration in a folder of its own under `work`; the
/// returned file appears when the download completes.
pub fn transmission(work: &Path, torrent: &Path, folder: &Path, port: u16) -> (Command, PathBuf) {
    transmission_encrypting(work, torrent, folder, port, false)
}

/// [`transmission`], preferring encrypted connections (its default), or with `required` making and
/// taking encrypted connections only (`-er`: a peer that cannot encrypt is never connected).
pub fn transmission_encrypting(
    work: &Path,
    torrent: &Path,
    folder: &Path,
    port: u16,
    required: bool,
) -> (Command, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let cfg = work.join(format!("tr-{port}"));
    std::fs::create_dir_all(&cfg).unwrap();
    let settings = serde_json::json!({
        "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
        "port-forwarding-enabled": false, "blocklist-enabled": false,
        "peer-port": port, "peer-port-random-on-start": false,
        "bind-address-ipv4": "127.0.0.1", "encryption": if required { 2 } else { 1 },
        "speed-limit-down-enabled": false, "speed-limit-up-enabled": false,
        "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
        "rpc-enabled": false, "message-level": 2, "preallocation": 0,
    });
    std::fs::write(cfg.join("settings.json"), settings.to_string()).unwrap();
    let done = cfg.join("done");
    let finish = cfg.join("finish.sh");
    std::fs::write(&finish, format!("#!/bin/sh\ntouch '{}'\n", done.display())).unwrap();
    std::fs::set_permissions(&finish, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("transmission-cli");
    cmd.arg("-g")
        .arg(&cfg)
        .arg("-w")
        .arg(folder)
        .args(["-p", &port.to_string(), "-M", "-D", "-U"])
        .arg(if required { "-er" } else { "-ep" })
        .arg("-f")
        .arg(&finish)
        .arg(torrent);
    (cmd, done)
}

/// qbittorrent-nox with a throw-away profile under `work`: loopback only (no DHT, LSD, PeX, UPnP,
/// encryption), its Web API on 127.0.0.1:`web_port` without a login from localhost. Torrents are added
/// and watched through the API ([`Qbt`]).
pub fn qbittorrent(work: &Path, port: u16, web_port: u16) -> Command {
    qbittorrent_encrypting(work, port, web_port, false)
}

/// [`qbittorrent`], with `required` making and taking encrypted connections only ("Require
/// encryption": a peer that cannot encrypt is never connected).
pub fn qbittorrent_encrypting(work: &Path, port: u16, web_port: u16, required: bool) -> Command {
    let encryption = if required { 1 } else { 0 };
    let profile = work.join(format!("qbt-{port}"));
    let conf_dir = profile.join("qBittorrent/config");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let conf = format!(
        "[LegalNotice]\nAccepted=true\n\n[BitTorrent]\n\
         Session\\DHTEnabled=false\nSession\\LSDEnabled=false\nSession\\PeXEnabled=false\n\
         Session\\Port={port}\nSession\\Interface=lo\nSession\\InterfaceName=lo\n\
         Session\\InterfaceAddress=127.0.0.1\nSession\\MultiConnectionsPerIp=true\n\
         Session\\QueueingSystemEnabled=false\nSession\\BTProtocol=TCP\nSession\\Encryption={encryption}\n\
         Session\\AnonymousModeEnabled=false\nSession\\Preallocation=false\n\
         Session\\IgnoreLimitsOnLAN=true\n\n[Preferences]\nConnection\\UPnP=false\n\
         WebUI\\Enabled=true\nWebUI\\Address=127.0.0.1\nWebUI\\Port={web_port}\n\
         WebUI\\LocalHostAuth=false\nWebUI\\CSRFProtection=false\nWebUI\\HostHeaderValidation=false\n"
    );
    std::fs::write(conf_dir.join("qBittorrent.conf"), conf).unwrap();
    let mut cmd = Command::new("qbittorrent-nox");
    cmd.arg(format!("--profile={}", profile.display()));
    cmd
}

/// qbittorrent-nox's Web API on 127.0.0.1.
pub struct Qbt {
    base: String,
    http: reqwest::Client,
}

impl Qbt {
    /// Waits (at most 30 s) until the API at `web_port` answers; panics with the log if `qbt` exits.
    pub async fn connect(web_port: u16, qbt: &mut Proc) -> Qbt {
        let api = Qbt {
            base: format!("http://127.0.0.1:{web_port}/api/v2"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        let start = Instant::now();
        while api.get("/app/version").await.is_none() {
            if let Some(status) = qbt.exited() {
                panic!(
                    "qbittorrent-nox exited ({status}); log:\n{}",
                    qbt.log_text()
                );
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no Web API");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        api
    }

    async fn get(&self, path: &str) -> Option<String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }

    /// Adds `torrent` with its data in `save_path` (curl posts the form; it is what CI installs).
    pub fn add(&self, torrent: &Path, save_path: &Path) {
        let out = Command::new("curl")
            .args(["-sS", "-m", "10", "-F"])
            .arg(format!("torrents=@{}", torrent.display()))
            .arg("-F")
            .arg(format!("savepath={}", save_path.display()))
            .args(["-F", "paused=false"])
            .arg(format!("{}/torrents/add", self.base))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && body.trim() == "Ok.",
            "add: {body} {out:?}"
        );
    }

    /// The torrent's progress (0 to 1) and state, once qBittorrent lists it.
    pub async fn progress(&self, hash: InfoHash) -> Option<(f64, String)> {
        let body = self
            .get(&format!("/torrents/info?hashes={}", hash.to_hex()))
            .await?;
        let list: serde_json::Value = serde_json::from_str(&body).ok()?;
        let t = list.get(0)?;
        Some((t["progress"].as_f64()?, t["state"].as_str()?.to_string()))
    }
}

/// Waits (at most 60 s) until the tracker at `url` lists, for `hash` (or for any torrent), a peer for
/// which `is_it` holds; panics with the client's log if `client` exits first or time runs out.
pub async fn wait_listed(
    url: &str,
    hash: Option<InfoHash>,
    client: &mut Proc,
    what: &str,
    is_it: impl Fn(&PeerListing) -> bool,
) {
    let tracker = TrackerClient::new();
    let start = Instant::now();
    loop {
        let peers = tracker.get_peers(url, hash).await.unwrap_or_default();
        if peers.iter().any(&is_it) {
            return;
        }
        if let Some(status) = client.exited() {
            panic!(
                "{what}: the client exited ({status}); log:\n{}",
                client.log_text()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: not within 60 s; log:\n{}",
            client.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the tracker lists a complete peer on `port`: the client there seeds.
pub async fn wait_for_seeder(url: &str, hash: Option<InfoHash>, port: u16, seeder: &mut Proc) {
    wait_listed(url, hash, seeder, "the seeder to announce", |p| {
        p.port == port && p.left == 0
    })
    .await;
}

/// opentracker on 127.0.0.1 in a temporary folder, serving only the whitelisted hashes (Debian builds
/// it whitelist-only).
pub struct OpenTracker {
    pub proc: Proc,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl OpenTracker {
    pub async fn start(allowed: &[InfoHash]) -> OpenTracker {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // It chroots into the folder and drops to `nobody` when started as root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let list: String = allowed
            .iter()
            .map(|h| format!("{}\n", h.to_hex()))
            .collect();
        std::fs::write(dir.path().join("whitelist.txt"), list).unwrap();
        std::fs::write(
            dir.path().join("opentracker.conf"),
            "access.whitelist /whitelist.txt\naccess.stats 127.0.0.1\n",
        )
        .unwrap();
        let port = free_port();
        let mut cmd = Command::new("opentracker");
        cmd.arg("-f")
            .arg(dir.path().join("opentracker.conf"))
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
                "-d",
            ])
            .arg(dir.path())
            .current_dir(dir.path());
        let mut proc = Proc::spawn_logged(&mut cmd, dir.path().join("opentracker.log"));
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(s) = proc.exited() {
                panic!("opentracker exited ({s}): {}", proc.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "opentracker did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // It reads its whitelist on a thread of its own after it listens: ready once an allowed
        // hash is no longer refused.
        if let Some(first) = allowed.first() {
            while opentracker_refuses(port, first).await {
                if let Some(s) = proc.exited() {
                    panic!("opentracker exited ({s}): {}", proc.log_text());
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "opentracker never loaded its whitelist"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        OpenTracker {
            proc,
            port,
            _dir: dir,
        }
    }

    pub fn announce_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }
}

/// Whether opentracker on `port` refuses `hash` (or does not answer yet). The probe announces as a
/// seed on port 1, which the whitelist decides (a `stopped` alone is answered for any hash, before the
/// list is loaded too), then says `stopped`, so it leaves no peer behind.
async fn opentracker_refuses(port: u16, hash: &InfoHash) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let escaped: String = hash.0.iter().map(|b| format!("%{b:02X}")).collect();
    let ask = |event: &str| {
        let request = format!(
            "GET /announce?info_hash={escaped}&peer_id=-PR0001-probeprobepr&port=1&left=0&event={event} \
             HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        );
        async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            let mut reply = Vec::new();
            let answered = tokio::time::timeout(Duration::from_secs(2), async {
                s.write_all(request.as_bytes()).await?;
                s.read_to_end(&mut reply).await
            })
            .await;
            matches!(answered, Ok(Ok(_))).then_some(reply)
        }
    };
    let allowed = |r: &Option<Vec<u8>>| {
        r.as_ref()
            .is_some_and(|r| r.windows(8).any(|w| w == b"interval"))
    };
    if !allowed(&ask("started").await) {
        return true;
    }
    !allowed(&ask("stopped").await)
}
