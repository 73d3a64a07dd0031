//! The control channel of a running node, and `peer stats`, its client.
//!
//! A node (or each node of a testnet) listens on a Unix socket `node-IP-PORT.sock` in the
//! control directory. It is protected by the file system and checked again on each
//! connection: the directory must be the user's own with mode 0700 (it is created so, and
//! refused otherwise), the socket is mode 0600, and the node answers only a client whose
//! SO_PEERCRED uid is its own (or root). There is one request, the line `stats`, answered
//! with one JSON object; nothing a client sends can change the node.

use crate::args::{Control, StatsArgs};
use crate::{Fail, Outcome};
use peer::Node;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The control directory, created 0700 if missing; refused unless it is a directory (not a
/// link) owned by us that nobody else may enter.
pub fn dir(c: &Control) -> Result<PathBuf, Fail> {
    let euid = unsafe { libc::geteuid() };
    let d = match &c.control_dir {
        Some(d) => d.clone(),
        None => match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(r) if !r.is_empty() => PathBuf::from(r).join("libpeer"),
            _ => PathBuf::from(format!("/tmp/libpeer-{euid}")),
        },
    };
    if std::fs::symlink_metadata(&d).is_err() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let m = std::fs::symlink_metadata(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    if !m.is_dir() || m.uid() != euid || m.mode() & 0o077 != 0 {
        return Err(format!("control directory {} must be a directory of this user with mode 0700", d.display()));
    }
    Ok(d)
}

/// The socket of the node at `addr` in `dir`.
pub fn socket_path(dir: &Path, addr: SocketAddr) -> PathBuf {
    dir.join(format!("node-{}-{}.sock", addr.ip().to_string().replace(':', "_"), addr.port()))
}

/// Everything `stats` answers: the node's uid, address, and every figure by name (the names
/// of the C peer_stats_list and the Scheme `peer-stats`).
pub fn stats_json(node: &Node) -> Result<Value, Fail> {
    let s = node.stats().map_err(|e| e.to_string())?;
    let figures: serde_json::Map<String, Value> =
        s.named().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    Ok(json!({ "uid": node.uid().to_string(), "address": node.addr().to_string(), "stats": figures }))
}

/// The statistics as aligned text: one figure per line, the buckets on one line.
pub fn stats_text(v: &Value) -> String {
    let mut out =
        format!("uid      {}\naddress  {}\n", v["uid"].as_str().unwrap_or(""), v["address"].as_str().unwrap_or(""));
    let mut buckets = Vec::new();
    if let Some(m) = v["stats"].as_object() {
        for (k, n) in m {
            match k.strip_prefix("bucket-") {
                Some(i) if n.as_u64() != Some(0) => buckets.push(format!("{i}:{n}")),
                Some(_) => {}
                None => out.push_str(&format!("{k:<24} {n}\n")),
            }
        }
    }
    out.push_str(&format!("{:<24} {}\n", "buckets (prefix:contacts)", buckets.join(" ")));
    out
}

/// A node's control socket, served by a thread until dropped.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(dir: &Path, node: Arc<Node>) -> Result<Server, Fail> {
        let path = socket_path(dir, node.addr());
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(format!("{} is in use by a running node", path.display()));
            }
            let _ = std::fs::remove_file(&path); // left by a node that died
        }
        let listener = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("peer-control".into())
            .spawn(move || {
                // Polled, so that dropping the server can stop and join this thread.
                while !flag.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((s, _)) => answer(s, &node),
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Server { path, stop, thread: Some(thread) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The uid of the process at the other end of `s`.
fn peer_uid(s: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid socket and an out-buffer of the size given.
    let rc = unsafe {
        libc::getsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred as *mut _ as *mut _, &mut len)
    };
    (rc == 0).then_some(cred.uid)
}

fn answer(s: UnixStream, node: &Node) {
    let euid = unsafe { libc::geteuid() };
    if !peer_uid(&s).is_some_and(|u| u == euid || u == 0) {
        log::warn!("control: refused a client of another user");
        return;
    }
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let mut r = BufReader::new(&s).take(64);
    if r.read_line(&mut line).is_err() {
        return;
    }
    let reply = match line.trim() {
        "stats" => stats_json(node).unwrap_or_else(|e| json!({ "error": e })),
        other => json!({ "error": format!("unknown request {other:?}; the only one is `stats`") }),
    };
    let mut w = &s;
    let _ = writeln!(w, "{reply}");
}

/// `peer stats --node IP:PORT`.
pub fn stats(a: StatsArgs) -> Result<Outcome, Fail> {
    let path = socket_path(&dir(&a.control)?, a.node);
    let s = UnixStream::connect(&path).map_err(|e| format!("no node at {} ({}: {e})", a.node, path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut w = &s;
    writeln!(w, "stats").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).map_err(|e| format!("reading the node's answer: {e}"))?;
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("the node's answer is not JSON: {e}"))?;
    if let Some(e) = v["error"].as_str() {
        return Err(format!("the node says: {e}"));
    }
    if a.json {
        println!("{v}");
    } else {
        print!("{}", stats_text(&v));
    }
    Ok(Outcome::Done)
}
