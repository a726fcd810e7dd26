//! A `btorrent daemon` serving the Transmission RPC on an ephemeral loopback port, and a small HTTP
//! client for it (raw requests, or JSON calls that do the session-id handshake and basic auth).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cli::bin;
use super::process::{free_port, Proc};

/// A running daemon with `rpc_bind` set.
pub struct RpcDaemon {
    pub proc: Proc,
    pub dir: PathBuf,
    pub port: u16,
}

/// One HTTP reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

impl RpcDaemon {
    /// Starts `btorrent daemon` in `dir` with `extra` settings lines (no tracker, an ephemeral peer
    /// port) and waits (at most 30 s) until its RPC port answers.
    pub fn start(dir: &Path, extra: &str) -> RpcDaemon {
        Self::start_with(dir, extra, None)
    }

    /// [`RpcDaemon::start`] with `BTORRENT_DHT` set to `dht` instead of `off` (`Some("")`: not
    /// set at all, so torrents.toml's `dht` decides).
    pub fn start_with(dir: &Path, extra: &str, dht: Option<&str>) -> RpcDaemon {
        let mut cmd = bin();
        match dht {
            None => {}
            Some("") => {
                cmd.env_remove("BTORRENT_DHT");
            }
            Some(v) => {
                cmd.env("BTORRENT_DHT", v);
            }
        }
        Self::start_cmd(dir, "127.0.0.1", extra, cmd)
    }

    /// Starts `cmd daemon` in `dir` with its peer on `listen_ip` (an ephemeral port) and `extra`
    /// settings lines, as [`RpcDaemon::start`].
    pub fn start_cmd(
        dir: &Path,
        listen_ip: &str,
        extra: &str,
        cmd: std::process::Command,
    ) -> RpcDaemon {
        let port = free_port();
        std::fs::write(
            dir.join("torrents.toml"),
            format!("[settings]\nrpc_bind = \"127.0.0.1:{port}\"\nlisten_ip = \"{listen_ip}\"\nlisten_port = 0\n{extra}\n"),
        )
        .unwrap();
        Self::spawn_cmd(dir, port, cmd)
    }

    /// Ends this daemon (killed: what it recorded in torrents.toml is what a crash leaves) and
    /// starts another on the same torrents.toml and port.
    pub fn restart(mut self) -> RpcDaemon {
        self.proc.kill();
        Self::spawn(&self.dir, self.port)
    }

    fn spawn(dir: &Path, port: u16) -> RpcDaemon {
        Self::spawn_cmd(dir, port, bin())
    }

    fn spawn_cmd(dir: &Path, port: u16, mut cmd: std::process::Command) -> RpcDaemon {
        let proc = Proc::spawn_logged(cmd.arg("daemon").current_dir(dir), dir.join("daemon.log"));
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "the daemon's RPC never listened: {}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RpcDaemon {
            proc,
            dir: dir.to_path_buf(),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A client without credentials.
    pub fn client(&self) -> Client {
        Client {
            port: self.port,
            auth: None,
            session_id: None,
            source: None,
        }
    }
}

/// Sends one request (`Connection: close`) to 127.0.0.1:`port`; at most 30 s.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    request_from(None, port, method, path, headers, body)
}

/// [`request`] from the loopback address `source` (`None`: the one the system picks).
pub fn request_from(
    source: Option<std::net::Ipv4Addr>,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = match source {
        None => TcpStream::connect(server).unwrap(),
        Some(ip) => {
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.bind(&std::net::SocketAddr::from((ip, 0)).into())
                .unwrap();
            sock.connect(&server.into()).unwrap();
            sock.into()
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server refusing a large body may close before reading it all.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// JSON calls to `/transmission/rpc`, as Transmission's clients make them.
pub struct Client {
    pub port: u16,
    /// `Basic ...` value.
    pub auth: Option<String>,
    pub session_id: Option<String>,
    /// The loopback address requests come from (`None`: the one the system picks); the RPC
    /// limits each address's rate.
    pub source: Option<std::net::Ipv4Addr>,
}

impl Client {
    pub fn with_auth(mut self, user: &str, password: &str) -> Client {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.auth = Some(format!("Basic {b}"));
        self
    }

    /// Posts `body` as it is, learning the session id from a 409 first (once).
    pub fn post_raw(&mut self, body: &[u8]) -> Reply {
        for _ in 0..2 {
            let mut headers = Vec::new();
            if let Some(a) = &self.auth {
                headers.push(("Authorization", a.as_str()));
            }
            if let Some(s) = &self.session_id {
                headers.push(("X-Transmission-Session-Id", s.as_str()));
            }
            let path = "/transmission/rpc";
            let r = request_from(self.source, self.port, "POST", path, &headers, body);
            if r.status != 409 {
                return r;
            }
            self.session_id = r.header("X-Transmission-Session-Id").map(str::to_string);
        }
        panic!("409 twice");
    }

    /// Calls `method`; returns the whole reply object (`result`, `arguments`).
    pub fn call(&mut self, method: &str, arguments: Value) -> Value {
        let body = json!({"method": method, "arguments": arguments, "tag": 7}).to_string();
        let r = self.post_raw(body.as_bytes());
        assert_eq!(r.status, 200, "{method}: {r:?}");
        let v = r.json();
        assert_eq!(v["tag"], 7, "{v}");
        v
    }

    /// Calls `method`, which must succeed; returns its `arguments`.
    pub fn ok(&mut self, method: &str, arguments: Value) -> Value {
        let v = self.call(method, arguments);
        assert_eq!(v["result"], "success", "{method}: {v}");
        v["arguments"].clone()
    }

    /// Adds `meta` (sent whole, as `metainfo`) with its data in `download_dir`; returns its id.
    pub fn add_metainfo(&mut self, meta: &btorrent::Metainfo, download_dir: &Path) -> i64 {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
        self.ok(
            "torrent-add",
            json!({"metainfo": b64, "download-dir": download_dir}),
        )["torrent-added"]["id"]
            .as_i64()
            .unwrap()
    }

    /// Adds a torrent of 64 KiB of random bytes (`seed` picks them), written to `dir/seed/s.bin`
    /// and seeded from there; returns it and the daemon's peer port once the daemon seeds it (at
    /// most 30 s).
    pub fn add_seeding(&mut self, dir: &Path, seed: u64) -> (btorrent::Metainfo, u16) {
        use base64::Engine as _;
        let folder = dir.join("seed");
        super::write_random(&folder.join("s.bin"), 64 * 1024, seed);
        let meta = super::torrent(&folder.join("s.bin"), 16 * 1024, vec![]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
        self.ok(
            "torrent-add",
            json!({"metainfo": b64, "download-dir": folder}),
        );
        poll("the torrent to seed", 30, || {
            (torrent_get(self, json!(null), &["status"])[0]["status"] == 6).then_some(())
        });
        let port = self.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
            .as_u64()
            .unwrap() as u16;
        (meta, port)
    }
}

/// Polls `f` every 100 ms until it gives `Some`; panics naming `what` after `secs`.
pub fn poll<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn torrent_get(c: &mut Client, ids: Value, fields: &[&str]) -> Vec<Value> {
    let a = c.ok("torrent-get", json!({"ids": ids, "fields": fields}));
    a["torrents"].as_array().unwrap().clone()
}

pub fn managed_state(dir: &std::path::Path, hash: &str) -> Option<String> {
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    let ih = btorrent::InfoHash::from_hex(hash).unwrap();
    cfg.find(&ih).map(|t| t.state.clone())
}

/// Parses a Prometheus text page: sample name with labels -> value; every line must parse.
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(name.to_string(), v);
    }
    out
}
