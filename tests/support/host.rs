//! A script host for tests: a temporary folder with its own torrents.toml, a runtime of its own, and
//! everything the scripts print collected in a shared list of lines that tests wait on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use btorrent::script::{Automation, Host, HostContext, ScriptError};
use parking_lot::Mutex;

pub struct ScriptRig {
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub host: Arc<Host>,
}

impl ScriptRig {
    /// A host whose torrents.toml holds `settings` (lines of the `[settings]` table); handlers and
    /// timers get `call_limit` each when it is given, the default otherwise.
    pub fn new(settings: &str, call_limit: Option<Duration>) -> ScriptRig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("torrents.toml"),
            // No DHT unless the test asks for one (then it names its own bootstrap nodes).
            if settings.lines().any(|l| l.starts_with("dht =")) {
                format!("[settings]\n{settings}\n")
            } else {
                format!("[settings]\ndht = false\n{settings}\n")
            },
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut ctx = context(dir.path().join("torrents.toml"), &rt, &lines);
        if let Some(limit) = call_limit {
            ctx.automation = Arc::new(Automation::new(limit));
        }
        let host = Arc::new(Host::new(ctx).unwrap());
        ScriptRig {
            dir,
            rt,
            lines,
            host,
        }
    }

    /// A fresh context on this rig's config file and runtime, printing into its lines (for a test
    /// that builds a second host, say with a stand-in engine).
    pub fn context(&self) -> HostContext {
        context(self.path("torrents.toml"), &self.rt, &self.lines)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `source` to `name` in the rig's folder and runs it.
    pub fn try_script(&self, name: &str, source: &str) -> Result<rhai::Dynamic, ScriptError> {
        let p = self.path(name);
        std::fs::write(&p, source).unwrap();
        self.host.run_file(&p, &[])
    }

    /// Runs a script that must succeed; on failure the panic shows the error and every line printed.
    pub fn script(&self, name: &str, source: &str) {
        if let Err(e) = self.try_script(name, source) {
            panic!("{name}: {e}\n{:#?}", self.lines.lock());
        }
    }

    /// Runs a script that must fail and returns its error.
    pub fn script_fails(&self, name: &str, source: &str) -> String {
        match self.try_script(name, source) {
            Ok(v) => panic!("{name} should fail, returned {v}"),
            Err(e) => e.to_string(),
        }
    }

    /// Waits up to 20 s until `pred` holds for the lines printed so far.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[String]) -> bool) {
        self.wait_for_secs(what, 20, pred)
    }

    /// Waits up to `secs` until `pred` holds for the lines printed so far.
    pub fn wait_for_secs(&self, what: &str, secs: u64, pred: impl Fn(&[String]) -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        while !pred(&self.lines.lock()) {
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}: {:#?}",
                self.lines.lock()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many printed lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

/// A context on `config`, running on `rt`, printing into `lines`, with no progress bars.
fn context(
    config: PathBuf,
    rt: &tokio::runtime::Runtime,
    lines: &Arc<Mutex<Vec<String>>>,
) -> HostContext {
    let mut ctx = HostContext::stdout(config, rt.handle().clone());
    let sink = lines.clone();
    ctx.out = Arc::new(move |s: &str| sink.lock().push(s.to_string()));
    ctx.progress = false;
    ctx
}
