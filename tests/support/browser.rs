//! Headless Chromium driven through the DevTools protocol over `--remote-debugging-pipe`: commands
//! and replies are NUL-terminated JSON on the browser's file descriptors 3 and 4, so neither a
//! websocket client nor chromedriver is needed. A [`Browser`] opens one page and can evaluate
//! JavaScript in it, wait for a condition there, press keys and hand a file to a file input.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::process::Proc;

/// How long one DevTools command may take (generous: on a busy machine Chromium starts slowly).
const REPLY: Duration = Duration::from_secs(120);

/// A headless Chromium showing one page; killed when dropped.
pub struct Browser {
    _proc: Proc,
    to: File,
    from: mpsc::Receiver<Value>,
    next: u64,
    session: String,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    assert_eq!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
        0,
        "pipe2"
    );
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium (profile in `profile`, its output in `profile/chromium.log`) at `width` x
    /// `height` and opens `url`.
    pub fn open(url: &str, profile: &Path, width: u32, height: u32) -> Browser {
        std::fs::create_dir_all(profile).unwrap();
        let (cmd_read, cmd_write) = pipe();
        let (reply_read, reply_write) = pipe();
        let (a, b) = (cmd_read.as_raw_fd(), reply_write.as_raw_fd());
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank");
        let log = File::create(profile.join("chromium.log")).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // In the child: the pipe ends become fds 3 and 4 (first moved above 10, so that neither
        // dup2 overwrites the other's source); dup2 clears close-on-exec on the copies.
        unsafe {
            cmd.pre_exec(move || {
                let (a, b) = (
                    libc::fcntl(a, libc::F_DUPFD, 10),
                    libc::fcntl(b, libc::F_DUPFD, 10),
                );
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let proc = Proc::spawn(&mut cmd);
        drop((cmd_read, reply_write));
        let (tx, from) = mpsc::channel();
        let mut reader = File::from(reply_read);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&c| c == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&msg[..end]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            _proc: proc,
            to: File::from(cmd_write),
            from,
            next: 0,
            session: String::new(),
        };
        let target = b.call("Target.createTarget", json!({"url": url}));
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b
    }

    /// Sends one command (to the page once attached) and returns its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("chromium's command pipe");
        let end = Instant::now() + REPLY;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no reply to {method} from chromium: {e}"));
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of the JavaScript expression `js` (awaited if it is a promise); panics on a
    /// thrown exception.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `js` every 100 ms until it gives something other than null, false or ""; panics
    /// naming `what` after `secs`.
    pub fn wait_for(&mut self, what: &str, secs: u64, js: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.eval(js);
            if !(v.is_null() || v == false || v == "") {
                return v;
            }
            assert!(
                Instant::now() < end,
                "timed out after {secs} s waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses and releases `key` (a character, or a name like `Delete`, `Escape`, `ArrowDown`)
    /// where the focus is.
    pub fn key(&mut self, key: &str) {
        let text = if key.chars().count() == 1 { key } else { "" };
        let kind = if text.is_empty() {
            "rawKeyDown"
        } else {
            "keyDown"
        };
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": kind, "key": key, "text": text}),
        );
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key}),
        );
    }

    /// Hands `file` to the file input matching the CSS `selector`, as picking it would.
    pub fn set_file(&mut self, selector: &str, file: &Path) {
        let root = self.call("DOM.getDocument", json!({}))["root"]["nodeId"].clone();
        let node = self.call(
            "DOM.querySelector",
            json!({"nodeId": root, "selector": selector}),
        )["nodeId"]
            .clone();
        assert_ne!(node, 0, "no {selector} in the page");
        self.call(
            "DOM.setFileInputFiles",
            json!({"nodeId": node, "files": [file]}),
        );
    }

    /// A PNG of the page as shown.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap()
    }
}
